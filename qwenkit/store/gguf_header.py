"""Read a GGUF file's metadata keys without parsing its tensors (gguf.GGUFReader takes seconds)."""
import struct
from pathlib import Path

SCALARS = {0: "B", 1: "b", 2: "H", 3: "h", 4: "I", 5: "i", 6: "f", 7: "?", 10: "Q", 11: "q", 12: "d"}
STRING, ARRAY = 8, 9


def read_metadata(path: Path, keys: set[str] | None = None) -> dict:
    """Scalar and string metadata (arrays are skipped). Raises ValueError if the file is not GGUF."""
    with open(path, "rb") as f:
        if f.read(4) != b"GGUF":
            raise ValueError(f"{path} is not a GGUF file (bad magic)")
        version, _tensors, count = struct.unpack("<IQQ", f.read(20))
        if version < 2:
            raise ValueError(f"{path}: GGUF version {version} is too old")
        out = {}
        for _ in range(count):
            key = _string(f)
            kind = _u32(f)
            value = _value(f, kind)
            if keys is None or key in keys:
                out[key] = value
        return out


def _u32(f) -> int:
    return struct.unpack("<I", f.read(4))[0]


def _string(f) -> str:
    (n,) = struct.unpack("<Q", f.read(8))
    return f.read(n).decode("utf-8", errors="replace")


def _value(f, kind: int):
    if kind in SCALARS:
        fmt = "<" + SCALARS[kind]
        return struct.unpack(fmt, f.read(struct.calcsize(fmt)))[0]
    if kind == STRING:
        return _string(f)
    if kind == ARRAY:
        item, n = struct.unpack("<IQ", f.read(12))
        if item in SCALARS:
            f.seek(n * struct.calcsize(SCALARS[item]), 1)
        else:
            for _ in range(n):
                _value(f, item)
        return None
    raise ValueError(f"unknown GGUF value type {kind}")
