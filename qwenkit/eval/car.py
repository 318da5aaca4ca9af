"""Evaluate car assistants (regex baseline, base model, tuned adapter, endpoint) on the same held-out cases.

Each turn is played on the gold history: a fresh World with the expected calls of the earlier turns already
made, and the expected conversation so far, so one wrong turn does not spoil the next one's score."""
import inspect
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from qwenkit.apps.car.agent import Backend, CarAgent
from qwenkit.apps.car.datagen import Case, messages
from qwenkit.apps.car.world import World
from qwenkit.eval.scoring import answer_mentions, percentile, tool_tally, turn_matches


@dataclass(slots=True)
class System:
    name: str
    backend: Backend


@dataclass(slots=True)
class TurnScore:
    case: str
    kind: str
    turn: int
    user: str
    expected: list[dict]
    got: list[dict]
    match: bool
    invalid: int
    answer: str
    answer_ok: bool | None
    timings: dict[str, float] = field(default_factory=dict)


def play_turn(backend: Backend, case: Case, index: int):
    """The agent's Turn for case.turns[index], on the world and conversation the gold turns before it leave."""
    world = World.create(case.world_seed)
    for turn in case.turns[:index]:
        for call in turn.calls:
            world.execute(call["name"], call["arguments"])
    agent = CarAgent(world, backend)
    agent.messages = messages(replace(case, turns=case.turns[:index]))
    agent.calls_made = sum(len(t.calls) for t in case.turns[:index])
    return agent.turn(case.turns[index].user)


def score_turn(backend: Backend, case: Case, index: int) -> TurnScore:
    turn = play_turn(backend, case, index)
    got = [c.to_dict() for c in turn.tool_calls]
    expected = case.turns[index].calls
    return TurnScore(case.id, case.kind, index, turn.text, expected, got, turn_matches(expected, got),
                     turn.invalid_calls, turn.answer, answer_mentions(turn.answer, got, turn.tool_results),
                     turn.timings)


def evaluate(system: System, cases: list[Case], advance: Callable[[], None] = lambda: None) -> list[TurnScore]:
    scores = []
    for case in cases:
        for index in range(len(case.turns)):
            scores.append(score_turn(system.backend, case, index))
            advance()
    return scores


def summarize(name: str, scores: list[TurnScore]) -> dict:
    n = max(len(scores), 1)
    tools: dict[str, dict[str, int]] = {}
    for s in scores:
        for tool, row in tool_tally(s.expected, s.got).items():
            total = tools.setdefault(tool, dict.fromkeys(row, 0))
            for key, value in row.items():
                total[key] += value
    for row in tools.values():
        row["accuracy"] = round(row["exact"] / row["expected"], 4) if row["expected"] else None
    kinds = sorted({s.kind for s in scores})
    checked = [s.answer_ok for s in scores if s.answer_ok is not None]
    emitted = sum(len(s.got) for s in scores) + sum(s.invalid for s in scores)
    total = [s.timings.get("total", 0.0) for s in scores]
    llm = [s.timings.get("llm", 0.0) for s in scores]
    return {
        "system": name, "turns": len(scores),
        "exact_match": round(sum(s.match for s in scores) / n, 4),
        "by_kind": {k: round(sum(s.match for s in scores if s.kind == k) / sum(s.kind == k for s in scores), 4)
                    for k in kinds},
        "tools": dict(sorted(tools.items())),
        "json_valid": round(sum(len(s.got) for s in scores) / emitted, 4) if emitted else None,
        "tool_calls_emitted": emitted,
        "answers_checked": len(checked),
        "answer_mentions_figures": round(sum(checked) / len(checked), 4) if checked else None,
        "latency_s": {"p50": round(percentile(total, 0.5), 4), "p95": round(percentile(total, 0.95), 4),
                      "llm_p50": round(percentile(llm, 0.5), 4), "llm_p95": round(percentile(llm, 0.95), 4)},
    }


def failures(scores: list[TurnScore]) -> list[dict]:
    """Every wrong turn, to read and to count by kind of mistake: what was asked, expected and done."""
    return [{"case": s.case, "turn": s.turn, "user": s.user, "expected": s.expected, "got": s.got,
             "answer": s.answer} for s in scores if not s.match]


def llm_systems(model: str, adapter: str | None, base: bool, **llm_options) -> list[System]:
    """The base model and/or the model with the tuned adapter, sharing one loaded LLM."""
    from qwenkit.apps.car.backends import LLMBackend
    from qwenkit.errors import QwenkitError
    from qwenkit.llm import LLM
    if adapter is not None and "adapters" not in inspect.signature(LLM).parameters:
        raise QwenkitError("this qwenkit's LLM cannot load LoRA adapters yet; evaluate without --adapter")
    llm = LLM(model, adapters={"car": adapter} if adapter else None, **llm_options)
    systems = [System(f"{model} (base)", LLMBackend(llm))] if base or adapter is None else []
    if adapter is not None:
        systems.append(System(f"{model} + {adapter}", LLMBackend(llm, adapter="car")))
    return systems
