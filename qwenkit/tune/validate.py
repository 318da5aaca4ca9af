"""One chat example checked and put in the shape templates expect: string contents, object-valued tool-call
arguments, wrapped tool descriptions. Every problem found is returned, not just the first."""
import json
from typing import Any

from qwenkit.tokenizer.chat_template import REASONING_FIELDS

ROLES = ("system", "user", "assistant", "tool")


def check_chat(messages: Any, tools: Any) -> tuple[list[dict], list[dict] | None, list[str]]:
    problems: list[str] = []
    if not isinstance(messages, list) or not messages:
        return [], None, ["`messages` should be a non-empty list of {role, content} objects"]
    chat = [check_message(m, n, problems) for n, m in enumerate(messages, 1)]
    if not problems:
        check_tool_results(chat, problems)
        if not any(m["role"] == "assistant" and m.get("weight", 1) and (m["content"].strip() or m.get("tool_calls"))
                   for m in chat):
            problems.append("nothing to learn: no assistant turn with content or tool calls")
    return chat, check_tools(tools, problems), problems


def check_message(message: Any, n: int, problems: list[str]) -> dict:
    if not isinstance(message, dict):
        problems.append(f"turn {n}: should be an object with `role` and `content`")
        return {"role": "?", "content": ""}
    role = message.get("role")
    where = f"turn {n} ({role})"
    if role not in ROLES:
        problems.append(f"turn {n}: unknown role {role!r} (expected system, user, assistant or tool)")
    content = content_text(message.get("content"), where, problems)
    out = {"role": role, "content": content or ""}
    if role == "tool" and message.get("tool_call_id") is not None:
        out["tool_call_id"] = message["tool_call_id"]
    if role != "assistant":
        return out
    reasoning = next((message[k] for k in REASONING_FIELDS if message.get(k) is not None), None)
    if reasoning is not None:
        if isinstance(reasoning, str):
            out["reasoning_content"] = reasoning
        else:
            problems.append(f"{where}: reasoning_content should be a string")
    calls = message.get("tool_calls") or []
    if not isinstance(calls, list):
        problems.append(f"{where}: tool_calls should be a list")
    elif calls:
        out["tool_calls"] = [tool_call(c, f"{where}: tool_calls[{j}]", problems) for j, c in enumerate(calls)]
    if "weight" in message:
        if message["weight"] not in (0, 1):
            problems.append(f"{where}: weight should be 0 (not trained on) or 1")
        out["weight"] = message["weight"]
    if content is not None and not content.strip() and not calls and not reasoning:
        problems.append(f"{where}: empty reply (no content and no tool calls)")
    return out


def content_text(content: Any, where: str, problems: list[str]) -> str | None:
    if content is None or isinstance(content, str):
        return content or ""
    if isinstance(content, list) and all(isinstance(p, dict) and p.get("type", "text") == "text"
                                         and isinstance(p.get("text"), str) for p in content):
        return "\n".join(p["text"] for p in content)
    problems.append(f'{where}: content should be a string or a list of {{"type": "text", "text": ...}} parts')
    return None


def tool_call(call: Any, where: str, problems: list[str]) -> dict:
    function = call.get("function", call) if isinstance(call, dict) else None
    if not isinstance(function, dict) or not isinstance(function.get("name"), str) or not function["name"]:
        problems.append(f"{where}: should be {{\"function\": {{\"name\": ..., \"arguments\": ...}}}}")
        return {}
    arguments = function.get("arguments") or {}
    if isinstance(arguments, str):
        try:
            arguments = json.loads(arguments)
        except ValueError:
            problems.append(f"{where}: arguments are not valid JSON")
            return {}
    if not isinstance(arguments, dict):
        problems.append(f"{where}: arguments should be a JSON object")
    out = {"type": "function", "function": {"name": function["name"], "arguments": arguments}}
    return {"id": call["id"], **out} if call.get("id") is not None else out


def check_tool_results(chat: list[dict], problems: list[str]) -> None:
    """Each tool result answers a call of the assistant turn before it: by tool_call_id when both carry ids,
    else in order."""
    waiting: list = []
    for n, message in enumerate(chat, 1):
        if message["role"] != "tool":
            waiting = [c.get("id") for c in message.get("tool_calls", [])]
            continue
        wanted = message.get("tool_call_id")
        match = wanted if wanted in waiting else next((c for c in waiting if wanted is None or c is None), False)
        if match is False:
            problems.append(f"turn {n} (tool): a tool result with no matching tool call"
                            + (f" (tool_call_id {wanted!r})" if wanted is not None else ""))
        else:
            waiting.remove(match)


def check_tools(tools: Any, problems: list[str]) -> list[dict] | None:
    """OpenAI tool descriptions; bare function descriptions get wrapped as {"type": "function", ...}."""
    if tools is None or tools == []:
        return None
    if not isinstance(tools, list) or not all(isinstance(t, dict) for t in tools):
        problems.append("`tools` should be a list of tool descriptions")
        return None
    wrapped = [t if "function" in t else {"type": "function", "function": t} for t in tools]
    for i, tool in enumerate(wrapped):
        if not isinstance(tool["function"], dict) or not isinstance(tool["function"].get("name"), str):
            problems.append(f"tools[{i}]: should have a function name")
    return wrapped
