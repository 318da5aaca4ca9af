"""Open a GGUF file with gguf-py and read its metadata as plain values; bad files become ModelLoadError."""
import re
from pathlib import Path
from typing import Any

import numpy as np
from gguf import GGUFReader, GGUFValueType

from qwenkit.errors import ModelLoadError

CORRUPT = (ValueError, IndexError, KeyError, TypeError, OverflowError, UnicodeDecodeError, MemoryError)


class _Reader(GGUFReader):
    """Parses from a plain ndarray view of the memory map: slicing np.memmap costs a Python hook per
    slice, and a Qwen vocab has 300k strings (5.7 s -> 1.8 s)."""

    def _get(self, offset, dtype, count=1, override_order=None):
        if type(self.data) is np.memmap:
            self.data = self.data.view(np.ndarray)
        return super()._get(offset, dtype, count, override_order)


def read_gguf(path: Path) -> tuple[GGUFReader, dict[str, Any]]:
    source = str(path)
    if not path.is_file():
        raise ModelLoadError(source, "no such file", "check the path")
    with path.open("rb") as f:
        magic = f.read(4)
    if magic != b"GGUF":
        found = "the file is empty" if not magic else f"it starts with {magic!r}, not b'GGUF'"
        raise ModelLoadError(source, f"not a GGUF file ({found})",
                             "pass a .gguf file or a Hugging Face model folder")
    try:
        reader = _Reader(path, mode="c")  # copy-on-write: writable for torch, file untouched
        return reader, {name: _value(f) for name, f in reader.fields.items() if not name.startswith("GGUF.")}
    except CORRUPT as e:
        if kind := re.search(r"(\d+)\)? is not a valid GGMLQuantizationType", str(e)):
            raise ModelLoadError(source, f"a tensor has unknown type id {kind[1]}",
                                 "the file needs a newer gguf-py, or it is corrupt") from None
        raise ModelLoadError(source, f"truncated or corrupt GGUF file ({type(e).__name__}: {e})",
                             f"it has {path.stat().st_size} bytes; download or convert it again") from None


def _value(field) -> Any:
    value = field.contents()
    if field.types == [GGUFValueType.FLOAT32]:
        return float(str(np.float32(value)))  # shortest decimal: 1e-06 stays 1e-06, not 9.999999974752427e-07
    return value
