"""The assistant's tools: OpenAI function schemas (short, they go into a small model's prompt) and `execute`,
which checks the arguments, changes the world and returns a small JSON-able dict. It never raises: anything
wrong comes back as {"error": ...} that the model can explain to the driver."""
import json
import math
from collections.abc import Callable

from qwenkit.apps.car.directions import directions, next_instruction
from qwenkit.apps.car.places import CATEGORIES, fold, match_score
from qwenkit.apps.car.routing import nearest_places, plan_route, road_distances
from qwenkit.apps.car.vehicle import (
    CLIMATE_ZONES,
    CONTACTS,
    FAN_MAX,
    MAX_C,
    MIN_C,
    SEAT_HEAT_MAX,
    SEATS,
    WINDOWS,
    Navigation,
)

CONTACT_ALIASES = {"mum": "Mom", "mother": "Mom", "mommy": "Mom", "work": "Office", "doctor": "Dr. Virtanen"}
FILLER_WORDS = {"the", "a", "an", "nearest", "closest", "nearby", "near"}
SIDE_ALIASES = {"front_left": "driver", "front_right": "passenger", "back": "rear", "back_left": "rear_left",
                "back_right": "rear_right", "everywhere": "all", "every": "all", "both": "all"}


def function(name: str, description: str, params: dict | None = None, required: tuple = ()) -> dict:
    parameters = {"type": "object", "properties": params or {}, "required": list(required)}
    return {"type": "function", "function": {"name": name, "description": description, "parameters": parameters}}


def string(description: str = "", enum: tuple = ()) -> dict:
    spec = {"type": "string"} | ({"description": description} if description else {})
    return spec | ({"enum": list(enum)} if enum else {})


TOOL_SCHEMAS = [
    function("navigate_to", "Start navigation to a place or street.", {"destination": string("place name")},
             ("destination",)),
    function("find_nearby", "Find the nearest places of a category, by road.",
             {"category": string("e.g. cafe, restaurant, parking, charging_station, hotel, pharmacy"),
              "max_distance_m": {"type": "number"}}, ("category",)),
    function("route_info", "Remaining distance, ETA and next turn."),
    function("cancel_navigation", "Stop navigation."),
    function("set_temperature", "Set cabin temperature, 16-28 C.",
             {"celsius": {"type": "number"}, "zone": string(enum=CLIMATE_ZONES + ("all",))}, ("celsius",)),
    function("set_fan", "Set fan speed 0-5 (0 off).", {"level": {"type": "integer"}}, ("level",)),
    function("set_seat_heating", "Set seat heating 0-3 (0 off).",
             {"seat": string(enum=SEATS), "level": {"type": "integer"}}, ("seat", "level")),
    function("open_window", "Open a window.", {"which": string(enum=WINDOWS + ("all",))}, ("which",)),
    function("close_window", "Close a window.", {"which": string(enum=WINDOWS + ("all",))}, ("which",)),
    function("play_media", "Play music, a podcast or radio.", {"query": string("artist, song, genre or station")},
             ("query",)),
    function("pause_media", "Pause media."),
    function("call_contact", "Phone a contact.", {"name": string()}, ("name",)),
    function("vehicle_status", "Battery, range, climate, windows, media and navigation."),
]
SCHEMAS = {s["function"]["name"]: s["function"]["parameters"] for s in TOOL_SCHEMAS}


def decoding_tools() -> list[dict]:
    """TOOL_SCHEMAS as constrained decoding enforces them: the same tools and arguments, with the values the
    tools accept spelled out (the place categories, the fan and seat-heating ranges), so a small model cannot
    write a category that does not exist or a fan level of 17. Temperatures stay free: the tool's own range
    check answers an out-of-range request with an error the driver hears."""
    limits = {("find_nearby", "category"): {"enum": list(CATEGORIES)},
              ("find_nearby", "max_distance_m"): {"minimum": 1},
              ("set_fan", "level"): {"minimum": 0, "maximum": FAN_MAX},
              ("set_seat_heating", "level"): {"minimum": 0, "maximum": SEAT_HEAT_MAX}}
    out = json.loads(json.dumps(TOOL_SCHEMAS))
    for tool in out:
        fn = tool["function"]
        for name, spec in fn["parameters"]["properties"].items():
            spec.update(limits.get((fn["name"], name), {}))
    return out


class ArgumentError(Exception):
    def __init__(self, problem: str, **extra):
        super().__init__(problem)
        self.result = {"error": problem} | extra


