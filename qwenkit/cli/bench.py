"""`qwenkit bench`: qwenkit next to its peers on the same weights, in one run."""
from pathlib import Path
from typing import Annotated

import typer

from qwenkit.cli.common import friendly_errors
from qwenkit.errors import InvalidRequestError

SUITES = ("decode", "tune", "fidelity")


def register(app: typer.Typer) -> None:
    app.command()(bench)


@friendly_errors
def bench(
    suite: Annotated[str, typer.Argument(help="decode (workloads W1-W4), tune (LoRA training) or fidelity "
                                             "(quantized and speculative output against float32)")] = "decode",
    model: Annotated[str, typer.Option(help="GGUF file or store name to measure")] = "smollm2:135m",
    new_tokens: Annotated[int, typer.Option(help="Tokens generated per run (fidelity: the speculative run)")] = 256,
    repeats: Annotated[int, typer.Option(help="Runs per system; the median is reported")] = 3,
    threads: Annotated[int, typer.Option(help="CPU threads for every system")] = 2,
    out: Annotated[Path, typer.Option(help="Folder for the JSON report and the PNG chart")] = Path("artifacts/bench"),
    workloads: Annotated[str, typer.Option(help="decode: comma-separated w1,w2,w3,w4")] = "w1,w2,w3,w4",
    steps: Annotated[int, typer.Option(help="tune: timed optimizer steps per system")] = 20,
    tune_models: Annotated[str, typer.Option(help="tune: smollm2-135m, qwen2.5-0.5b")] = "smollm2-135m,qwen2.5-0.5b",
) -> None:
    """Benchmarks side by side. decode: W1 single stream (qwenkit vs transformers vs llama.cpp if installed),
    W2 16-request throughput, W3 shared-prefix first token, W4 Qwen shapes at bf16/int8/int4.
    tune: LoRA r16 training tokens/s and peak memory, qwenkit vs transformers + PEFT (fp32, bf16).
    fidelity: int8/int4 greedy agreement and logits cosine against float32, speculative decoding's speed-up."""
    if suite not in SUITES:
        raise InvalidRequestError("suite", f"unknown benchmark {suite!r}; choose {' or '.join(SUITES)}")
    if steps < 1:
        raise InvalidRequestError("steps", "must be at least 1")
    from qwenkit.store import enforce_offline, resolve
    enforce_offline()
    path = resolve(model).path
    if suite == "fidelity":
        from qwenkit.bench.fidelity import run_fidelity
        run_fidelity(out, str(path), new_tokens=new_tokens, threads=threads)
        typer.echo(f"wrote {out / 'bench_fidelity.json'}")
        return
    if suite == "tune":
        from qwenkit.bench.shapes import SHAPES
        chosen = tuple(m.strip() for m in tune_models.split(",") if m.strip())
        if not chosen or any(m != "smollm2-135m" and m not in SHAPES for m in chosen):
            raise InvalidRequestError("tune-models", f"choose from smollm2-135m, {', '.join(SHAPES)}")
        from qwenkit.bench.tune_runner import run_tune
        run_tune(out, str(path), steps=steps, threads=threads, models=chosen)
        typer.echo(f"wrote {out / 'bench_tune.json'} and {out / 'bench_tune.png'}")
        return
    from qwenkit.bench.runner import WORKLOADS
    chosen = tuple(w.strip().lower() for w in workloads.split(",") if w.strip())
    if not chosen or any(w not in WORKLOADS for w in chosen):
        raise InvalidRequestError("workloads", f"choose from {', '.join(WORKLOADS)}")
    from qwenkit.bench.runner import run
    run(out, str(path), chosen, new_tokens=new_tokens, repeats=repeats, threads=threads)
    typer.echo(f"wrote {out / 'bench.json'} and {out / 'bench.png'}")
