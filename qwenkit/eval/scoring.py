"""Scoring one turn: does the predicted tool-call sequence match the expected one, and does the spoken answer
mention the figures the tools returned? Place-like strings match tolerantly (diacritics folded, case, fuzzy
ratio); numbers compare numerically; the order of calls within one turn does not matter."""
import inspect
import re
import unicodedata
from difflib import SequenceMatcher
from functools import cache
from itertools import permutations

FREE_TEXT = frozenset({"destination", "category", "query", "name"})
FUZZY_RATIO = 0.85
NUMBER = re.compile(r"-?\d+(?:[.,]\d+)?")
FIGURE_TOOLS = frozenset({"navigate_to", "route_info", "find_nearby"})


def fold(text: str) -> str:
    """Lower case, diacritics removed (Kämp -> kamp), punctuation and `_`/`-` as spaces, single spaces."""
    text = unicodedata.normalize("NFKD", str(text))
    text = "".join(c for c in text if not unicodedata.combining(c)).casefold()
    return " ".join(re.sub(r"[^\w]|_", " ", text).split())


def same_text(expected: str, got: str, fuzzy: bool) -> bool:
    a, b = fold(expected), fold(got)
    if a == b:
        return True
    return fuzzy and bool(a) and SequenceMatcher(None, a, b).ratio() >= FUZZY_RATIO


def as_number(value) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    try:
        return float(str(value).strip())
    except ValueError:
        return None


def same_value(key: str, expected, got) -> bool:
    x, y = as_number(expected), as_number(got)
    if x is not None:
        return y is not None and abs(x - y) < 1e-6
    if isinstance(expected, str) and isinstance(got, str):
        return same_text(expected, got, key in FREE_TEXT)
    return expected == got


def same_arguments(expected: dict, got: dict) -> bool:
    expected = {k: v for k, v in expected.items() if v is not None}
    got = {k: v for k, v in got.items() if v is not None}
    return expected.keys() == got.keys() and all(same_value(k, v, got[k]) for k, v in expected.items())


def same_call(expected: dict, got: dict) -> bool:
    return expected["name"] == got["name"] and same_arguments(expected.get("arguments") or {},
                                                              got.get("arguments") or {})


def pair_calls(expected: list[dict], got: list[dict], match) -> list[tuple[int, int]]:
    """The largest set of (expected index, got index) pairs that `match`, each call used once."""
    best: list[tuple[int, int]] = []
    if len(expected) <= 5 and len(got) <= 5:
        for order in permutations(range(len(got)), min(len(got), len(expected))):
            pairs = [(i, j) for i, j in enumerate(order) if match(expected[i], got[j])]
            if len(pairs) > len(best):
                best = pairs
        return best
    used: set[int] = set()
    for i, e in enumerate(expected):
        j = next((j for j, g in enumerate(got) if j not in used and match(e, g)), None)
        if j is not None:
            used.add(j)
            best.append((i, j))
    return best


def canonical(call: dict) -> dict:
    """A call as the car would run it: enum spellings normalised ("Driver side" -> driver), numbers as numbers,
    default arguments filled in, categories resolved ("coffee shops" -> cafe). Invalid calls stay as they are."""
    from qwenkit.apps.car.tools import SCHEMAS, ArgumentError, check_arguments
    name = call.get("name")
    if name not in SCHEMAS:
        return call
    try:
        arguments = check_arguments(name, call.get("arguments") or {})
    except ArgumentError:
        return call
    arguments = defaults(name) | arguments
    if "category" in arguments:
        arguments["category"] = category_index().category(arguments["category"]) or arguments["category"]
    return {"name": name, "arguments": arguments}


@cache
def defaults(name: str) -> dict:
    from qwenkit.apps.car.tools import HANDLERS
    params = inspect.signature(HANDLERS[name]).parameters.values()
    return {p.name: p.default for p in params if p.default is not inspect.Parameter.empty and p.default is not None}


@cache
def category_index():
    from qwenkit.apps.car.places import PlaceIndex
    return PlaceIndex([])   # category words need no places


def turn_matches(expected: list[dict], got: list[dict]) -> bool:
    expected, got = [canonical(c) for c in expected], [canonical(c) for c in got]
    return len(expected) == len(got) and len(pair_calls(expected, got, same_call)) == len(expected)


def tool_tally(expected: list[dict], got: list[dict]) -> dict[str, dict[str, int]]:
    """Per tool name: expected calls, how many were called by name, how many exactly, and calls not expected."""
    expected, got = [canonical(c) for c in expected], [canonical(c) for c in got]
    tally: dict[str, dict[str, int]] = {}

    def row(name: str) -> dict[str, int]:
        return tally.setdefault(name, {"expected": 0, "named": 0, "exact": 0, "unexpected": 0})
    exact = pair_calls(expected, got, same_call)
    rest_e = [i for i in range(len(expected)) if i not in {i for i, _ in exact}]
    rest_g = [j for j in range(len(got)) if j not in {j for _, j in exact}]
    named = pair_calls([expected[i] for i in rest_e], [got[j] for j in rest_g], lambda e, g: e["name"] == g["name"])
    for call in expected:
        row(call["name"])["expected"] += 1
    for i, _ in exact:
        row(expected[i]["name"])["exact"] += 1
        row(expected[i]["name"])["named"] += 1
    for i, _ in named:
        row(expected[rest_e[i]]["name"])["named"] += 1
    matched_g = {j for _, j in exact} | {rest_g[j] for _, j in named}
    for j, call in enumerate(got):
        if j not in matched_g:
            row(call["name"])["unexpected"] += 1
    return tally


def figures(name: str, result: dict) -> list[tuple[str, float]]:
    """The distances and times a spoken answer should repeat: (key, value) from a navigate_to, route_info or
    find_nearby result (for find_nearby, the nearest place's)."""
    if name not in FIGURE_TOOLS or not isinstance(result, dict) or "error" in result:
        return []
    if name == "find_nearby":
        places = next((v for v in result.values() if isinstance(v, list) and v and isinstance(v[0], dict)), [])
        return figures("navigate_to", places[0]) if places else []
    return [(k, float(v)) for k, v in result.items()
            if isinstance(v, int | float) and not isinstance(v, bool) and is_figure_key(k)]


def is_figure_key(key: str) -> bool:
    return any(part in key for part in ("distance", "km", "eta", "min", "_m")) and "max" not in key


def mentioned(answer: str, key: str, value: float) -> bool:
    """True when the answer says `value`, rounded as people say it; a km figure may be said in metres and a metre
    figure in km."""
    said = [float(n.replace(",", ".")) for n in NUMBER.findall(answer)]
    scales = [1.0]
    if "km" in key:
        scales.append(1000.0)
    elif key.endswith("_m") or key == "distance":
        scales.append(0.001)
    for scale in scales:
        v = value * scale
        if any(abs(x - v) <= max(0.06 * abs(v), 0.051) or x == round(v) for x in said):
            return True
    return False


def answer_mentions(answer: str, calls: list[dict], results: list[dict]) -> bool | None:
    """Whether the answer repeats every figure the turn's tools returned; None when no tool returned one."""
    wanted = [f for call, result in zip(calls, results) for f in figures(call["name"], result)]
    if not wanted:
        return None
    return all(mentioned(answer, k, v) for k, v in wanted)


def percentile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)
