"""The car's two system prompts.

SYSTEM_PROMPT is for a model that has not learned the tools (the untuned base, a model behind an endpoint): the
header and one line per tool, `name(args): what it does`, with the argument names taken from the tool schemas
(160 SmolLM2 tokens; no JSON schemas, since a small model pays for every token at each step).

TUNED_PROMPT is the header alone (24 tokens). qwenkit tunes the car adapter on it, so the tools live in the
adapter's weights rather than in every prompt: a training example averages 181 tokens instead of 310, so a
tune sees more examples per minute, and every turn prefills 136 fewer tokens. A model tuned this way is run
with TUNED_PROMPT."""
import json

from qwenkit.apps.car.tools import TOOL_SCHEMAS

HEADER = "You are a car assistant. Call tools in <tool_call> tags, then answer briefly with the figures returned."
DESCRIPTIONS = {
    "route_info": "distance and time left",
    "set_temperature": "16-28",
    "set_fan": "0-5",
    "set_seat_heating": "0-3",
    "open_window": "which: driver, passenger, rear_left, rear_right or all",
    "vehicle_status": "battery and range",
}
HIDDEN = frozenset({"via", "next", "did_you_mean", "valid", "valid_arguments", "contacts"})
LIST_LIMIT = 1


def signature(schema: dict) -> str:
    """navigate_to(destination), find_nearby(category, max_distance_m?): optional arguments end in '?'."""
    fn = schema["function"]
    props, required = fn["parameters"]["properties"], set(fn["parameters"]["required"])
    return f"{fn['name']}({', '.join(k + ('' if k in required else '?') for k in props)})"


def system_prompt() -> str:
    lines = [signature(s) + (f": {DESCRIPTIONS[name]}" if (name := s["function"]["name"]) in DESCRIPTIONS else "")
             for s in TOOL_SCHEMAS]
    return "\n".join([HEADER, *lines])


SYSTEM_PROMPT = system_prompt()
TUNED_PROMPT = HEADER


def trim(value):
    if isinstance(value, dict):
        return {k: trim(v) for k, v in value.items() if k not in HIDDEN}
    if isinstance(value, list):
        return [trim(v) for v in value[:LIST_LIMIT]]
    return value


def compact(result: dict) -> str:
    """A tool result as the model sees it: compact JSON without the route's streets, the next turn and the lists of
    suggestions that come with errors (the answers never use them), other lists cut to their first item."""
    return json.dumps(trim(result), ensure_ascii=False, separators=(",", ":"))
