"""Training and evaluation data for the car assistant: requests from phrase templates, the tool calls they
should produce, the results those calls give on a fresh World, and the spoken answer templated from them.
Deterministic by seed. The test split holds out phrasings (template ids) and destinations that train and
validation never use.

Written as DIR/train.jsonl and DIR/val.jsonl (OpenAI chat records for `qwenkit tune --data DIR/train.jsonl`),
DIR/test/chat.jsonl, DIR/cases/{split}.jsonl (turns with the expected calls, for `qwenkit eval car`) and
DIR/stats.json."""
import json
import random
import re
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path

from qwenkit.apps.car import phrases
from qwenkit.apps.car.agent import ToolCall, assistant_calls, tool_message
from qwenkit.apps.car.places import fold
from qwenkit.apps.car.prompt import TUNED_PROMPT
from qwenkit.apps.car.tools import SCHEMAS
from qwenkit.apps.car.world import World

HOLDOUT_TEMPLATES = 0.25
HOLDOUT_PLACES = 0.2
KINDS = {"single": 0.4, "multi": 0.28, "follow_up": 0.28, "error": 0.04}
WEIGHTS = {"navigate": 3, "nearby": 3, "nearby_within": 1.5, "temp": 2, "temp_zone": 1.5, "fan": 1.5, "seat": 1.5,
           "open": 1, "close": 1, "play": 1.5, "call": 1, "status": 1}
FIRST_WEIGHTS = {"navigate": 5, "nearby": 4, "nearby_within": 1, "temp": 1.5, "temp_zone": 1, "fan": 1, "seat": 1,
                 "open": 1, "close": 1, "play": 2.5}   # navigation follow-ups run long and lose more draws to the cap
CAPPED = ("train", "val")
SLOT = re.compile(r"{(\w+)}")
PLACE_NAME = re.compile(r"[\w .&'-]+")
ALL_TEMPLATES = phrases.INTENTS | phrases.FOLLOW_UPS


@dataclass(slots=True)
class TurnCase:
    user: str
    calls: list[dict]
    results: list[dict]
    answer: str


@dataclass(slots=True)
class Case:
    id: str
    kind: str
    world_seed: int
    templates: list[str] = field(default_factory=list)
    destinations: list[str] = field(default_factory=list)
    turns: list[TurnCase] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "Case":
        return cls(**{**d, "turns": [TurnCase(**t) for t in d["turns"]]})


class Rejected(Exception):
    """This draw does not make a valid case (an unintended tool error, a held-out name); draw again."""


def messages(case: Case, system: str = TUNED_PROMPT) -> list[dict]:
    """The case as OpenAI chat messages, rendered exactly as CarAgent builds its conversation for a tuned model
    (prompt.TUNED_PROMPT)."""
    out, made = [{"role": "system", "content": system}], 0
    for turn in case.turns:
        out.append({"role": "user", "content": turn.user})
        if turn.calls:
            message, ids = assistant_calls([ToolCall(c["name"], c["arguments"]) for c in turn.calls], made)
            made += len(ids)
            out += [message, *(tool_message(i, r) for i, r in zip(ids, turn.results))]
        out.append({"role": "assistant", "content": turn.answer})
    return out


def template_ids(intent: str) -> list[str]:
    return [f"{intent}.{i:02d}" for i in range(len(ALL_TEMPLATES[intent][1]))]


def template(template_id: str) -> tuple[str, str, dict]:
    """(tool, text, fixed arguments) of a template id."""
    intent, index = template_id.rsplit(".", 1)
    tool, items = ALL_TEMPLATES[intent]
    item = items[int(index)]
    text, fixed = item if isinstance(item, tuple) else (item, {})
    return tool, text, fixed


def destination_names(world: World) -> list[str]:
    """Named places a driver could say: POIs with real names (not "Parking on Bulevardi") and streets."""
    names: dict[str, str] = {}
    for place in world.places.places:
        label = place.category.replace("_", " ").capitalize() + " on "
        if place.name.startswith(label) or not PLACE_NAME.fullmatch(place.name) or len(place.name) > 28:
            continue
        names.setdefault(fold(place.name), place.name)
    return sorted(names.values())


@dataclass(slots=True)
class Pools:
    templates: dict[str, list[str]]
    destinations: list[str]
    unknown_places: list[str]


