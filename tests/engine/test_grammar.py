"""The grammars on the real Qwen tokenizer: tool calls (required: one or more, parallel false: exactly one, a
named function), the reasoning block before a constrained answer (forced open, no end of text inside it,
</think> forced once the budget is spent), random walks through the token masks that always parse, and
LLM.chat / LLM.generate honouring a `constraint`."""
import json
import random

import jsonschema
import pytest
import torch
import xgrammar as xgr

from qwenkit import InvalidRequestError, SamplingParams
from qwenkit.engine.grammar import GrammarConstraint, Grammars, Thinking, json_format, tool_calls_format
from qwenkit.server.parsing import OutputParser
from qwenkit.tokenizer import Tokenizer
from tests.server.test_openai import TOOLS

VOCAB, EOS = 151936, [151645, 151643]
WEATHER = '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris", "celsius": true}}\n</tool_call>'
TIME = '<tool_call>\n{"name": "get_time", "arguments": {"zone": "UTC"}}\n</tool_call>'


@pytest.fixture(scope="module")
def grammars(tiny_models):
    return Grammars(Tokenizer.from_hf_folder(tiny_models("qwen3")[0]), VOCAB, EOS, torch.device("cpu"))


def complete(compiled, text: str) -> bool:
    """Whether `text` followed by the end of text is a whole sentence of the grammar."""
    matcher = xgr.GrammarMatcher(compiled)
    return matcher.accept_string(text) and matcher.accept_token(EOS[0]) and matcher.is_terminated()


def test_required_takes_one_or_more_calls(grammars):
    compiled = grammars.compile(tool_calls_format(TOOLS, required=True, parallel=True))
    assert complete(compiled, WEATHER)
    assert complete(compiled, WEATHER + "\n" + TIME + "\n" + WEATHER)
    assert not complete(compiled, "")
    assert not complete(compiled, "Sure: " + WEATHER)
    assert not complete(compiled, WEATHER.replace("Paris", "Berlin"))
    assert not complete(compiled, WEATHER.replace(', "celsius": true', ""))


def test_parallel_false_takes_exactly_one(grammars):
    compiled = grammars.compile(tool_calls_format(TOOLS, required=True, parallel=False))
    assert complete(compiled, TIME)
    assert not complete(compiled, TIME + "\n" + WEATHER)
    assert not complete(compiled, "")
    auto = grammars.compile(tool_calls_format(TOOLS, required=False, parallel=False))
    assert complete(auto, "No call needed.") and complete(auto, "Let me look. " + TIME)
    assert not complete(auto, TIME + "\n" + WEATHER) and not complete(auto, TIME + " done")


def test_named_function_only(grammars):
    named = [t for t in TOOLS if t["function"]["name"] == "get_time"]
    compiled = grammars.compile(tool_calls_format(named, required=True, parallel=True))
    assert complete(compiled, TIME) and not complete(compiled, WEATHER)


def test_thinking_comes_first_and_is_free(grammars):
    schema = {"type": "object", "properties": {"ok": {"type": "boolean"}}, "required": ["ok"]}
    compiled = grammars.compile(json_format(schema, "f"), Thinking())
    assert complete(compiled, '<think>\nmaybe {"ok": 3} or <tool_call>?\n</think>\n\n{"ok": true}')
    assert not complete(compiled, '{"ok": true}')
    assert not complete(compiled, '<think>hm</think>\n\n{"ok": 1}')
    opened = grammars.compile(json_format(schema, "f"), Thinking(opened=True))
    assert complete(opened, 'hm</think>\n\n{"ok": false}')
    assert not complete(opened, '<think>hm</think>\n\n{"ok": false}')


def test_no_end_of_text_inside_reasoning_and_the_budget_forces_the_close(grammars):
    tok = grammars.tokenizer
    constraint = grammars.factory(grammars.compile(json_format(None, "f"), Thinking(budget=3)))()
    constraint.accept(tok.token_to_id("<think>"))
    word = tok.encode(" word")[0]
    for _ in range(3):
        allowed = constraint.allowed(VOCAB)
        assert allowed[word] and not allowed[EOS].any()
        constraint.accept(word)
    allowed = constraint.allowed(VOCAB)
    assert not allowed[word] and allowed[tok.token_to_id("</think>")] and int(allowed.sum()) < 10


def test_mask_matches_xgrammar(grammars):
    constraint = grammars.factory(grammars.compile(tool_calls_format(TOOLS, required=True, parallel=True)))()
    for piece in ("", "<tool_call>\n", '{"name": "get_weather", "arguments": {"city": "'):
        assert constraint.matcher.accept_string(piece) or not piece
        mask = constraint.allowed(VOCAB)
        scores = torch.zeros(1, VOCAB)
        xgr.apply_token_bitmask_inplace(scores, constraint.bitmask, vocab_size=VOCAB)
        assert torch.equal(mask, scores[0] == 0) and 0 < int(mask.sum()) < VOCAB


