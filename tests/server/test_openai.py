"""The official openai package against a live server: chat, streaming, n, logprobs, tools, json_schema,
embeddings, completions and errors."""
import json

import jsonschema
import openai
import pytest

TOOLS = [{"type": "function", "function": {
    "name": "get_weather", "description": "Weather in a city",
    "parameters": {"type": "object", "properties": {"city": {"enum": ["Paris", "Rome"]},
                                                    "celsius": {"type": "boolean"}},
                   "required": ["city", "celsius"], "additionalProperties": False}}},
    {"type": "function", "function": {"name": "get_time", "parameters": {
        "type": "object", "properties": {"zone": {"enum": ["UTC", "CET"]}}, "required": ["zone"],
        "additionalProperties": False}}}]
NO_THINK = {"chat_template_kwargs": {"enable_thinking": False}}
HI = [{"role": "user", "content": "Hello there"}]


@pytest.fixture()
def client(server):
    with openai.OpenAI(base_url=f"{server.url}/v1", api_key="unused", max_retries=0, timeout=120) as c:
        yield c


def test_models_list_names_and_context(client):
    models = {m.id: m for m in client.models.list().data}
    assert set(models) == {"tiny", "smollm2:135m"}
    assert models["tiny"].owned_by == "qwenkit" and models["tiny"].model_extra["max_model_len"] == 1024


def test_real_model_answers(client):
    out = client.chat.completions.create(model="smollm2:135m", temperature=0, max_tokens=20,
                                         messages=[{"role": "user", "content": "What is the capital of France?"}])
    assert "Paris" in out.choices[0].message.content
    assert out.choices[0].finish_reason == "stop"
    assert out.usage.completion_tokens <= 20 and out.usage.total_tokens == out.usage.prompt_tokens + \
        out.usage.completion_tokens


def collect_stream(client, **kw):
    """Accumulate a stream the way a client would: content, reasoning, tool calls, finish reasons, usage."""
    choices, usage = {}, None
    for chunk in client.chat.completions.create(stream=True, stream_options={"include_usage": True}, **kw):
        if chunk.usage:
            usage = chunk.usage
        for c in chunk.choices:
            acc = choices.setdefault(c.index, {"content": "", "reasoning": "", "calls": {}, "finish": None})
            acc["content"] += c.delta.content or ""
            acc["reasoning"] += (c.delta.model_extra or {}).get("reasoning_content") or ""
            for t in c.delta.tool_calls or []:
                call = acc["calls"].setdefault(t.index, {"id": None, "name": None, "arguments": ""})
                call["id"] = t.id or call["id"]
                call["name"] = (t.function and t.function.name) or call["name"]
                call["arguments"] += (t.function and t.function.arguments) or ""
            acc["finish"] = c.finish_reason or acc["finish"]
    return choices, usage


def as_stream_shape(choice) -> dict:
    m = choice.message
    calls = {i: {"id": t.id, "name": t.function.name, "arguments": t.function.arguments}
             for i, t in enumerate(m.tool_calls or [])}
    return {"content": m.content or "", "reasoning": (m.model_extra or {}).get("reasoning_content") or "",
            "calls": calls, "finish": choice.finish_reason}


@pytest.mark.parametrize("thinking", [True, False])
@pytest.mark.parametrize("tools", [None, "auto", "required"])
def test_stream_and_non_stream_agree(client, thinking, tools):
    kw = dict(model="tiny", messages=HI, max_tokens=40, temperature=0.9, seed=7, n=2,
              extra_body={"chat_template_kwargs": {"enable_thinking": thinking}})
    if tools:
        kw.update(tools=TOOLS, tool_choice=tools)
    whole = client.chat.completions.create(**kw)
    streamed, usage = collect_stream(client, **kw)
    expected = {c.index: as_stream_shape(c) for c in whole.choices}
    for shape in [*expected.values(), *streamed.values()]:
        for call in shape["calls"].values():
            call["id"] = "x"   # ids are fresh per response
    assert streamed == expected
    assert usage.model_dump() == whole.usage.model_dump()


def test_n_seed_and_usage(client):
    kw = dict(model="tiny", messages=HI, max_tokens=8, temperature=1.0, seed=3, n=3)
    a, b = client.chat.completions.create(**kw), client.chat.completions.create(**kw)
    assert [c.message.content for c in a.choices] == [c.message.content for c in b.choices]
    assert len({c.message.content for c in a.choices}) > 1, "each choice samples on its own"
    assert a.usage.completion_tokens == 24 and all(c.finish_reason == "length" for c in a.choices)


def test_logprobs_and_top_logprobs(client):
    out = client.chat.completions.create(model="tiny", messages=HI, max_tokens=5, temperature=0, logprobs=True,
                                         top_logprobs=3)
    content = out.choices[0].logprobs.content
    assert len(content) == 5
    for entry in content:
        assert len(entry.top_logprobs) == 3
        assert entry.logprob <= 0 and entry.top_logprobs[0].logprob >= entry.logprob - 1e-5
    assert "".join(e.token for e in content) == out.choices[0].message.content