def parse_arguments(name: str, arguments) -> dict:
    if arguments is None or arguments == "":
        return {}
    if isinstance(arguments, str):
        try:
            arguments = json.loads(arguments)
        except json.JSONDecodeError as exc:
            raise ArgumentError(f"arguments for {name} are not valid JSON ({exc.msg})") from None
    if not isinstance(arguments, dict):
        raise ArgumentError(f"arguments for {name} must be a JSON object")
    return arguments


def coerce(tool: str, field: str, value, spec: dict):
    kind = spec["type"]
    if kind == "string":
        if not isinstance(value, str | int | float) or isinstance(value, bool) or not str(value).strip():
            raise ArgumentError(f"{field} must be a non-empty string")
        value = str(value).strip()
        if "enum" not in spec:
            return value
        key = value.lower().replace(" ", "_").replace("-", "_").removesuffix("_seat").removesuffix("_window")
        key = SIDE_ALIASES.get(key, key)
        if key not in spec["enum"] and not (key in ("all", "rear") and tool != "set_temperature"):
            raise ArgumentError(f"{field} must be one of: {', '.join(spec['enum'])}", got=str(value)[:40])
        return key
    try:
        number = float(value) if not isinstance(value, bool) else None
    except (TypeError, ValueError):
        number = None
    if number is None or not math.isfinite(number):
        raise ArgumentError(f"{field} must be a number", got=str(value)[:40])
    if kind == "integer":
        if number != int(number):
            raise ArgumentError(f"{field} must be a whole number", got=str(value)[:40])
        return int(number)
    return number


def check_arguments(name: str, arguments) -> dict:
    schema = SCHEMAS[name]
    arguments = parse_arguments(name, arguments)
    unexpected = [k for k in arguments if k not in schema["properties"]]
    if unexpected:
        raise ArgumentError(f"unexpected argument '{unexpected[0]}' for {name}",
                            valid_arguments=", ".join(schema["properties"]) or "none")
    missing = [k for k in schema["required"] if arguments.get(k) is None]
    if missing:
        raise ArgumentError(f"missing required argument '{missing[0]}' for {name}")
    return {k: coerce(name, k, v, schema["properties"][k]) for k, v in arguments.items() if v is not None}


def expand(which: str, names: tuple[str, ...]) -> list[str]:
    if which == "all":
        return list(names)
    return [n for n in names if n.startswith("rear")] if which == "rear" and which not in names else [which]


def navigate_to(world, destination: str) -> dict:
    """A place or street by name; a category ("nearest pharmacy") goes to the nearest one of it by road."""
    category = world.places.category(" ".join(w for w in destination.split() if w.lower() not in FILLER_WORDS))
    vehicle = world.vehicle
    candidates = world.places.by_category[category] if category else world.places.lookup(destination)
    if not candidates:
        return {"error": f"no place called '{destination}'", "did_you_mean": world.places.suggest(destination)}
    distances = road_distances(world.road_map, vehicle.node)
    place = min(candidates, key=lambda p: distances.get(p.node, float("inf")))
    if place.node == vehicle.node:
        return {"error": f"already at {place.name}"}
    route = plan_route(world.road_map, vehicle.node, place.node)
    if route is None:
        return {"error": f"no drivable route to {place.name}"}
    vehicle.navigation = Navigation(place.name, route, directions(world.road_map, route, place.name))
    return {"destination": place.name, "distance_km": round(route.distance_m / 1000, 1),
            "eta_min": minutes(route.duration_s), "via": route.via(3)}


def minutes(seconds: float) -> int:
    return max(1, round(seconds / 60))


def find_nearby(world, category: str, max_distance_m: float | None = None) -> dict:
    found = world.places.category(category)
    if found is None:
        return {"error": f"unknown category '{category}'", "valid": ", ".join(CATEGORIES)}
    if max_distance_m is not None and max_distance_m <= 0:
        return {"error": "max_distance_m must be positive"}
    nearest = nearest_places(world.road_map, world.places.by_category[found], world.vehicle.node, 3, max_distance_m)
    result = {"category": found, "results": [{"name": p.name, "distance_m": round(d)} for p, d in nearest]}
    if not nearest:
        result["note"] = f"none within {round(max_distance_m)} m" if max_distance_m else "none on the map"
    return result


