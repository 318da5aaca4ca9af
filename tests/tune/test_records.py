"""Reading training data: OpenAI, Alpaca and ShareGPT layouts, and every problem reported with its line."""
import json

import pytest

from qwenkit.errors import InvalidRequestError, QwenkitError
from qwenkit.tune.problems import DataError
from qwenkit.tune.records import load_examples

USER = {"role": "user", "content": "Hi"}
REPLY = {"role": "assistant", "content": "Hello."}
CALL = {"role": "assistant", "content": None, "tool_calls": [
    {"id": "c1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}}]}
RESULT = {"role": "tool", "tool_call_id": "c1", "content": "sunny"}


def write(path, *records) -> str:
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in records))
    return str(path)


def problems(path, fmt="auto") -> list[str]:
    with pytest.raises(DataError) as e:
        load_examples(path, fmt)
    assert isinstance(e.value, QwenkitError)
    return e.value.problems


def test_openai_records_are_normalised(tmp_path):
    weather = {"name": "get_weather", "parameters": {"type": "object"}}
    path = write(tmp_path / "chat.jsonl",
                 {"messages": [USER, CALL, RESULT, {"role": "assistant", "content": [
                     {"type": "text", "text": "It is"}, {"type": "text", "text": "sunny."}]}], "tools": [weather]},
                 "",
                 {"messages": [USER, {"role": "assistant", "content": "4", "reasoning": "2+2"}]})
    first, second = load_examples(path)
    assert (first.line, second.line, first.source, first.fmt) == (1, 3, path, "openai")
    assert first.messages[1] == {"role": "assistant", "content": "", "tool_calls": [
        {"id": "c1", "type": "function", "function": {"name": "get_weather", "arguments": {"city": "Paris"}}}]}
    assert first.messages[2] == RESULT
    assert first.messages[3]["content"] == "It is\nsunny."
    assert first.tools == [{"type": "function", "function": weather}]
    assert second.messages[1] == {"role": "assistant", "content": "4", "reasoning_content": "2+2"}
    assert second.tools is None


def test_alpaca_conversion(tmp_path):
    path = write(tmp_path / "alpaca.jsonl",
                 {"instruction": "Translate to German.", "input": "cat", "output": "Katze", "system": "Be brief."},
                 {"instruction": "Name a prime.", "input": "", "output": "7",
                  "history": [["Hi", "Hello."]]})
    first, second = load_examples(path)
    assert first.fmt == "alpaca"
    assert first.messages == [{"role": "system", "content": "Be brief."},
                              {"role": "user", "content": "Translate to German.\n\ncat"},
                              {"role": "assistant", "content": "Katze"}]
    assert second.messages == [USER, REPLY, {"role": "user", "content": "Name a prime."},
                               {"role": "assistant", "content": "7"}]


def test_sharegpt_conversion(tmp_path):
    tools = [{"name": "get_weather", "description": "Weather", "parameters": {"type": "object"}}]
    record = {"system": "Be brief.", "tools": json.dumps(tools), "conversations": [
        {"from": "human", "value": "Weather in Paris?"},
        {"from": "function_call", "value": json.dumps({"name": "get_weather", "arguments": {"city": "Paris"}})},
        {"from": "observation", "value": "sunny"},
        {"from": "gpt", "value": "Let me check Rome too."},
        {"from": "function_call", "value": '{"name": "get_weather", "arguments": "{\\"city\\": \\"Rome\\"}"}'},
        {"from": "observation", "value": "rain"},
        {"from": "gpt", "value": "Paris sunny, Rome rain."}]}
    [example] = load_examples(write(tmp_path / "sharegpt.jsonl", record))
    call = {"type": "function", "function": {"name": "get_weather", "arguments": {"city": "Paris"}}}
    rome = {"type": "function", "function": {"name": "get_weather", "arguments": {"city": "Rome"}}}
    assert example.fmt == "sharegpt"
    assert example.tools == [{"type": "function", "function": tools[0]}]
    assert example.messages == [
        {"role": "system", "content": "Be brief."}, {"role": "user", "content": "Weather in Paris?"},
        {"role": "assistant", "content": "", "tool_calls": [call]}, {"role": "tool", "content": "sunny"},
        {"role": "assistant", "content": "Let me check Rome too.", "tool_calls": [rome]},
        {"role": "tool", "content": "rain"}, {"role": "assistant", "content": "Paris sunny, Rome rain."}]


def test_format_is_detected_per_file_and_can_be_forced(tmp_path):
    write(tmp_path / "a.jsonl", {"instruction": "Hi", "output": "Hello."})
    write(tmp_path / "b.jsonl", {"conversations": [{"from": "human", "value": "Hi"}, {"from": "gpt", "value": "Yo"}]})
    write(tmp_path / "c.jsonl", {"messages": [USER, REPLY]})
    examples = load_examples(tmp_path)
    assert [e.fmt for e in examples] == ["alpaca", "sharegpt", "openai"]
    assert all(e.messages[-2:] == [USER, e.messages[-1]] for e in examples)
    [problem] = problems(tmp_path / "b.jsonl", fmt="alpaca")
    assert problem.startswith(f"{tmp_path / 'b.jsonl'}:1: `instruction`")
    with pytest.raises(InvalidRequestError, match="fmt"):
        load_examples(tmp_path, fmt="csv")


def test_every_problem_is_reported_with_its_line(tmp_path):
    path = write(tmp_path / "bad.jsonl",
                 {"messages": [USER, REPLY]},                                               # 1: fine
                 '{"messages": [',                                                           # 2
                 {"messages": [{"role": "bot", "content": "Hi"}, REPLY]},                   # 3
                 {"messages": [USER, RESULT, REPLY]},                                        # 4
                 {"messages": [{"role": "system", "content": "x"}, USER]},                  # 5
                 {"messages": [USER, {"role": "assistant", "content": "  "}, USER, REPLY]},  # 6
                 {"messages": [USER, {**CALL, "tool_calls": [
                     {"function": {"name": "f", "arguments": "{oops"}}]}]},                 # 7
                 "[1, 2]",                                                                   # 8
                 {"prompt": "Hi", "completion": "Hello."},                                   # 9: OpenAI, as line 1
                 {"messages": [USER, {"role": "assistant", "content": 5}]},                 # 10
                 {"messages": [USER, CALL, {**RESULT, "tool_call_id": "c9"}, REPLY]},       # 11
                 {"messages": [USER, CALL, RESULT, RESULT, REPLY]},                          # 12
                 {"messages": [USER, {**REPLY, "weight": 0}]})                              # 13
    found = problems(path)
    expected = {2: "malformed JSON", 3: "turn 1: unknown role 'bot'",
                4: "turn 2 (tool): a tool result with no matching tool call (tool_call_id 'c1')",
                5: "nothing to learn", 6: "turn 2 (assistant): empty reply",
                7: "turn 2 (assistant): tool_calls[0]: arguments are not valid JSON",
                8: "expected a JSON object per line, got an array", 9: "no `messages` list",
                10: "turn 2 (assistant): content should be",
                11: "tool_call_id 'c9'", 12: "turn 4 (tool): a tool result with no matching tool call",
                13: "nothing to learn"}
    assert len(found) == len(expected)
    for line, text in expected.items():
        assert any(p.startswith(f"{path}:{line}: ") and text in p for p in found), (line, found)


def test_layouts_and_roles_are_named(tmp_path):
    path = write(tmp_path / "odd.jsonl", {"prompt": "Hi"},
                 {"conversations": [{"from": "human", "value": "Hi"}, {"from": "bot", "value": "Yo"}]})
    first, second = problems(path)
    assert first.startswith(f"{path}:1: unknown record layout")
    assert second == f"{path}:2: conversations[1].from: unknown 'bot' " \
                     "(expected human, gpt, system, function_call or observation)"


def test_tool_results_match_by_id_or_in_order(tmp_path):
    two = {"role": "assistant", "content": "", "tool_calls": [
        {"id": "a", "function": {"name": "f", "arguments": {}}}, {"id": "b", "function": {"name": "g"}}]}
    plain = {**two, "tool_calls": [{"function": {"name": "f"}}, {"function": {"name": "g"}}]}
    path = write(tmp_path / "tools.jsonl",
                 {"messages": [USER, two, {"role": "tool", "tool_call_id": "b", "content": "1"},
                               {"role": "tool", "tool_call_id": "a", "content": "2"}, REPLY]},
                 {"messages": [USER, plain, {"role": "tool", "content": "1"}, {"role": "tool", "content": "2"},
                               REPLY]})
    assert len(load_examples(path)) == 2
    path = write(tmp_path / "extra.jsonl", {"messages": [USER, plain, *[{"role": "tool", "content": "x"}] * 3]})
    assert problems(path) == [f"{path}:1: turn 5 (tool): a tool result with no matching tool call"]


def test_listing_is_capped_and_arrays_get_a_hint(tmp_path):
    path = write(tmp_path / "many.jsonl", *[{"messages": [USER]}] * 25)
    with pytest.raises(DataError) as e:
        load_examples(path)
    text = str(e.value)
    assert text.startswith("25 problems in the training data")
    assert f"{path}:20: nothing to learn" in text and f"{path}:21:" not in text
    assert text.endswith("... and 5 more")
    path = write(tmp_path / "array.jsonl", "[", json.dumps({"messages": [USER, REPLY]}) + ",", "]")
    assert "write one JSON object per line" in problems(path)[0]
    assert problems(tmp_path / "missing.jsonl") == [f"{tmp_path / 'missing.jsonl'}: no such file or folder"]
