"""Safetensors read tensor by tensor with plain file reads instead of a memory map.

Every page of a memory-mapped file that the loader touches counts toward the process's resident memory
until the map goes away, so quantizing a 1.2 GB checkpoint through a map peaks at the file size plus the
model. Reading each tensor (or a range of its rows) into its own buffer lets the quantized loader free
the full-precision copy as soon as it is converted.
"""
import json
import os
import struct
from collections.abc import Iterator, Mapping
from pathlib import Path

import torch

from qwenkit.errors import ModelLoadError

DTYPES = {"F64": torch.float64, "F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16,
          "I64": torch.int64, "I32": torch.int32, "I16": torch.int16, "I8": torch.int8, "U8": torch.uint8,
          "BOOL": torch.bool}


class SafetensorsTensors(Mapping):
    """Name -> tensor over one or more safetensors files; each access reads that tensor from disk."""

    def __init__(self, files: list[Path]):
        self._where: dict[str, tuple[Path, torch.dtype, tuple[int, ...], int, int]] = {}
        for file in files:
            self._where.update(_header(file))

    def __getitem__(self, name: str) -> torch.Tensor:
        file, dtype, shape, start, stop = self._where[name]
        return _read(file, start, stop - start, dtype).reshape(shape)

    def __iter__(self) -> Iterator[str]:
        return iter(self._where)

    def __len__(self) -> int:
        return len(self._where)

    def shape(self, name: str) -> tuple[int, ...]:
        return self._where[name][2]

    def rows(self, name: str, start: int, stop: int) -> torch.Tensor:
        """Rows [start, stop) of a tensor, reading only those bytes."""
        file, dtype, shape, offset, _ = self._where[name]
        row_bytes = dtype.itemsize * (int(torch.tensor(shape[1:]).prod()) if len(shape) > 1 else 1)
        stop = min(stop, shape[0])
        return _read(file, offset + start * row_bytes, (stop - start) * row_bytes, dtype).reshape(
            stop - start, *shape[1:])


def _header(file: Path) -> dict[str, tuple[Path, torch.dtype, tuple[int, ...], int, int]]:
    size = file.stat().st_size
    try:
        with open(file, "rb") as f:
            (length,) = struct.unpack("<Q", f.read(8))
            if length > size - 8:
                raise ValueError("header longer than the file")
            header = json.loads(f.read(length))
    except (OSError, ValueError, struct.error, UnicodeDecodeError) as e:
        raise ModelLoadError(file, f"cannot read safetensors ({e})",
                             "the file is truncated or corrupt; re-download it") from None
    base, out = 8 + length, {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        dtype = DTYPES.get(info.get("dtype"))
        start, stop = info["data_offsets"]
        shape = tuple(info["shape"])
        if dtype is None:
            raise ModelLoadError(file, f"tensor {name!r} has unsupported dtype {info.get('dtype')!r}",
                                 "convert the checkpoint to bf16, f16 or f32 safetensors")
        count = 1
        for d in shape:
            count *= d
        if stop - start != count * dtype.itemsize or base + stop > size:
            raise ModelLoadError(file, f"tensor {name!r} does not fit the file",
                                 "the file is truncated or corrupt; re-download it")
        out[name] = (file, dtype, shape, base + start, base + stop)
    return out


def _read(file: Path, offset: int, length: int, dtype: torch.dtype) -> torch.Tensor:
    buffer = bytearray(length)
    view = memoryview(buffer)
    fd = os.open(file, os.O_RDONLY)
    try:
        done = 0
        while done < length:
            n = os.preadv(fd, [view[done:]], offset + done)
            if n == 0:
                raise ModelLoadError(file, "unexpected end of file", "the file is truncated; re-download it")
            done += n
    finally:
        os.close(fd)
    if length == 0:
        return torch.empty(0, dtype=dtype)
    return torch.frombuffer(buffer, dtype=dtype)
