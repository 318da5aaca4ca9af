"""`qwenkit tune MODEL --data train.jsonl --out DIR [key=value ...]`: LoRA fine-tuning to a PEFT adapter."""
import shlex
import sys
from pathlib import Path
from typing import Annotated

import typer

from qwenkit.cli.common import console, friendly_errors


def register(app: typer.Typer) -> None:
    app.command()(tune)


@friendly_errors
def tune(
    model: Annotated[str, typer.Argument(help="Base model: store name (smollm2:135m), folder or .gguf")],
    overrides: Annotated[list[str] | None, typer.Argument(help="Settings as key=value, e.g. lr=1e-4 epochs=2",
                                                          show_default=False)] = None,
    data: Annotated[Path, typer.Option(help="Training data: a JSONL file or a folder of them")] = ...,
    out: Annotated[Path, typer.Option(help="Run folder: the adapter, best/, checkpoints/, report.json")] = ...,
    eval: Annotated[Path | None, typer.Option("--eval", help="Eval data (default: hold out eval_split)")] = None,
    config: Annotated[Path | None, typer.Option(help="YAML file of settings; key=value overrides win")] = None,
    resume: Annotated[bool, typer.Option(help="Continue the run in --out from its last checkpoint")] = False,
    force: Annotated[bool, typer.Option(help="Write into a non-empty --out, or restart the run there")] = False,
    quiet: Annotated[bool, typer.Option(help="No progress output")] = False,
) -> None:
    """Fine-tune MODEL with LoRA on chat data (OpenAI messages, Alpaca or ShareGPT JSONL). Ctrl-C saves a
    checkpoint; --resume continues it exactly. Run under `torchrun --nproc_per_node N -m qwenkit.cli.main tune`
    for data parallel training."""
    from qwenkit.store import enforce_offline
    from qwenkit.tune.api import tune as run_tune
    from qwenkit.tune.config import parse_overrides
    from qwenkit.tune.trainer import Interrupted
    enforce_offline()
    try:
        report = run_tune(model, data, out, eval_data=eval, config=config, resume=resume, force=force, quiet=quiet,
                          **parse_overrides(overrides or []))
    except Interrupted as e:
        console.print(f"[yellow]{e}[/]", soft_wrap=True)
        console.print(f"resume with: {resume_command()}", soft_wrap=True, markup=False)
        raise typer.Exit(130) from None
    if not quiet:
        typer.echo(f"{report.steps} steps, final loss {report.losses[-1][1]:.4f}, "
                   f"{report.tokens_per_second:,.0f} tokens/s; report: {out / 'report.json'}")


def resume_command() -> str:
    args = [a for a in sys.argv[1:] if a != "--force"]
    if "--resume" not in args:
        args.append("--resume")
    return shlex.join(["qwenkit", *args])