@pytest.mark.parametrize("parallel", [True, False])
def test_random_walks_always_parse(grammars, parallel):
    """What a random-weight model does under the mask: any allowed token, every time."""
    tok = grammars.tokenizer
    compiled = grammars.compile(tool_calls_format(TOOLS, required=True, parallel=parallel), Thinking(budget=8))
    schemas = {t["function"]["name"]: t["function"]["parameters"] for t in TOOLS}
    counts = []
    for seed in range(6):
        rng, constraint, ids = random.Random(seed), GrammarConstraint(compiled, VOCAB), []
        while not ids or ids[-1] not in EOS:
            token = rng.choice(constraint.allowed(VOCAB).nonzero().flatten().tolist())
            constraint.accept(token)
            ids.append(token)
            assert len(ids) < 2000
        parser = OutputParser(parse_tools=True)
        parsed = [parser.feed(tok.decode(ids[:-1], skip_special_tokens=False)), parser.finish()]
        assert "".join(p.content for p in parsed) == ""
        assert "".join(p.reasoning for p in parsed)
        for call in parser.calls:
            jsonschema.validate(json.loads(call.arguments), schemas[call.name])
        counts.append(len(parser.calls))
    assert min(counts) >= 1 and (max(counts) > 1 if parallel else max(counts) == 1)


def test_forced_tokens_are_the_tokenizers_cut_of_the_forced_text(grammars):
    tok = grammars.tokenizer
    only = [t for t in TOOLS if t["function"]["name"] == "get_time"]
    constraint = grammars.factory(grammars.compile(tool_calls_format(only, required=True, parallel=False)))()
    forced = constraint.forced()
    text = tok.decode(forced, skip_special_tokens=False)
    assert len(text) > 20 and '<tool_call>\n{"name": "get_time", "arguments": {"zone": "'.startswith(text)
    assert forced == tok.encode(text)
    for token in forced:
        assert constraint.matcher.accept_token(token)
    held_back = constraint.matcher.find_jump_forward_string()   # a piece a longer token could extend
    assert text + held_back == '<tool_call>\n{"name": "get_time", "arguments": {"zone": "' and len(held_back) <= 2


COLOR = {"type": "object", "properties": {"color": {"enum": ["red", "green", "blue"]}, "bright": {"type": "boolean"}},
         "required": ["color", "bright"]}   # bounded: a random model writes digits of an integer forever


@pytest.fixture(scope="module")
def llm(tiny_models):
    from qwenkit import LLM
    return LLM(str(tiny_models("qwen3")[0]), quant="none", max_model_len=512, threads=1)


@pytest.fixture(scope="module")
def color(llm):
    """The compiled COLOR grammar for the LLM's tokenizer, built as docs/python-api.md shows."""
    grammars = Grammars(llm.tokenizer, llm.model.config.vocab_size, llm.generator.eos_token_ids, llm.device)
    return grammars, grammars.compile(json_format(COLOR, "schema"))


def test_llm_chat_and_generate_follow_a_constraint(llm, color):
    """The random-weight model writes no JSON of its own; with the constraint every sequence is valid."""
    grammars, compiled = color
    constraint = grammars.factory(compiled)
    question = [{"role": "user", "content": "Pick a color."}]
    greedy = SamplingParams(temperature=0, max_tokens=24)
    free = llm.chat(question, greedy)[0].outputs[0].text
    with pytest.raises((ValueError, jsonschema.ValidationError)):
        jsonschema.validate(json.loads(free), COLOR)
    out = llm.chat(question, greedy, constraint=constraint)[0].outputs[0]
    jsonschema.validate(json.loads(out.text), COLOR)
    assert out.finish_reason == "stop" and out.text == json.dumps(json.loads(out.text))
    sampled = SamplingParams(n=2, temperature=1.0, seed=3, max_tokens=24)
    for request in llm.generate(["Colors:", "A number:"], sampled, constraint=constraint):
        for completion in request.outputs:
            jsonschema.validate(json.loads(completion.text), COLOR)


def test_llm_refuses_a_constraint_that_is_no_factory(llm, color):
    _, compiled = color
    with pytest.raises(InvalidRequestError, match="constraint: got a CompiledGrammar; pass a factory"):
        llm.chat([{"role": "user", "content": "Hi"}], SamplingParams(max_tokens=4), constraint=compiled)


def test_jump_forward_runs_forced_tokens_in_one_pass(llm):
    """A required call to a named tool forces `<tool_call>\\n{"name": "get_time", "arguments": {"zone": "` before the
    model has anything to choose: with jump-forward those tokens ride along in one forward pass, the output still
    parses, and its text is exactly the decoding of its tokens."""
    grammars = Grammars(llm.tokenizer, llm.model.config.vocab_size, llm.generator.eos_token_ids, llm.device)
    compiled = grammars.compile(tool_calls_format([t for t in TOOLS if t["function"]["name"] == "get_time"],
                                                  required=True, parallel=False))
    prompt = llm.encode("What time is it?")
    runs = {}
    for jump in (False, True):
        engine = llm.engine
        engine.jump_forward = jump
        params = SamplingParams(temperature=0, max_tokens=48)
        rid = engine.add_request(prompt, params, constraint=grammars.factory(compiled))
        steps, ids, text = 0, [], ""
        while engine.has_unfinished():
            steps += 1
            for got, delta in engine.step():
                assert got == rid
                ids.append(delta.token_id)
                text += delta.text
            assert steps < 100
        runs[jump] = steps, ids, text
    llm.engine.jump_forward = True
    for _, ids, text in runs.values():
        assert text.startswith('<tool_call>\n{"name": "get_time", "arguments": {"zone": "')
        assert text == llm.tokenizer.decode(ids, skip_special_tokens=True)
    (plain_steps, plain_ids, _), (jump_steps, jump_ids, _) = runs[False], runs[True]
    assert plain_steps == len(plain_ids)                   # one forward pass per token
    assert jump_steps <= len(jump_ids) - 10                # the forced opening alone is more than ten tokens
