"""Alpaca and ShareGPT records as OpenAI chat messages, and telling the three layouts apart."""
import json
from typing import Any

from qwenkit.tune.problems import RecordError

FORMATS = ("openai", "alpaca", "sharegpt")
SHAREGPT_ROLES = {"human": "user", "user": "user", "gpt": "assistant", "assistant": "assistant",
                  "system": "system", "function_call": "function_call", "observation": "tool", "tool": "tool"}


def detect_format(record: dict) -> str | None:
    if "messages" in record:
        return "openai"
    if "conversations" in record:
        return "sharegpt"
    if "instruction" in record and "output" in record:
        return "alpaca"
    return None


def text_field(record: dict, key: str, required: bool = False) -> str:
    value = record.get(key)
    if value is None and not required:
        return ""
    if not isinstance(value, str):
        raise RecordError(f"`{key}` should be a string" + ("" if value is not None else ", and it is missing"))
    return value


def alpaca_chat(record: dict) -> tuple[list[dict], list | None]:
    """{instruction, input?, output, system?, history?: [[user, assistant], ...]} -> messages."""
    instruction, extra = text_field(record, "instruction", True), text_field(record, "input")
    system = text_field(record, "system")
    messages = [{"role": "system", "content": system}] if system else []
    history = record.get("history") or []
    if not isinstance(history, list) or not all(isinstance(p, list) and len(p) == 2 for p in history):
        raise RecordError("`history` should be a list of [user, assistant] pairs")
    for user, assistant in history:
        messages += [{"role": "user", "content": user}, {"role": "assistant", "content": assistant}]
    prompt = f"{instruction}\n\n{extra}" if instruction and extra else instruction or extra
    messages += [{"role": "user", "content": prompt},
                 {"role": "assistant", "content": text_field(record, "output", True)}]
    return messages, None


def sharegpt_chat(record: dict) -> tuple[list[dict], list | None]:
    """{conversations: [{from, value}], system?, tools?} -> messages; `function_call` turns become the
    assistant's tool_calls and `observation` turns tool results."""
    turns = record.get("conversations")
    if not isinstance(turns, list) or not turns:
        raise RecordError("`conversations` should be a non-empty list of {from, value} turns")
    system = text_field(record, "system")
    messages = [{"role": "system", "content": system}] if system else []
    for i, turn in enumerate(turns):
        if not isinstance(turn, dict):
            raise RecordError(f"conversations[{i}] should be an object with `from` and `value`")
        name, value = turn.get("from", turn.get("role")), turn.get("value", turn.get("content"))
        role = SHAREGPT_ROLES.get(name)
        if role is None:
            raise RecordError(f"conversations[{i}].from: unknown {name!r} "
                              "(expected human, gpt, system, function_call or observation)")
        if role == "function_call":
            add_calls(messages, function_calls(value, i))
        else:
            messages.append({"role": role, "content": value})
    return messages, sharegpt_tools(record.get("tools"))


def function_calls(value: Any, i: int) -> list[dict]:
    """A function_call turn's value: one {name, arguments} object or a list of them, as JSON text."""
    try:
        calls = json.loads(value) if isinstance(value, str) else value
    except ValueError:
        raise RecordError(f"conversations[{i}]: a function_call value should be JSON "
                          '{"name": ..., "arguments": {...}}') from None
    calls = calls if isinstance(calls, list) else [calls]
    if not all(isinstance(c, dict) for c in calls):
        raise RecordError(f"conversations[{i}]: a function_call value should be a JSON object or a list of them")
    return [{"type": "function", "function": c} for c in calls]


def add_calls(messages: list[dict], calls: list[dict]) -> None:
    """Calls join the assistant's text turn right before them, else start an assistant turn of their own."""
    last = messages[-1] if messages else None
    if last is not None and last["role"] == "assistant":
        last["tool_calls"] = [*(last.get("tool_calls") or []), *calls]
    else:
        messages.append({"role": "assistant", "content": "", "tool_calls": calls})


def sharegpt_tools(tools: Any) -> list | None:
    if isinstance(tools, str):
        if not tools.strip():
            return None
        try:
            return json.loads(tools)
        except ValueError:
            raise RecordError("`tools` should be a JSON list of function descriptions") from None
    return tools
