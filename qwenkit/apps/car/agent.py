"""The in-car agent loop: a request -> tool calls -> tool results -> a short spoken answer. The conversation
(OpenAI chat messages) is kept between turns, so follow-ups like "make it 20 degrees instead" have context."""
import json
import time
from dataclasses import dataclass, field
from typing import Protocol

from qwenkit.apps.car.prompt import SYSTEM_PROMPT, compact

MAX_ROUNDS = 3


@dataclass(slots=True)
class ToolCall:
    name: str
    arguments: dict

    def to_dict(self) -> dict:
        return {"name": self.name, "arguments": self.arguments}

    def message(self, call_id: str) -> dict:
        """The OpenAI chat form, as sent to endpoints and written to training data."""
        arguments = json.dumps(self.arguments, ensure_ascii=False)
        return {"id": call_id, "type": "function", "function": {"name": self.name, "arguments": arguments}}


@dataclass(slots=True)
class Reply:
    """One model step: the text to speak (or an empty string), the calls it asked for, and how many
    <tool_call> blocks it wrote that were not a JSON object with a name and object arguments."""
    content: str
    calls: list[ToolCall] = field(default_factory=list)
    invalid: int = 0
    raw: str = ""


class Backend(Protocol):
    def reply(self, messages: list[dict]) -> Reply: ...


@dataclass(slots=True)
class Turn:
    text: str
    tool_calls: list[ToolCall] = field(default_factory=list)
    tool_results: list[dict] = field(default_factory=list)
    answer: str = ""
    timings: dict[str, float] = field(default_factory=dict)
    rounds: int = 0
    invalid_calls: int = 0
    raw: list[str] = field(default_factory=list)


def assistant_calls(calls: list[ToolCall], first_id: int) -> tuple[dict, list[str]]:
    ids = [f"call_{first_id + i}" for i in range(len(calls))]
    return {"role": "assistant", "content": "", "tool_calls": [c.message(i) for c, i in zip(calls, ids)]}, ids


def tool_message(call_id: str, result: dict) -> dict:
    return {"role": "tool", "tool_call_id": call_id, "content": compact(result)}


class CarAgent:
    def __init__(self, world, backend: Backend, system: str | None = None, max_rounds: int = MAX_ROUNDS):
        """`system` defaults to the prompt the backend's model expects (its `system` attribute: TUNED_PROMPT for
        a tuned adapter), else SYSTEM_PROMPT with the tool list."""
        system = system or getattr(backend, "system", SYSTEM_PROMPT)
        self.world, self.backend, self.system, self.max_rounds = world, backend, system, max_rounds
        self.messages: list[dict] = [{"role": "system", "content": system}]
        self.calls_made = 0

    def reset(self, world=None) -> None:
        self.world = world if world is not None else self.world
        self.messages = [{"role": "system", "content": self.system}]
        self.calls_made = 0

    def turn(self, text: str) -> Turn:
        started = time.perf_counter()
        turn, llm, tools = Turn(text), 0.0, 0.0
        self.messages.append({"role": "user", "content": text})
        for round_ in range(self.max_rounds + 1):
            t0 = time.perf_counter()
            reply = self.backend.reply(self.messages)
            llm += time.perf_counter() - t0
            turn.raw.append(reply.raw)
            turn.invalid_calls += reply.invalid
            if not reply.calls or round_ == self.max_rounds:
                turn.answer = reply.content.strip()
                break
            turn.rounds += 1
            message, ids = assistant_calls(reply.calls, self.calls_made)
            self.calls_made += len(ids)
            self.messages.append(message)
            for call, call_id in zip(reply.calls, ids):
                t0 = time.perf_counter()
                result = self.world.execute(call.name, call.arguments)
                tools += time.perf_counter() - t0
                turn.tool_calls.append(call)
                turn.tool_results.append(result)
                self.messages.append(tool_message(call_id, result))
        self.messages.append({"role": "assistant", "content": turn.answer})
        turn.timings = {"llm": llm, "tools": tools, "total": time.perf_counter() - started}
        return turn
