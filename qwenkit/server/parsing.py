"""Qwen output -> reasoning, content and tool calls, incrementally. Streaming and non-streaming responses both
run text through this one parser, so they cannot disagree.

`<think>...</think>` (opened by the model or already by the prompt) is reasoning; tool calls are only looked
for after it. Each `<tool_call>{"name": ..., "arguments": {...}}</tool_call>` becomes a call whose name is
announced as soon as it is known and whose arguments stream as they are written."""
import json
import re
import secrets
from dataclasses import dataclass, field

THINK_OPEN, THINK_CLOSE = "<think>", "</think>"
CALL_OPEN, CALL_CLOSE = "<tool_call>", "</tool_call>"
NAME = re.compile(r'"name"\s*:\s*"((?:[^"\\]|\\.)*)"')
ARGUMENTS = re.compile(r'"arguments"\s*:\s*')


@dataclass(slots=True)
class ToolCallDelta:
    index: int
    id: str | None = None
    name: str | None = None
    arguments: str = ""


@dataclass(slots=True)
class Delta:
    reasoning: str = ""
    content: str = ""
    tool_calls: list[ToolCallDelta] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.reasoning or self.content or self.tool_calls)


@dataclass(slots=True)
class ToolCall:
    id: str
    name: str
    arguments: str = ""


def partial_tag(text: str, tag: str) -> int:
    """Length of the longest tail of `text` that is a proper prefix of `tag` (may still become the tag)."""
    for n in range(min(len(tag) - 1, len(text)), 0, -1):
        if tag.startswith(text[-n:]):
            return n
    return 0


def prompt_opens_thinking(prompt_text: str) -> bool:
    """True when the rendered prompt leaves a <think> open for the model (some Qwen3 templates do)."""
    tail = prompt_text.rsplit("<|im_start|>assistant", 1)[-1]
    return tail.rfind(THINK_OPEN) > tail.rfind(THINK_CLOSE)


