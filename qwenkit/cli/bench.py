"""`qwenkit bench`: qwenkit next to its peers on the same weights, in one run."""
from pathlib import Path
from typing import Annotated

import typer

from qwenkit.cli.common import friendly_errors


def register(app: typer.Typer) -> None:
    app.command()(bench)


@friendly_errors
def bench(
    model: Annotated[str, typer.Option(help="GGUF file or store name to measure")] = "smollm2:135m",
    new_tokens: Annotated[int, typer.Option(help="Tokens generated per run")] = 256,
    repeats: Annotated[int, typer.Option(help="Runs per system; the median is reported")] = 3,
    threads: Annotated[int, typer.Option(help="CPU threads for every system")] = 2,
    out: Annotated[Path, typer.Option(help="Folder for bench.json and bench.png")] = Path("artifacts/bench"),
) -> None:
    """W1 single-stream decode: qwenkit (auto/int8/fp32) vs transformers (fp32/bf16) vs llama.cpp if installed."""
    from qwenkit.bench.runner import run
    from qwenkit.store import enforce_offline, resolve
    enforce_offline()
    path = resolve(model).path
    run(out, str(path), new_tokens=new_tokens, repeats=repeats, threads=threads)
    typer.echo(f"wrote {out / 'bench.json'} and {out / 'bench.png'}")
