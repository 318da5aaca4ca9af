"""`qwenkit eval car`: tool-call accuracy, answer checks and latency of car assistants, in one report."""
import functools
from pathlib import Path
from typing import Annotated

import typer

from qwenkit.cli.common import console, fail, friendly_errors

eval_app = typer.Typer(no_args_is_help=True, help="Evaluate assistants built on qwenkit.")


def register(app: typer.Typer) -> None:
    app.add_typer(eval_app, name="eval")


@eval_app.command("car")
@friendly_errors
def car(
    model: Annotated[str | None, typer.Option(help="Model to run in this process (with --endpoint: the "
                                              "endpoint's model name)")] = None,
    adapter: Annotated[Path | None, typer.Option(help="LoRA adapter folder from `qwenkit tune`; the base model "
                                                 "is evaluated too unless --no-base")] = None,
    base: Annotated[bool, typer.Option("--base/--no-base", help="With --adapter, also evaluate the base model")]
    = True,
    endpoint: Annotated[str | None, typer.Option(help="OpenAI-compatible server, e.g. http://127.0.0.1:8000")]
    = None,
    baseline: Annotated[bool, typer.Option("--baseline", help="Evaluate the regex baseline")] = False,
    tuned_prompt: Annotated[bool, typer.Option("--tuned-prompt", help="With --endpoint: the server runs a car "
                                               "adapter qwenkit tuned, so send its short system prompt instead of "
                                               "the tool list")] = False,
    split: Annotated[str, typer.Option(help="test, val or train")] = "test",
    data: Annotated[Path | None, typer.Option(help="Folder written by `qwenkit car data` (default: generate "
                                              "the split from --seed)")] = None,
    seed: Annotated[int, typer.Option(help="Seed of the generated data")] = 0,
    cases: Annotated[int, typer.Option(help="Cases to generate when there is no --data")] = 300,
    limit: Annotated[int | None, typer.Option(help="Evaluate only the first N cases")] = None,
    out: Annotated[Path, typer.Option(help="Folder for report.json and report.png")] = Path("car-eval"),
    max_tokens: Annotated[int, typer.Option(help="Most new tokens per model step")] = 96,
    device: Annotated[str, typer.Option(help="auto, cpu, cuda")] = "auto",
    quant: Annotated[str, typer.Option(help="auto, none, int8, int4")] = "auto",
    threads: Annotated[int | None, typer.Option(help="CPU threads")] = None,
) -> None:
    """Score systems on held-out car requests: exact tool calls per turn (per tool too), valid JSON, answers
    that repeat the returned distance and time, and latency per turn. Systems: --baseline, --model, --adapter,
    --endpoint (any mix); all land in one report, next to systems of earlier runs on the same cases."""
    from qwenkit.apps.car.backends import LLMBackend, OpenAIBackend
    from qwenkit.apps.car.baseline import BaselineBackend
    from qwenkit.eval import report
    from qwenkit.eval.car import System, failures, llm_systems
    from qwenkit.store import enforce_offline
    if split not in ("train", "val", "test"):
        fail(f"--split {split!r}: choose train, val or test")
    if tuned_prompt and not endpoint:
        fail("--tuned-prompt is for --endpoint; a model run here picks its prompt from --adapter")
    if not (baseline or model or adapter or endpoint):
        fail("nothing to evaluate: pass --baseline, --model M, --adapter DIR and/or --endpoint URL")
    chosen = load_cases(data, split, seed, cases)[:limit]
    systems = [System("regex baseline", BaselineBackend())] if baseline else []
    if endpoint:
        backend = OpenAIBackend(endpoint, model, max_tokens=max_tokens, tuned=tuned_prompt)
        systems.append(System(f"{backend.model} @ {endpoint}", backend))
    if adapter or (model and not endpoint):
        enforce_offline()
        from qwenkit.llm import DEFAULT_MODEL
        with console.status(f"loading {model or DEFAULT_MODEL}"):
            systems += llm_systems(model or DEFAULT_MODEL, str(adapter) if adapter else None, base, device=device,
                                   quant=quant, threads=threads)
        for system in systems:
            if isinstance(system.backend, LLMBackend):
                system.backend.params.max_tokens = max_tokens
    summaries, details = run_all(systems, chosen)
    dataset = {"data": str(data) if data else "generated", "seed": seed, "split": split,
               "cases": len(chosen), "turns": sum(len(c.turns) for c in chosen)}
    merged = report.merge(out, dataset, summaries, {s: failures(d) for s, d in details.items()})
    json_path, png_path = report.write(out, merged)
    from rich.console import Console
    stdout = Console(highlight=False)
    stdout.print(table(merged["systems"]))
    stdout.print(f"report: {json_path}  chart: {png_path}", soft_wrap=True)


def load_cases(data: Path | None, split: str, seed: int, count: int):
    from qwenkit.apps.car.datagen import generate
    from qwenkit.apps.car.datagen import load_cases as read
    if data is None:
        return generate(seed, {split: count})[split]
    path = Path(data) / "cases" / f"{split}.jsonl"
    if not path.is_file():
        fail(f"{path} does not exist: write the data with `qwenkit car data --out {data}`")
    return read(path)


def run_all(systems, cases) -> tuple[list[dict], dict[str, list]]:
    from rich import progress as rp

    from qwenkit.eval.car import evaluate, summarize
    turns = sum(len(c.turns) for c in cases)
    summaries, details = [], {}
    columns = [rp.TextColumn("{task.description}"), rp.BarColumn(), rp.MofNCompleteColumn(),
               rp.TimeElapsedColumn(), rp.TextColumn("eta"), rp.TimeRemainingColumn()]
    with rp.Progress(*columns, console=console) as progress:
        for system in systems:
            task = progress.add_task(system.name, total=turns)
            scores = evaluate(system, cases, functools.partial(progress.advance, task))
            summaries.append(summarize(system.name, scores))
            details[system.name] = scores
    return summaries, details


def table(systems: list[dict]):
    from rich.table import Table
    grid = Table("system", "turns", "exact", "valid JSON", "answer figures", "p50 s", "p95 s")
    for s in systems:
        pct = [f"{v:.1%}" if v is not None else "-" for v in
               (s["exact_match"], s["json_valid"], s["answer_mentions_figures"])]
        grid.add_row(s["system"], str(s["turns"]), *pct, f"{s['latency_s']['p50']:.3f}",
                      f"{s['latency_s']['p95']:.3f}")
    return grid
