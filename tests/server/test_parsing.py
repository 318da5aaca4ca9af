"""The Qwen output parser on known text: reasoning split, tool calls (several, streamed arguments), nothing
parsed inside <think>, and the same result however the text is cut into stream pieces."""
import json
import random

import pytest

from qwenkit.server.parsing import OutputParser, prompt_opens_thinking

CALLS = ('<tool_call>\n{"name": "get_weather", "arguments": {"city": "Pa}ris", "days": [1, {"a": "\\"}"}]}}\n'
         '</tool_call>\n<tool_call>\n{"name": "get_time", "arguments": {}}\n</tool_call>')


def parse(pieces: list[str], in_reasoning: bool = False, tools: bool = True):
    p = OutputParser(in_reasoning, tools)
    deltas = [p.feed(x) for x in pieces] + [p.finish()]
    calls: dict[int, dict] = {}
    for d in deltas:
        for t in d.tool_calls:
            call = calls.setdefault(t.index, {"id": None, "name": None, "arguments": ""})
            if t.id:
                assert call["id"] is None, "a call is announced once"
                call.update(id=t.id, name=t.name)
            call["arguments"] += t.arguments
    return ("".join(d.reasoning for d in deltas), "".join(d.content for d in deltas),
            [(c["name"], c["arguments"]) for c in calls.values()], p)


def random_cuts(text: str, seed: int) -> list[str]:
    rng, pieces, i = random.Random(seed), [], 0
    while i < len(text):
        n = rng.randint(1, 6)
        pieces.append(text[i:i + n])
        i += n
    return pieces


def test_reasoning_then_several_tool_calls():
    text = '<think>\nI should call <tool_call>{"name": "no"}</tool_call> here.\n</think>\n\nLet me check.' + CALLS
    reasoning, content, calls, parser = parse([text])
    assert reasoning == '\nI should call <tool_call>{"name": "no"}</tool_call> here.\n'
    assert content == "Let me check."
    assert [name for name, _ in calls] == ["get_weather", "get_time"]
    assert json.loads(calls[0][1]) == {"city": "Pa}ris", "days": [1, {"a": '"}'}]}
    assert calls[1][1] == "{}"
    assert len({c.id for c in parser.calls}) == 2


@pytest.mark.parametrize("seed", range(20))
def test_streaming_pieces_give_the_same_result(seed):
    text = "<think>\nhmm</think>\n\nSure." + CALLS
    whole = parse([text])[:3]
    assert parse(random_cuts(text, seed))[:3] == whole
    assert parse(list(text))[:3] == whole


def test_arguments_stream_before_the_call_closes():
    p = OutputParser(parse_tools=True)
    d = p.feed('<tool_call>\n{"name": "f", "arguments": {"q": "abc')
    assert d.tool_calls[0].name == "f" and d.tool_calls[-1].arguments.startswith('{"q": "ab')


def test_prompt_side_think_and_thinking_off():
    assert parse(["plan</think>\n\nanswer"], in_reasoning=True)[:2] == ("plan", "answer")
    assert prompt_opens_thinking("<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n<think>\n")
    assert not prompt_opens_thinking("<|im_start|>assistant\n<think>\n\n</think>\n\n")
    assert parse(["just text"], tools=True)[:3] == ("", "just text", [])


def test_tools_off_or_malformed_calls_stay_text():
    assert parse([CALLS], tools=False)[1] == CALLS
    bad = "<tool_call>not json</tool_call>"
    assert parse([bad])[1:3] == (bad, [])


def test_unfinished_think_is_reasoning():
    assert parse(["<think>still going"])[:2] == ("still going", "")