def held_out_templates(intent: str, rng: random.Random) -> list[str]:
    """About HOLDOUT_TEMPLATES of an intent's templates for the test split, drawn within each meaning (the
    arguments a template fixes, such as level 2 for "warm the seat") and never all of one: the test holds out
    ways of saying things, not a convention that training would then never show. (Drawn over the whole intent,
    both "warm the seat" templates once went to the test, and the tuned model, never told that a seat warmed
    without a number gets level 2, answered 3.)"""
    meanings: dict[str, list[str]] = {}
    for tid in template_ids(intent):
        meanings.setdefault(json.dumps(template(tid)[2], sort_keys=True), []).append(tid)
    held = []
    for ids in meanings.values():
        rng.shuffle(ids)
        held += ids[:min(len(ids) - 1, round(HOLDOUT_TEMPLATES * len(ids)))]
    if not held:   # every meaning has one template: hold out one of the commonest kind
        largest = max(meanings.values(), key=len)
        held = largest[:1] if len(largest) > 1 else []
    return sorted(held)


def split_pools(seed: int, world: World) -> dict[str, Pools]:
    """Train and validation share one pool; test gets the held-out template ids and destinations."""
    rng = random.Random(f"{seed}:holdout")
    held, kept = {}, {}
    for intent in ALL_TEMPLATES:
        held[intent] = held_out_templates(intent, rng)
        kept[intent] = [t for t in template_ids(intent) if t not in held[intent]]
    places, unknown = destination_names(world), list(phrases.UNKNOWN_PLACES)
    rng.shuffle(places)
    rng.shuffle(unknown)
    cut, cut_unknown = round(HOLDOUT_PLACES * len(places)), max(1, round(HOLDOUT_PLACES * len(unknown)))
    train = Pools(kept, sorted(places[cut:]), unknown[cut_unknown:])
    return {"train": train, "val": train, "test": Pools(held, sorted(places[:cut]), unknown[:cut_unknown])}


