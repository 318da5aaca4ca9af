"""Open a checkpoint from a Hugging Face folder or a GGUF file."""
from pathlib import Path

from qwenkit.errors import ModelLoadError
from qwenkit.loading.checkpoint import Checkpoint, GenerationDefaults

__all__ = ["Checkpoint", "GenerationDefaults", "load_checkpoint"]


def load_checkpoint(path: str | Path) -> Checkpoint:
    path = Path(path)
    if path.is_dir():
        from qwenkit.loading.hf import load_hf_folder
        return load_hf_folder(path)
    if path.is_file():
        from qwenkit.loading.gguf import load_gguf
        with open(path, "rb") as f:
            magic = f.read(4)
        if magic == b"GGUF" or path.suffix == ".gguf":
            return load_gguf(path)
        raise ModelLoadError(path, "not a GGUF file or a model folder",
                             "pass a Hugging Face folder (with config.json) or a .gguf file")
    raise ModelLoadError(path, "no such file or folder", "check the path, or `qwenkit list` for stored models")
