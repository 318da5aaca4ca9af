"""The regex baseline: keywords and patterns turn a request into tool calls, and the answer is templated from
the results. A backend like the model ones, so it runs in the same agent loop and evaluation. Follow-ups use
the conversation: the previous calls and the places a search returned."""
import json
import re

from qwenkit.apps.car.agent import Reply, ToolCall
from qwenkit.apps.car.phrases import CATEGORY_WORDS, spoken_answer

JOIN = re.compile(r"\s*(?:,? and then |,? and also |, and |, then |\. also | and )\s*", re.I)
TRAILER = re.compile(r"[\s,]*(?:please|thanks|thank you|now|for me|instead)?[\s.!?]*$", re.I)
NUMBER = re.compile(r"(?<![\w.])(\d+(?:\.\d+)?)")
SIDES = [(r"rear left|back left", "rear_left"), (r"rear right|back right", "rear_right"),
         (r"passenger", "passenger"), (r"driver|\bmy\b", "driver")]
CATEGORIES = sorted(((spoken, key) for key, forms in CATEGORY_WORDS.items() for pair in forms for spoken in pair),
                    key=lambda item: -len(item[0]))
STEPS = {"one": 1, "a": 1, "two": 2, "three": 3}
NAVIGATE = re.compile(r"(?:(?:navigate|take me|drive|go|head|route me|directions|get to|get me|bring me|destination|"
                      r"route|guide me|way|course)\s.*?\bto|set course for)\s+(?P<place>.+)", re.I)
NAVIGATE_BEFORE = re.compile(r"^(?:\w+, )?(?P<place>.+?), take me there", re.I)
THERE = re.compile(r"(?:take me|go|navigate|drive|head) there|(?:first|closest|nearest) one")
FILLER = re.compile(r"hey car|hey|ok|okay|hi|um|so|car|sounds good")
CALL = re.compile(r"\b(?:(?:call|phone|ring|dial)(?: up)?|give a ring to)\s+(?P<name>.+)|give\s+(?P<give>.+?)\s+a call|"
                  r"get\s+(?P<get>.+?)\s+on the phone", re.I)
PLAY = re.compile(r"\b(?:play(?: me| some)?|put on|listen to|hear|turn on|switch to|queue up|stream|throw on)\s+"
                  r"(?P<query>.+)", re.I)
MAX = re.compile(r"\bmax|all the way|\bfull\b|the top|as high as|\bhigh\b")
EVERYWHERE = re.compile(r"all zones|everywhere|everyone|whole car|all around|all seats")
DISTANCE = re.compile(r"(\d+)\s*(?:m\b|meters?\b|metres?\b)")


class BaselineBackend:
    def reply(self, messages: list[dict]) -> Reply:
        if messages[-1]["role"] == "tool":
            calls, results = last_round(messages)
            return Reply(spoken_answer(calls, results))
        calls = plan(messages[-1]["content"], history(messages[:-1]))
        if not calls:
            return Reply("Sorry, I can't help with that.")
        return Reply("", [ToolCall(c["name"], c["arguments"]) for c in calls])


def history(messages: list[dict]) -> list[tuple[dict, dict]]:
    """(call, result) pairs of earlier turns, oldest first."""
    pairs, pending = [], []
    for m in messages:
        for call in m.get("tool_calls") or []:
            pending.append({"name": call["function"]["name"], "arguments": json.loads(call["function"]["arguments"])})
        if m["role"] == "tool" and pending:
            pairs.append((pending.pop(0), json.loads(m["content"])))
    return pairs


def last_round(messages: list[dict]) -> tuple[list[dict], list[dict]]:
    start = max(i for i, m in enumerate(messages) if m.get("tool_calls"))
    pairs = history(messages[start:])
    return [c for c, _ in pairs], [r for _, r in pairs]


def plan(text: str, past: list[tuple[dict, dict]]) -> list[dict]:
    """Tool calls for a request; clauses joined by "and"/"then" each give one call. A piece that means nothing
    alone (the end of a name with "and" in it) is glued back to the clause before it."""
    clauses: list[str] = []
    for piece in JOIN.split(text.strip()):
        if clauses and understand(piece, past) is None:
            clauses[-1] += " and " + piece
        else:
            clauses.append(piece)
    return [c for c in (understand(clause, past) for clause in clauses) if c is not None]


def call(tool: str, /, **arguments) -> dict:
    return {"name": tool, "arguments": {k: v for k, v in arguments.items() if v is not None}}


def last(past: list[tuple[dict, dict]], *names: str) -> tuple[dict, dict] | None:
    return next(((c, r) for c, r in reversed(past) if c["name"] in names), None)


def side(text: str, default: str | None = "driver") -> str | None:
    return next((value for pattern, value in SIDES if re.search(pattern, text)), default)


def number(text: str) -> float | None:
    found = NUMBER.search(text)
    if not found:
        return None
    value = float(found.group(1))
    return int(value) if value.is_integer() else value


def step(text: str) -> int:
    found = re.search(r"\b(one|a|two|three)\b(?: bit| notch| degrees?)?", text)
    size = STEPS[found.group(1)] if found else 1
    return -size if re.search(r"cool|cold|down|less|lower", text) else size