class CaseBuilder:
    """Draws cases for one split; every draw comes from `rng`, so a seed gives the same cases."""

    def __init__(self, pools: Pools, rng: random.Random, forbidden: set[str] = frozenset()):
        self.pools, self.rng, self.forbidden = pools, rng, forbidden

    def build(self, case_id: str) -> Case:
        kind = self.pick(KINDS)
        case = Case(case_id, kind, self.rng.randrange(1, 1000))
        world = World.create(case.world_seed)
        getattr(self, kind)(case, world)
        for turn in case.turns:
            if kind != "error" and any("error" in r for r in turn.results):
                raise Rejected(turn.results)
        return case

    def pick(self, weights: dict[str, float]) -> str:
        return self.rng.choices(list(weights), list(weights.values()))[0]

    # -- the four kinds of case ---------------------------------------------------------------------------
    def single(self, case: Case, world: World) -> None:
        text, call = self.clause(case, self.pick(WEIGHTS))
        self.run(case, world, self.sentence(text), [call])

    def multi(self, case: Case, world: World) -> None:
        first, second = self.rng.sample(phrases.MULTI, 2)
        tools = {phrases.INTENTS[first][0], phrases.INTENTS[second][0]}
        if len(tools) < 2 or tools == {"open_window", "close_window"}:
            raise Rejected("two calls of one kind")
        (a, call_a), (b, call_b) = self.clause(case, first), self.clause(case, second)
        self.run(case, world, self.sentence(a + self.rng.choice(phrases.JOINERS) + b), [call_a, call_b])

    def follow_up(self, case: Case, world: World) -> None:
        first = self.pick(FIRST_WEIGHTS)
        text, call = self.clause(case, first)
        turn = self.run(case, world, self.sentence(text), [call])
        intent = self.rng.choice(phrases.NEXT[call["name"]])
        text, follow = self.clause(case, intent)
        self.resolve(intent, follow, call, turn.results[0])
        self.run(case, world, self.sentence(text), [follow])

    def error(self, case: Case, world: World) -> None:
        kind = self.rng.choice(["place", "contact", "temperature"])
        value = {"place": lambda: self.rng.choice(self.pools.unknown_places),
                 "contact": lambda: self.rng.choice(phrases.UNKNOWN_CONTACTS),
                 "temperature": lambda: self.rng.choice(phrases.TOO_HOT)}[kind]()
        intent, slot = {"place": ("navigate", "destination"), "contact": ("call", "contact"),
                        "temperature": ("temp", "celsius")}[kind]
        text, call = self.clause(case, intent, {slot: value})
        self.run(case, world, self.sentence(text), [call])

    # -- pieces ---------------------------------------------------------------------------------------------
    def clause(self, case: Case, intent: str, override: dict | None = None) -> tuple[str, dict]:
        """A lower-case request from one of the split's templates for `intent`, and the call it asks for."""
        template_id = self.rng.choice(self.pools.templates[intent])
        tool, text, fixed = template(template_id)
        case.templates.append(template_id)
        values, args = {}, dict(fixed)
        for slot in SLOT.findall(text):
            spoken, arg, value = self.slot(slot, (override or {}).get(slot))
            values[slot] = spoken
            if arg is not None:
                args[arg] = value
            if slot == "destination":
                case.destinations.append(value)
        order = list(SCHEMAS[tool]["properties"]) + ["step"]
        args = {k: args[k] for k in sorted(args, key=order.index)}
        return self.typo(text).format(**values), {"name": tool, "arguments": args}

    def slot(self, slot: str, forced=None) -> tuple[str, str | None, object]:
        """(what the driver says, argument name, argument value) for one template slot; wording slots (LEXICON)
        carry no argument."""
        r = self.rng
        if slot in phrases.LEXICON:
            return r.choice(phrases.LEXICON[slot]), None, None
        if slot == "within":
            d = r.choice(phrases.DISTANCES)
            return r.choice(phrases.WITHIN).format(d=d), "max_distance_m", d
        if slot in ("category", "categories"):
            category = r.choice(list(phrases.CATEGORY_WORDS))
            singular, plural = r.choice(phrases.CATEGORY_WORDS[category])
            return (singular if slot == "category" else plural), "category", category
        pairs = {"zone": phrases.ZONES, "seat": phrases.SEATS, "which": phrases.WINDOWS, "contact": phrases.CONTACTS}
        if slot in pairs:
            spoken, value = (forced, forced) if forced else r.choice(pairs[slot])
            return spoken, {"contact": "name"}.get(slot, slot), value
        values = {"destination": self.pools.destinations, "query": phrases.MEDIA, "celsius": phrases.CELSIUS,
                  "fan_level": range(1, 6), "heat_level": range(1, 4)}[slot]
        value = forced if forced is not None else r.choice(values)
        arg = "level" if slot.endswith("_level") else slot
        return phrases.figure(value), arg, value

    def typo(self, text: str) -> str:
        """Now and then one slip of the finger in a template word (never in a place name or figure)."""
        words = text.split(" ")
        candidates = [i for i, w in enumerate(words) if len(w) >= 4 and w.isalpha()]
        if not candidates or self.rng.random() > 0.08:
            return text
        i = self.rng.choice(candidates)
        w, k = words[i], self.rng.randrange(1, len(words[i]) - 1)
        words[i] = self.rng.choice([w[:k] + w[k + 1] + w[k] + w[k + 2:], w[:k] + w[k + 1:], w[:k] + w[k] + w[k:]])
        return " ".join(words)

    def sentence(self, text: str) -> str:
        r = self.rng
        question = text.startswith(phrases.QUESTION_WORDS)
        if r.random() < 0.15:
            text = r.choice(phrases.PREFIXES) + text
        if r.random() < 0.15 and not text.endswith("?"):
            text += r.choice(phrases.SUFFIXES)
        if r.random() < 0.75:
            text = re.sub(r"\bi\b", "I", text)
            text = text[0].upper() + text[1:]
        if text[-1] not in "?.!":
            text += "?" if question else r.choice([".", ".", "", "!"])
        return text

    def resolve(self, intent: str, call: dict, prev: dict, result: dict) -> None:
        """Fill a follow-up's arguments from the previous call: the same zone, seat or window, a step up or down
        from the previous level, the place the search found."""
        args, before, tool = call["arguments"], prev["arguments"], call["name"]
        step = args.pop("step", None)
        key = {"set_temperature": "celsius", "set_fan": "level"}.get(tool)
        if step is not None:
            args[key] = before[key] + step
        for kept in ("zone", "seat", "which"):
            if kept in before and kept in SCHEMAS[tool]["properties"]:
                args[kept] = before[kept]
        if intent == "go_there":
            found = result.get("results") or []
            if not found or fold(found[0]["name"]) in self.forbidden:
                raise Rejected("nothing to go to")
            args["destination"] = found[0]["name"]
        if tool == prev["name"] and args == before:
            raise Rejected("a follow-up that changes nothing")
        order = list(SCHEMAS[tool]["properties"])
        call["arguments"] = {k: args[k] for k in sorted(args, key=order.index)}

    def run(self, case: Case, world: World, text: str, calls: list[dict]) -> TurnCase:
        results = [world.execute(c["name"], c["arguments"]) for c in calls]
        turn = TurnCase(text, calls, results, phrases.spoken_answer(calls, results))
        case.turns.append(turn)
        return turn


