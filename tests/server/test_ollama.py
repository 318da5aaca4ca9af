"""The ollama package against a live server: chat, streaming, tools, format, think, tags/show/ps/embed."""
import json

import jsonschema
import ollama
import pytest

from tests.server.test_openai import TOOLS


@pytest.fixture()
def client(server):
    return ollama.Client(host=server.url, timeout=120)


def test_chat_with_a_real_model(client):
    out = client.chat(model="smollm2:135m", messages=[{"role": "user", "content": "What is the capital of France?"}],
                      options={"temperature": 0, "num_predict": 20})
    assert "Paris" in out.message.content
    assert out.done and out.eval_count <= 20 and out.prompt_eval_count > 0


def test_stream_matches_non_stream(client):
    kw = dict(model="tiny", messages=[{"role": "user", "content": "hi"}], think=False,
              options={"temperature": 0.8, "seed": 11, "num_predict": 12})
    whole = client.chat(**kw)
    parts = list(client.chat(stream=True, **kw))
    assert "".join(p.message.content for p in parts) == whole.message.content
    assert parts[-1].done and parts[-1].done_reason == "length" and parts[-1].eval_count == 12
    assert not any(p.done for p in parts[:-1])


def test_generate_streams_ndjson(client):
    parts = list(client.generate(model="tiny", prompt="hi", stream=True, options={"num_predict": 5, "seed": 1}))
    assert parts[-1].done and sum(1 for p in parts if p.response) >= 1


def test_format_schema_is_enforced(client):
    schema = {"type": "object", "properties": {"ok": {"type": "boolean"}, "colour": {"enum": ["red", "blue"]}},
              "required": ["ok", "colour"]}
    out = client.chat(model="tiny", messages=[{"role": "user", "content": "hi"}], format=schema, think=False,
                      options={"num_predict": 40, "seed": 2})
    jsonschema.validate(json.loads(out.message.content), schema)
    out = client.generate(model="smollm2:135m", prompt="What is the capital of France? Answer in JSON.", format="json",
                          options={"num_predict": 40, "temperature": 0})
    assert isinstance(json.loads(out.response), dict)


def test_format_with_thinking_on(client, shared_qwen):  # the Qwen3 template comes from ../shared
    schema = {"type": "object", "properties": {"ok": {"type": "boolean"}}, "required": ["ok"]}
    out = client.chat(model="tiny", messages=[{"role": "user", "content": "hi"}], format=schema, think=True,
                      options={"num_predict": 40, "seed": 4})
    assert out.message.thinking and out.done_reason == "stop"
    jsonschema.validate(json.loads(out.message.content), schema)


def test_tool_calls_come_back_as_objects(client):
    # the Qwen3 template offers the tools; a constrained named call is checked through the OpenAI API, here
    # the model is free (tool_choice auto), so check the request round trip and the shape of any calls
    out = client.chat(model="tiny", messages=[{"role": "user", "content": "weather in Paris?"}], tools=TOOLS,
                      think=False, options={"num_predict": 8})
    for call in out.message.tool_calls or []:
        assert isinstance(call.function.arguments, dict)
    history = [{"role": "user", "content": "weather?"},
               {"role": "assistant", "content": "", "tool_calls": [
                   {"function": {"name": "get_weather", "arguments": {"city": "Paris", "celsius": True}}}]},
               {"role": "tool", "content": "sunny"}]
    assert client.chat(model="tiny", messages=history, tools=TOOLS, options={"num_predict": 3}).done


def test_think_false_closes_the_thinking_block(client, server, shared_qwen):  # needs the Qwen3 template
    show = client.show("tiny")
    assert "thinking" in show.capabilities and "tools" in show.capabilities
    out = client.chat(model="tiny", messages=[{"role": "user", "content": "hi"}], think=False,
                      options={"num_predict": 6, "seed": 3})
    assert not out.message.thinking
    streamed = list(client.chat(model="tiny", messages=[{"role": "user", "content": "hi"}], think=False,
                                stream=True, options={"num_predict": 6, "seed": 3}))
    assert not any(p.message.thinking for p in streamed)
    assert "".join(p.message.content for p in streamed) == out.message.content


def test_tags_ps_embed(client, server):
    assert {m.model for m in client.list().models} == {"tiny", "smollm2:135m"}
    assert "tiny" in {m.model for m in client.ps().models}
    out = client.embed(model="tiny", input=["a", "b"])
    assert len(out.embeddings) == 2 and abs(sum(x * x for x in out.embeddings[0]) - 1) < 1e-4


def test_errors_are_ollama_shaped(client):
    with pytest.raises(ollama.ResponseError) as e:
        client.chat(model="nope", messages=[{"role": "user", "content": "hi"}])
    assert e.value.status_code == 404 and "nope" in e.value.error
    with pytest.raises(ollama.ResponseError) as e:
        client.chat(model="tiny", messages=[{"role": "user", "content": "word " * 200}], options={"num_ctx": 64})
    assert e.value.status_code == 400 and "num_ctx" in e.value.error
