"""Fold a LoRA adapter into its base model and write a standalone Hugging Face folder."""
from pathlib import Path

from qwenkit.errors import InvalidRequestError
from qwenkit.export.hf_folder import DTYPES, write_hf_folder
from qwenkit.export.source import open_source
from qwenkit.export.staging import check_destination, staged_folder


def merge_adapter(model: str | Path, adapter_dir: str | Path, out_dir: str | Path, dtype: str = "bf16",
                  force: bool = False) -> Path:
    """`model`: a store name, HF folder or GGUF file (quantized GGUF weights are dequantized first).
    Writes config.json, safetensors weights, tokenizer files and generation_config.json into `out_dir`,
    which appears only when complete; a non-empty `out_dir` is replaced only with `force`."""
    if dtype not in DTYPES:
        raise InvalidRequestError("dtype", f"unknown dtype {dtype!r}; choose {', '.join(DTYPES)}")
    out = Path(out_dir).expanduser()
    check_destination(out, force, [], folder=True)
    source = open_source(model, adapter_dir)
    check_destination(out, force, source.inputs, folder=True)
    with staged_folder(out) as tmp:
        write_hf_folder(source, tmp, dtype)
    return out