def test_stop_and_max_completion_tokens(client):
    first = client.chat.completions.create(model="tiny", messages=HI, max_completion_tokens=6, temperature=0)
    text = first.choices[0].message.content
    assert first.choices[0].finish_reason == "length" and first.usage.completion_tokens == 6
    stop = text[len(text) // 2:len(text) // 2 + 3].strip() or text[-2:]
    cut = client.chat.completions.create(model="tiny", messages=HI, max_tokens=6, temperature=0, stop=[stop])
    assert cut.choices[0].finish_reason == "stop"
    assert cut.choices[0].message.content == text[:text.index(stop)]


def valid_calls(choice) -> list[str]:
    """The names of a choice's tool calls, each checked against its tool's parameter schema."""
    names = []
    for call in choice.message.tool_calls or []:
        assert call.id.startswith("call_") and call.type == "function"
        schema = next(t["function"]["parameters"] for t in TOOLS if t["function"]["name"] == call.function.name)
        jsonschema.validate(json.loads(call.function.arguments), schema)
        names.append(call.function.name)
    return names


def test_tool_choice_required_takes_one_or_more_calls(client):
    """Every choice is calls only, at least one, each valid. That the grammar lets a reply go on to a second call
    is checked on the token masks themselves (tests/engine/test_grammar.py, random walks): with jump-forward the
    random-weight model reads the same forced text every time and nearly always ends after its first call."""
    out = client.chat.completions.create(model="tiny", messages=HI, tools=TOOLS, tool_choice="required",
                                         max_tokens=400, temperature=1.0, seed=1, n=6, extra_body=NO_THINK)
    for choice in out.choices:
        assert choice.finish_reason == "tool_calls" and not choice.message.content
        assert len(valid_calls(choice)) >= 1


def test_parallel_tool_calls_false_takes_exactly_one(client):
    kw = dict(model="tiny", messages=HI, tools=TOOLS, max_tokens=200, temperature=1.0, seed=1, n=6,
              parallel_tool_calls=False, extra_body=NO_THINK)
    for choice in client.chat.completions.create(tool_choice="required", **kw).choices:
        assert choice.finish_reason == "tool_calls" and len(valid_calls(choice)) == 1
    for choice in client.chat.completions.create(tool_choice="auto", **kw).choices:
        assert len(valid_calls(choice)) <= 1


def test_named_tool_choice_calls_that_tool(client):
    named = {"type": "function", "function": {"name": "get_time"}}
    out = client.chat.completions.create(model="tiny", messages=HI, tools=TOOLS, max_tokens=200, extra_body=NO_THINK,
                                         n=3, seed=4, tool_choice=named)
    for choice in out.choices:
        assert choice.finish_reason == "tool_calls" and set(valid_calls(choice)) == {"get_time"}


def test_real_model_calls_tools_when_required(client):
    ask = [{"role": "user", "content": "What is the weather in Paris and in Rome?"}]
    out = client.chat.completions.create(model="smollm2:135m", messages=ask, tools=TOOLS, tool_choice="required",
                                         max_tokens=120, temperature=0)
    assert out.choices[0].finish_reason == "tool_calls" and len(valid_calls(out.choices[0])) >= 1


def test_tool_choice_none_offers_no_tools(client):
    out = client.chat.completions.create(model="tiny", messages=HI, tools=TOOLS, tool_choice="none", max_tokens=4)
    assert out.choices[0].message.tool_calls is None
    with_tools = client.chat.completions.create(model="tiny", messages=HI, tools=TOOLS, max_tokens=4)
    assert with_tools.usage.prompt_tokens > out.usage.prompt_tokens   # the tools went into the prompt


def test_tool_results_round_trip_through_the_template(client):
    messages = [*HI, {"role": "assistant", "content": None, "tool_calls": [
        {"id": "call_1", "type": "function", "function": {"name": "get_time", "arguments": '{"zone": "UTC"}'}}]},
        {"role": "tool", "tool_call_id": "call_1", "content": "12:00"}]
    out = client.chat.completions.create(model="tiny", messages=messages, tools=TOOLS, max_tokens=3)
    assert out.choices[0].finish_reason in ("length", "stop", "tool_calls")


def test_json_schema_output_validates(client):
    schema = {"type": "object", "properties": {"answer": {"enum": ["yes", "no"]}, "sure": {"type": "boolean"}},
              "required": ["answer", "sure"], "additionalProperties": False}
    out = client.chat.completions.create(
        model="tiny", messages=HI, max_tokens=60, temperature=1.0, seed=5, n=2, extra_body=NO_THINK,
        response_format={"type": "json_schema", "json_schema": {"name": "verdict", "schema": schema}})
    for choice in out.choices:
        assert choice.finish_reason == "stop"
        jsonschema.validate(json.loads(choice.message.content), schema)


THINK = {"chat_template_kwargs": {"enable_thinking": True}}


def test_json_schema_with_thinking_on(client, shared_qwen):  # needs the Qwen3 template from ../shared
    """The reasoning is free text in <think>...</think>; the schema applies to the answer after it."""
    schema = {"type": "object", "properties": {"answer": {"enum": ["yes", "no"]}, "n": {"enum": [1, 2, 3]}},
              "required": ["answer", "n"], "additionalProperties": False}
    fmt = {"type": "json_schema", "json_schema": {"name": "verdict", "schema": schema}}
    kw = dict(model="tiny", messages=HI, max_tokens=80, temperature=1.0, seed=5, n=2, response_format=fmt,
              extra_body=THINK | {"thinking_budget": 16})
    out = client.chat.completions.create(**kw)
    for choice in out.choices:
        reasoning = choice.message.model_extra["reasoning_content"]
        assert choice.finish_reason == "stop" and reasoning.strip() and "think>" not in reasoning
        jsonschema.validate(json.loads(choice.message.content), schema)
    streamed, _ = collect_stream(client, **kw)
    assert streamed == {c.index: as_stream_shape(c) for c in out.choices}
    # no budget given: half of max_tokens, so a model that would reason on and on still answers
    default = client.chat.completions.create(**(kw | {"extra_body": THINK, "max_tokens": 60}))
    for choice in default.choices:
        assert choice.finish_reason == "stop" and choice.message.model_extra["reasoning_content"]
        jsonschema.validate(json.loads(choice.message.content), schema)


def test_required_tool_call_with_thinking_on(client, shared_qwen):
    out = client.chat.completions.create(model="tiny", messages=HI, tools=TOOLS, tool_choice="required", n=2,
                                         max_tokens=400, temperature=1.0, seed=2,
                                         extra_body=THINK | {"thinking_budget": 20})
    for choice in out.choices:
        assert choice.finish_reason == "tool_calls" and choice.message.model_extra["reasoning_content"].strip()
        assert not choice.message.content and len(valid_calls(choice)) >= 1


def test_json_object_with_a_real_model(client):
    ask = [{"role": "user", "content": "What is the capital of France? Answer in JSON."}]
    out = client.chat.completions.create(model="smollm2:135m", max_tokens=40, temperature=0, messages=ask,
                                         response_format={"type": "json_object"})
    assert isinstance(json.loads(out.choices[0].message.content), dict)
    schema = {"type": "object", "properties": {"capital": {"type": "string", "maxLength": 20}},
              "required": ["capital"], "additionalProperties": False}
    out = client.chat.completions.create(model="smollm2:135m", max_tokens=40, temperature=0, messages=ask,
                                         response_format={"type": "json_schema",
                                                          "json_schema": {"name": "c", "schema": schema}})
    assert "Paris" in json.loads(out.choices[0].message.content)["capital"]


def test_embeddings_are_unit_vectors(client, server):
    out = client.embeddings.create(model="tiny", input=["hello world", "hello world", "something else"])
    vectors = [d.embedding for d in out.data]
    hidden = server.pool.models["tiny"].worker.llm.model.config.hidden_size
    assert [len(v) for v in vectors] == [hidden] * 3
    assert all(abs(sum(x * x for x in v) - 1) < 1e-4 for v in vectors)
    assert vectors[0] == pytest.approx(vectors[1], abs=1e-6) and vectors[0] != pytest.approx(vectors[2], abs=1e-3)
    assert out.usage.prompt_tokens > 0
    floats = client.embeddings.create(model="tiny", input="hello world", encoding_format="float")
    assert floats.data[0].embedding == pytest.approx(vectors[0], abs=1e-6)


def test_completions_stream_and_logprobs(client):
    kw = dict(model="tiny", prompt="The sky is", max_tokens=6, temperature=0, logprobs=2)
    whole = client.completions.create(**kw)
    text = "".join(c.choices[0].text for c in client.completions.create(stream=True, **kw) if c.choices)
    assert text == whole.choices[0].text
    lp = whole.choices[0].logprobs
    assert len(lp.tokens) == 6 and all(len(t) == 2 for t in lp.top_logprobs)
    assert whole.usage.completion_tokens == 6


def test_errors_in_openai_format(client):
    with pytest.raises(openai.NotFoundError) as e:
        client.chat.completions.create(model="gpt-4", messages=HI)
    assert e.value.body["param"] == "model"
    with pytest.raises(openai.BadRequestError) as e:
        client.chat.completions.create(model="tiny", messages=[{"role": "user", "content": "word " * 1500}])
    assert "1024" in e.value.message and "context" in e.value.message and e.value.code == "context_length_exceeded"
    with pytest.raises(openai.BadRequestError) as e:
        client.chat.completions.create(model="tiny", messages=HI, temperature=7)
    assert e.value.body["param"] == "temperature"
    with pytest.raises(openai.BadRequestError) as e:
        client.chat.completions.create(model="tiny", messages=HI, tool_choice="required")
    assert e.value.body["param"] == "tool_choice"


def test_context_limit_ends_with_length(client):
    prompt = [{"role": "user", "content": "word " * 990}]
    out = client.chat.completions.create(model="tiny", messages=prompt, max_tokens=500, temperature=0)
    assert out.choices[0].finish_reason == "length"
    assert out.usage.total_tokens == 1024