def generate(seed: int = 0, sizes: dict[str, int] | None = None, tokenizer=None,
             max_tokens: int = 400) -> dict[str, list[Case]]:
    """Cases per split. With a tokenizer, a training or validation case whose chat renders to more than max_tokens
    is drawn again (test cases are not capped: they are only evaluated)."""
    sizes = sizes or {"train": 3000, "val": 200, "test": 300}
    world = World.create()
    pools = split_pools(seed, world)
    forbidden = {fold(name) for name in pools["test"].destinations}
    seen: set = set()
    splits = {}
    for split, count in sizes.items():
        builder = CaseBuilder(pools[split], random.Random(f"{seed}:{split}"),
                              frozenset() if split == "test" else forbidden)
        cases: list[Case] = []
        for _ in range(count * 50):
            if len(cases) == count:
                break
            try:
                case = builder.build(f"{split}-{len(cases):05d}")
            except Rejected:
                continue
            key = json.dumps([asdict(t) for t in case.turns], sort_keys=True)   # the same words may give new figures
            too_long = split in CAPPED and tokenizer is not None and count_tokens(tokenizer, case) > max_tokens
            if key in seen or too_long:
                continue
            seen.add(key)
            cases.append(case)
        splits[split] = cases
    return splits


def count_tokens(tokenizer, case: Case) -> int:
    return len(tokenizer.encode_chat(messages(case), add_generation_prompt=False))


def write(out: Path, splits: dict[str, list[Case]], tokenizer=None) -> dict:
    out = Path(out)
    (out / "cases").mkdir(parents=True, exist_ok=True)
    (out / "test").mkdir(exist_ok=True)
    stats = {"splits": {}}
    for split, cases in splits.items():
        chat = out / ("test/chat.jsonl" if split == "test" else f"{split}.jsonl")
        write_jsonl(chat, [{"messages": messages(c)} for c in cases])
        write_jsonl(out / "cases" / f"{split}.jsonl", [c.to_dict() for c in cases])
        stats["splits"][split] = split_stats(cases, tokenizer)
    if tokenizer is not None:
        stats["system_prompt_tokens"] = len(tokenizer.encode(TUNED_PROMPT))
    (out / "stats.json").write_text(json.dumps(stats, indent=2) + "\n")
    return stats


def write_jsonl(path: Path, records: list[dict]) -> None:
    with open(path, "w", encoding="utf-8") as f:
        for record in records:
            f.write(json.dumps(record, ensure_ascii=False) + "\n")


def load_cases(path: Path) -> list[Case]:
    with open(path, encoding="utf-8") as f:
        return [Case.from_dict(json.loads(line)) for line in f if line.strip()]


def split_stats(cases: list[Case], tokenizer=None) -> dict:
    stats = {"examples": len(cases), "turns": sum(len(c.turns) for c in cases),
             "kinds": dict(Counter(c.kind for c in cases)),
             "calls": dict(Counter(call["name"] for c in cases for t in c.turns for call in t.calls)),
             "templates": len({t for c in cases for t in c.templates}),
             "destinations": len({d for c in cases for d in c.destinations})}
    if tokenizer is not None:
        n = sorted(count_tokens(tokenizer, c) for c in cases)
        stats["tokens"] = {"mean": round(sum(n) / max(len(n), 1), 1), "p50": n[len(n) // 2] if n else 0,
                           "p95": n[int(len(n) * 0.95)] if n else 0, "max": max(n, default=0), "total": sum(n)}
    return stats