def route_info(world) -> dict:
    nav = world.vehicle.navigation
    if nav is None:
        return {"error": "no active navigation"}
    meters, seconds = nav.route.remaining(nav.progress)
    return {"destination": nav.destination, "remaining_km": round(meters / 1000, 1), "eta_min": minutes(seconds),
            "next": next_instruction(nav.route, nav.steps, nav.progress)}


def cancel_navigation(world) -> dict:
    nav = world.vehicle.navigation
    if nav is None:
        return {"error": "no active navigation to cancel"}
    world.vehicle.navigation = None
    return {"cancelled": nav.destination}


def set_temperature(world, celsius: float, zone: str = "all") -> dict:
    if not MIN_C <= celsius <= MAX_C:
        return {"error": f"temperature must be between {MIN_C:.0f} and {MAX_C:.0f} C", "requested": celsius}
    celsius = round(celsius * 2) / 2
    for name in expand(zone, CLIMATE_ZONES):
        world.vehicle.cabin_c[name] = celsius
    return {"zone": zone, "celsius": celsius}


def set_fan(world, level: int) -> dict:
    if not 0 <= level <= FAN_MAX:
        return {"error": f"fan level must be 0-{FAN_MAX}", "requested": level}
    world.vehicle.fan = level
    return {"fan": level}


def set_seat_heating(world, seat: str, level: int) -> dict:
    if not 0 <= level <= SEAT_HEAT_MAX:
        return {"error": f"seat heating level must be 0-{SEAT_HEAT_MAX}", "requested": level}
    for name in expand(seat, SEATS):
        world.vehicle.seat_heating[name] = level
    return {"seat": seat, "level": level}


def set_window(world, which: str, is_open: bool) -> dict:
    for name in expand(which, tuple(world.vehicle.windows_open)):
        world.vehicle.windows_open[name] = is_open
    return {"window": which, "state": "open" if is_open else "closed"}


def play_media(world, query: str) -> dict:
    world.vehicle.media, world.vehicle.media_playing = query, True
    return {"playing": query}


def pause_media(world) -> dict:
    if not world.vehicle.media_playing:
        return {"error": "nothing is playing"}
    world.vehicle.media_playing = False
    return {"paused": world.vehicle.media}


def call_contact(world, name: str) -> dict:
    key = fold(CONTACT_ALIASES.get(fold(name), name))
    score, contact = max((match_score(key, fold(c)), c) for c in CONTACTS)
    if score < 0.72:
        return {"error": f"no contact named '{name}'", "contacts": ", ".join(CONTACTS)}
    world.vehicle.call = contact
    return {"calling": contact}


def vehicle_status(world) -> dict:
    v = world.vehicle
    status = {"location": v.location, "battery_pct": round(v.battery_pct), "range_km": round(v.range_km),
              "cabin_c": dict(v.cabin_c), "fan": v.fan,
              "seat_heating": {k: n for k, n in v.seat_heating.items() if n},
              "windows_open": [k for k, is_open in v.windows_open.items() if is_open]}
    if v.media:
        status["media"] = ("playing " if v.media_playing else "paused ") + v.media
    if v.call:
        status["call"] = v.call
    if v.navigation:
        meters, seconds = v.navigation.route.remaining(v.navigation.progress)
        status["navigation"] = {"destination": v.navigation.destination, "remaining_km": round(meters / 1000, 1),
                                "eta_min": minutes(seconds)}
    return status


HANDLERS: dict[str, Callable[..., dict]] = {
    "navigate_to": navigate_to, "find_nearby": find_nearby, "route_info": route_info,
    "cancel_navigation": cancel_navigation, "set_temperature": set_temperature, "set_fan": set_fan,
    "set_seat_heating": set_seat_heating, "open_window": lambda world, which: set_window(world, which, True),
    "close_window": lambda world, which: set_window(world, which, False), "play_media": play_media,
    "pause_media": pause_media, "call_contact": call_contact, "vehicle_status": vehicle_status,
}


def execute(world, name: str, arguments: dict | str | None = None) -> dict:
    """Run one tool call on the world; never raises."""
    if not isinstance(name, str) or name not in HANDLERS:
        return {"error": f"unknown tool '{name}'", "valid": ", ".join(HANDLERS)}
    try:
        return HANDLERS[name](world, **check_arguments(name, arguments))
    except ArgumentError as exc:
        return exc.result
    except Exception as exc:  # a tool bug must not take down the conversation
        return {"error": f"{name} failed: {type(exc).__name__}: {exc}"}
