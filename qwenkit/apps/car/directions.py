"""Turn-by-turn directions from a route: consecutive edges of one street merge into a step, and the turn
between steps comes from the road's bearing about 20 m before and after the junction."""
from dataclasses import dataclass

from qwenkit.apps.car.map import RoadMap, bearing_deg
from qwenkit.apps.car.routing import Route

TURN_WINDOW_M = 20.0
SHORT_LEG_M = 20.0
COMPASS = ["north", "northeast", "east", "southeast", "south", "southwest", "west", "northwest"]
PHRASES = {"straight": "continue onto", "slight_left": "bear left onto", "slight_right": "bear right onto",
           "left": "turn left onto", "right": "turn right onto", "sharp_left": "turn sharp left onto",
           "sharp_right": "turn sharp right onto", "uturn": "make a U-turn onto"}


@dataclass(slots=True)
class Step:
    maneuver: str
    street: str
    start: int
    distance_m: float
    text: str


def maneuver(turn: float) -> str:
    """A turn angle in degrees (positive clockwise) as a maneuver name."""
    side = "right" if turn > 0 else "left"
    size = abs(turn)
    if size <= 25:
        return "straight"
    if size <= 60:
        return f"slight_{side}"
    if size <= 140:
        return side
    return f"sharp_{side}" if size <= 170 else "uturn"


def legs(route: Route) -> list[tuple[str, int, int]]:
    """(street, first edge, end edge) runs; an unnamed edge belongs to the street before it (or after it)."""
    named = [s for s in route.streets if s]
    current = named[0] if named else "the road"
    runs: list[tuple[str, int, int]] = []
    for i, street in enumerate(route.streets):
        current = street or current
        if runs and runs[-1][0] == current:
            runs[-1] = (current, runs[-1][1], i + 1)
        else:
            runs.append((current, i, i + 1))
    return runs


def heading_in(road_map: RoadMap, route: Route, junction: int) -> float:
    back, walked = junction - 1, route.lengths[junction - 1]
    while back > 0 and walked < TURN_WINDOW_M:
        back -= 1
        walked += route.lengths[back]
    return bearing_deg(*road_map.point(route.nodes[back]), *road_map.point(route.nodes[junction]))


def heading_out(road_map: RoadMap, route: Route, junction: int) -> float:
    ahead, walked = junction, route.lengths[junction]
    while ahead < len(route.lengths) - 1 and walked < TURN_WINDOW_M:
        ahead += 1
        walked += route.lengths[ahead]
    return bearing_deg(*road_map.point(route.nodes[junction]), *road_map.point(route.nodes[ahead + 1]))


def turn(heading_from: float, heading_to: float) -> float:
    return (heading_to - heading_from + 540) % 360 - 180


def absorb_short(road_map: RoadMap, route: Route, runs: list[tuple[str, int, int]]) -> list[tuple[str, int, int]]:
    """A short stretch of another street between two stretches of one street, driven nearly straight through,
    is part of that street ("Mikonkatu, 9 m of Kaivokatu, Mikonkatu" is one step)."""
    merged = runs[:1]
    for run in runs[1:]:
        if len(merged) > 1 and merged[-2][0] == run[0] and sum(route.lengths[merged[-1][1]:run[1]]) < SHORT_LEG_M:
            across = turn(heading_in(road_map, route, merged[-1][1]), heading_out(road_map, route, run[1]))
            if abs(across) <= 45:
                merged[-2:] = [(run[0], merged[-2][1], run[2])]
                continue
        merged.append(run)
    return merged


def directions(road_map: RoadMap, route: Route, destination: str = "your destination") -> list[Step]:
    steps = []
    for street, first, end in absorb_short(road_map, route, legs(route)):
        distance = sum(route.lengths[first:end])
        if first == 0:
            start, finish = road_map.point(route.nodes[0]), road_map.point(route.nodes[min(end, 3)])
            heading = COMPASS[round(bearing_deg(*start, *finish) / 45) % 8]
            steps.append(Step("depart", street, 0, distance, f"head {heading} on {street}"))
        else:
            kind = maneuver(turn(heading_in(road_map, route, first), heading_out(road_map, route, first)))
            steps.append(Step(kind, street, first, distance, f"{PHRASES[kind]} {street}"))
    steps.append(Step("arrive", "", len(route.nodes) - 1, 0.0, f"arrive at {destination}"))
    return steps


def spoken(steps: list[Step], limit: int | None = None) -> str:
    """One sentence: "Head north on X, then turn left onto Y, and arrive at Z." (at most `limit` turns)."""
    moves = steps[:-1]
    shown = moves if limit is None else moves[:limit]
    parts = [s.text if i == 0 else f"then {s.text}" for i, s in enumerate(shown)]
    ending = f"and {steps[-1].text}" if len(shown) == len(moves) else "and so on"
    if not parts:
        text = steps[-1].text
    else:
        text = f"{parts[0]} {ending}" if len(parts) == 1 else ", ".join(parts + [ending])
    return text[0].upper() + text[1:] + "."


def next_instruction(route: Route, steps: list[Step], index: int) -> str:
    """What to do next from route node `index`: "In 120 m, turn left onto Mikonkatu"."""
    step = next((s for s in steps if s.start > index), steps[-1])
    distance = sum(route.lengths[index:step.start])
    return f"In {round(distance / 10) * 10:.0f} m, {step.text}"