class OutputParser:
    def __init__(self, in_reasoning: bool = False, parse_tools: bool = False):
        self.mode = "reasoning" if in_reasoning else "start"
        self.parse_tools = parse_tools
        self.buffer = ""
        self.strip_lead = False
        self.calls: list[ToolCall] = []
        self.call_text = ""
        self.call: ToolCall | None = None    # the open call once its name is known
        self.args_sent = 0                   # characters of the open call's arguments already streamed

    def feed(self, text: str) -> Delta:
        self.buffer += text
        delta = Delta()
        while self._step(delta):
            pass
        return delta

    def finish(self) -> Delta:
        delta = Delta()
        if self.mode == "call":
            if self.call is None:
                self._content(delta, CALL_OPEN + self.call_text)
        elif self.mode == "reasoning":
            delta.reasoning += self.buffer
        else:
            self._content(delta, self.buffer, final=True)
        self.buffer = ""
        return delta

    # -- one state transition; True when it consumed something and another may follow --------------------
    def _step(self, delta: Delta) -> bool:
        if self.mode == "start":
            head = self.buffer.lstrip()
            if head.startswith(THINK_OPEN):
                self.buffer, self.mode = head[len(THINK_OPEN):], "reasoning"
                return True
            if THINK_OPEN.startswith(head):
                return False
            self.mode = "content"
            return True
        if self.mode == "reasoning":
            end = self.buffer.find(THINK_CLOSE)
            if end < 0:
                keep = partial_tag(self.buffer, THINK_CLOSE)
                delta.reasoning += self.buffer[:len(self.buffer) - keep]
                self.buffer = self.buffer[len(self.buffer) - keep:]
                return False
            delta.reasoning += self.buffer[:end]
            self.buffer, self.mode, self.strip_lead = self.buffer[end + len(THINK_CLOSE):], "content", True
            return True
        if self.mode == "content":
            start = self.buffer.find(CALL_OPEN) if self.parse_tools else -1
            if start < 0:
                keep = partial_tag(self.buffer, CALL_OPEN) if self.parse_tools else 0
                self.buffer = self._content(delta, self.buffer[:len(self.buffer) - keep]) + \
                    self.buffer[len(self.buffer) - keep:]
                return False
            self._content(delta, self.buffer[:start], final=True)
            self.buffer, self.mode, self.call_text, self.call = self.buffer[start + len(CALL_OPEN):], "call", "", None
            return True
        return self._call_step(delta)

    def _content(self, delta: Delta, text: str, final: bool = False) -> str:
        """Emit `text` as content; returns what is held back (whitespace after tool calls, see below)."""
        if self.strip_lead:
            text = text.lstrip()
            self.strip_lead = not text
        if self.calls and not text.strip():
            return "" if final else text   # whitespace between or after calls is not content
        delta.content += text
        return ""

    def _call_step(self, delta: Delta) -> bool:
        end = self.buffer.find(CALL_CLOSE)
        if end < 0:
            keep = partial_tag(self.buffer, CALL_CLOSE)
            self.call_text += self.buffer[:len(self.buffer) - keep]
            self.buffer = self.buffer[len(self.buffer) - keep:]
            self._stream_call(delta)
            return False
        self.call_text += self.buffer[:end]
        self.buffer, self.mode = self.buffer[end + len(CALL_CLOSE):], "content"
        self._close_call(delta)
        return True

    def _stream_call(self, delta: Delta) -> None:
        if self.call is None:
            m = NAME.search(self.call_text)
            if not m:
                return
            self.call = ToolCall(f"call_{secrets.token_hex(12)}", json.loads(f'"{m.group(1)}"'))
            self.calls.append(self.call)
            self.args_sent = 0
            delta.tool_calls.append(ToolCallDelta(len(self.calls) - 1, self.call.id, self.call.name))
        start, length = _open_arguments(self.call_text)
        if start is not None and length > self.args_sent:
            self._send_args(delta, self.call_text[start + self.args_sent:start + length])

    def _send_args(self, delta: Delta, piece: str) -> None:
        self.call.arguments += piece
        self.args_sent += len(piece)
        index = len(self.calls) - 1
        if delta.tool_calls and delta.tool_calls[-1].index == index:
            delta.tool_calls[-1].arguments += piece
        else:
            delta.tool_calls.append(ToolCallDelta(index, arguments=piece))

    def _close_call(self, delta: Delta) -> None:
        self._stream_call(delta)
        try:
            obj = json.loads(self.call_text)
        except ValueError:
            obj = None
        if not isinstance(obj, dict) or not isinstance(obj.get("name"), str):
            if self.call is None:
                self._content(delta, CALL_OPEN + self.call_text + CALL_CLOSE)
            self.call = None
            return
        if self.call is None:
            self._stream_call(delta)
        full = _arguments_text(self.call_text, obj)
        if full.startswith(self.call.arguments):
            rest = full[len(self.call.arguments):]
            if rest:
                self._send_args(delta, rest)
        self.call = None


def _open_arguments(text: str) -> tuple[int | None, int]:
    """Where an object-valued "arguments" starts in a partial call, and how many of its characters are
    certainly part of it (up to its closing brace, or the end of the text while it is still open)."""
    m = ARGUMENTS.search(text)
    if not m or text[m.end():m.end() + 1] != "{":
        return None, 0
    depth, in_string, escaped = 0, False, False
    for i in range(m.end(), len(text)):
        c = text[i]
        if in_string:
            escaped, in_string = (False, True) if escaped else (c == "\\", c != '"')
            continue
        if c == '"':
            in_string = True
        elif c in "{[":
            depth += 1
        elif c in "}]":
            depth -= 1
            if depth == 0:
                return m.start() + len(m.group()), i + 1 - m.end()
    return m.end(), len(text) - m.end()


def _arguments_text(call_text: str, obj: dict) -> str:
    """The arguments as the model wrote them when they are an object; otherwise as JSON."""
    start, length = _open_arguments(call_text)
    if start is not None:
        raw = call_text[start:start + length]
        try:
            if json.loads(raw) == obj.get("arguments"):
                return raw
        except ValueError:
            pass
    args = obj.get("arguments", {})
    return args if isinstance(args, str) else json.dumps(args, ensure_ascii=False)