def clean(value: str) -> str:
    return TRAILER.sub("", value).strip(" ,.!?")


def understand(clause: str, past: list[tuple[dict, dict]]) -> dict | None:
    t = clause.lower()
    for rule in (cancel, going_there, seat_heating, windows, fan, temperature, route, media, phone, navigate,
                 nearby, status):
        found = rule(clause, t, past)
        if found is not None:
            return found
    return None


def going_there(clause: str, t: str, past) -> dict | None:
    named = NAVIGATE_BEFORE.search(clause)
    if not THERE.search(t) or (named and not FILLER.fullmatch(named.group("place").lower())):
        return None
    found = last(past, "find_nearby")
    places = found[1].get("results") if found else None
    return call("navigate_to", destination=places[0]["name"]) if places else None


def cancel(clause: str, t: str, past) -> dict | None:
    if re.search(r"\bcancel|stop (the )?rout|stop navigat|end navigation|forget the destination|don't want to go", t):
        return call("cancel_navigation")
    return None


def route(clause: str, t: str, past) -> dict | None:
    if re.search(r"how (long|far|much longer)|\beta\b|\barrive|get there|there yet|\bleft\W*$|remaining|far to go", t):
        return call("route_info")
    return None


def seat_heating(clause: str, t: str, past) -> dict | None:
    before = last(past, "set_seat_heating")
    if "seat" not in t and not (before and re.search(r"\bit\b|level|instead|\d", t)):
        return None
    seat = side(t) if "seat" in t else before[0]["arguments"]["seat"]
    if re.search(r"\boff\b", t):
        level = 0
    elif MAX.search(t):
        level = 3
    else:
        level = number(t) if number(t) is not None else (2 if "turn on" in t else None)
    return call("set_seat_heating", seat=seat, level=level) if level is not None else None


def windows(clause: str, t: str, past) -> dict | None:
    before = last(past, "open_window", "close_window")
    if "window" not in t and not (before and re.search(r"\bit\b", t)):
        return None
    which = ("all" if re.search(r"\ball\b|every", t) else side(t)) if "window" in t else \
        before[0]["arguments"]["which"]
    if re.search(r"open|down|lower|crack", t):
        return call("open_window", which=which)
    if re.search(r"close|\bup\b|shut|raise|lift", t):
        return call("close_window", which=which)
    return None


def fan(clause: str, t: str, past) -> dict | None:
    before = last(past, "set_fan")
    if not re.search(r"\bfan\b|blower", t) and not (before and re.search(
            r"\bit\b|level|instead|air|notch|stronger|less|\bno, \d", t)):
        return None
    if re.search(r"\boff\b|stop", t):
        return call("set_fan", level=0)
    if MAX.search(t):
        return call("set_fan", level=5)
    if number(t) is not None:
        return call("set_fan", level=number(t))
    if before and re.search(r"up|down|stronger|more|less|lower", t):
        return call("set_fan", level=before[0]["arguments"]["level"] + step(t))
    return None


def temperature(clause: str, t: str, past) -> dict | None:
    before = last(past, "set_temperature")
    words = re.search(r"degree|temperature|climate|heat|warm|cool|cold|side|\bzones?\b", t)
    if not words and not (before and number(t) is not None):
        return None
    zone = "all" if EVERYWHERE.search(t) else "rear" if re.search(r"\bback\b|\brear\b", t) else side(t, None)
    if zone is None and before:
        zone = before[0]["arguments"].get("zone")
    celsius = number(t)
    if celsius is None and before and re.search(r"warm|cool|cold|up|down", t):
        celsius = before[0]["arguments"]["celsius"] + step(t)
    return call("set_temperature", celsius=celsius, zone=zone) if celsius is not None else None


def media(clause: str, t: str, past) -> dict | None:
    if re.search(r"\bpause\b|stop (?:the )?(?:music|song|audio|playing|it for now)|mute|silence|quiet|music off|"
                 r"hold the music|turn the music off", t):
        return call("pause_media")
    found = PLAY.search(clause)
    return call("play_media", query=clean(found.group("query"))) if found else None


def phone(clause: str, t: str, past) -> dict | None:
    found = CALL.search(clause)
    if not found:
        return None
    name = clean(next(g for g in found.groups() if g))
    return call("call_contact", name=re.sub(r"^(?:the|my)\s+", "", name, flags=re.I))


def nearby(clause: str, t: str, past) -> dict | None:
    category = next((key for spoken, key in CATEGORIES if re.search(rf"\b{re.escape(spoken.lower())}\b", t)), None)
    if category is None:
        return None
    within = DISTANCE.search(t)
    distance = int(within.group(1)) if within else None
    return call("find_nearby", category=category, max_distance_m=distance)


def status(clause: str, t: str, past) -> dict | None:
    if re.search(r"battery|range|status|car doing|this charge|state of the car|check the car", t):
        return call("vehicle_status")
    return None


def navigate(clause: str, t: str, past) -> dict | None:
    found = NAVIGATE_BEFORE.search(clause) or NAVIGATE.search(clause)
    return call("navigate_to", destination=clean(found.group("place"))) if found else None
