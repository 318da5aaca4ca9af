"""`qwenkit bench`: qwenkit next to its peers on the same weights, in one run."""
from pathlib import Path
from typing import Annotated

import typer

from qwenkit.cli.common import friendly_errors
from qwenkit.errors import InvalidRequestError


def register(app: typer.Typer) -> None:
    app.command()(bench)


@friendly_errors
def bench(
    model: Annotated[str, typer.Option(help="GGUF file or store name to measure")] = "smollm2:135m",
    new_tokens: Annotated[int, typer.Option(help="Tokens generated per run")] = 256,
    repeats: Annotated[int, typer.Option(help="Runs per system; the median is reported")] = 3,
    threads: Annotated[int, typer.Option(help="CPU threads for every system")] = 2,
    out: Annotated[Path, typer.Option(help="Folder for bench.json and bench.png")] = Path("artifacts/bench"),
    workloads: Annotated[str, typer.Option(help="Comma-separated: w1,w2,w3,w4")] = "w1,w2,w3,w4",
) -> None:
    """Benchmarks side by side: W1 single stream (qwenkit vs transformers vs llama.cpp if installed),
    W2 16-request throughput, W3 shared-prefix first token, W4 Qwen shapes at bf16/int8/int4."""
    from qwenkit.bench.runner import WORKLOADS
    chosen = tuple(w.strip().lower() for w in workloads.split(",") if w.strip())
    if not chosen or any(w not in WORKLOADS for w in chosen):
        raise InvalidRequestError("workloads", f"choose from {', '.join(WORKLOADS)}")
    from qwenkit.bench.runner import run
    from qwenkit.store import enforce_offline, resolve
    enforce_offline()
    path = resolve(model).path
    run(out, str(path), chosen, new_tokens=new_tokens, repeats=repeats, threads=threads)
    typer.echo(f"wrote {out / 'bench.json'} and {out / 'bench.png'}")
