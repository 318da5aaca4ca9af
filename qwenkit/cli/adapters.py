"""`qwenkit merge` and `qwenkit export`: fold a LoRA adapter into its base model, write HF or GGUF files."""
from pathlib import Path
from typing import Annotated

import typer

from qwenkit.cli.common import console, fail, friendly_errors


def register(app: typer.Typer) -> None:
    app.command()(merge)
    app.command()(export)


@friendly_errors
def merge(
    model: Annotated[str, typer.Argument(help="Base model: store name, HF folder or .gguf file")],
    adapter: Annotated[Path, typer.Option(help="PEFT LoRA adapter folder (from `qwenkit tune` or PEFT)")],
    out: Annotated[Path, typer.Option(help="Folder to write the merged Hugging Face model to")],
    dtype: Annotated[str, typer.Option(help="Weight type: bf16, f16 or f32")] = "bf16",
    force: Annotated[bool, typer.Option(help="Replace OUT if it is not empty")] = False,
) -> None:
    """Fold a LoRA adapter into its base model and write a standalone Hugging Face folder."""
    from qwenkit.store import enforce_offline
    from qwenkit.tune.merge import merge_adapter
    enforce_offline()
    with console.status(f"merging {adapter} into {model}"):
        folder = merge_adapter(model, adapter, out, dtype=dtype, force=force)
    console.print(f"wrote {folder}")


@friendly_errors
def export(
    model: Annotated[str, typer.Argument(help="Model: store name, HF folder or .gguf file")],
    out: Annotated[Path, typer.Option(help="File to write, e.g. model.gguf")],
    adapter: Annotated[Path | None, typer.Option(help="PEFT LoRA adapter folder to fold in first")] = None,
    fmt: Annotated[str, typer.Option("--format", help="Output format: gguf")] = "gguf",
    qtype: Annotated[str, typer.Option(help="Tensor type: f16, q8_0 or q4_0")] = "f16",
    force: Annotated[bool, typer.Option(help="Replace OUT if it exists")] = False,
) -> None:
    """Write a model (with an adapter folded in) as a llama.cpp GGUF file."""
    from qwenkit.export import export_gguf
    from qwenkit.store import enforce_offline
    if fmt != "gguf":
        fail(f"format: unknown format {fmt!r}; qwenkit exports gguf (use `qwenkit merge` for a HF folder)")
    enforce_offline()
    with console.status(f"exporting {model} as {qtype}"):
        file = export_gguf(model, out, qtype=qtype, adapter=adapter, force=force)
    console.print(f"wrote {file} ({file.stat().st_size / 1e6:.1f} MB)")
