"""Recognise what a local path holds: a Hugging Face folder, a GGUF file (maybe split), or a LoRA adapter."""
import json
import re
import struct
from dataclasses import dataclass
from pathlib import Path

from qwenkit.config import ARCHITECTURES
from qwenkit.store.errors import ModelNotFoundError, StoreError
from qwenkit.store.gguf_header import read_metadata

SPLIT = re.compile(r"^(?P<stem>.+)-(?P<i>\d{5})-of-(?P<n>\d{5})\.gguf$")
DTYPES = {"bfloat16": "bf16", "float16": "f16", "float32": "f32"}
HINT = "qwenkit reads Hugging Face folders (config.json + *.safetensors) and .gguf files"


@dataclass(slots=True)
class LocalModel:
    format: str                    # "hf" or "gguf"
    architecture: str
    quant: str
    files: dict[str, Path]         # relative path -> file on disk


def inspect_path(path: Path) -> LocalModel:
    path = path.expanduser()
    if not path.exists():
        raise ModelNotFoundError(f"{path}: no such file or folder")
    if path.is_file():
        if not path.name.endswith(".gguf"):
            raise StoreError(f"{path}: not a model ({HINT})")
        files = {p.name: p for p in gguf_shards(path)}
    else:
        files = folder_files(path)
        if "config.json" not in files:
            ggufs = [rel for rel in files if rel.endswith(".gguf") and "/" not in rel]
            if "adapter_config.json" in files:
                raise StoreError(f"{path}: this is a LoRA adapter, not a model; attach it with "
                                 f"`qwenkit create NAME --from BASE --adapter {path}`")
            if not ggufs:
                raise StoreError(f"{path}: no config.json and no .gguf file here ({HINT})")
            first = gguf_entry(ggufs)
            if len({SPLIT.sub(r"\g<stem>", g) for g in ggufs}) > 1:
                raise StoreError(f"{path}: several GGUF models in one folder ({', '.join(sorted(ggufs))}); "
                                 "give the path of the one you want")
            files = {p.name: p for p in gguf_shards(files[first])}
    fmt, arch, quant = classify(files)
    return LocalModel(fmt, arch, quant, files)


def adapter_files(path: Path) -> dict[str, Path]:
    path = path.expanduser()
    if not path.is_dir():
        raise StoreError(f"{path}: the adapter must be a folder (a PEFT LoRA: adapter_config.json + weights)")
    files = folder_files(path)
    if "adapter_config.json" not in files:
        raise StoreError(f"{path}: no adapter_config.json; save the adapter with PEFT's save_pretrained "
                         "or `qwenkit tune`")
    return files


def folder_files(path: Path) -> dict[str, Path]:
    """Regular files under `path`, hidden ones (.git, .cache) left out."""
    out = {}
    for p in sorted(path.rglob("*")):
        rel = p.relative_to(path)
        if any(part.startswith(".") for part in rel.parts) or not p.is_file():
            continue
        out[rel.as_posix()] = p
    return out


def gguf_shards(path: Path) -> list[Path]:
    m = SPLIT.match(path.name)
    if not m:
        return [path]
    n = int(m["n"])
    shards = [path.with_name(f"{m['stem']}-{i:05d}-of-{n:05d}.gguf") for i in range(1, n + 1)]
    missing = [s.name for s in shards if not s.is_file()]
    if missing:
        raise StoreError(f"{path}: split GGUF is missing {', '.join(missing)}; put all shards in one folder")
    return shards


def gguf_entry(names: list[str]) -> str:
    """The file a loader opens: the only .gguf, or the first shard of a split one."""
    ggufs = sorted(n for n in names if n.endswith(".gguf"))
    firsts = [n for n in ggufs if (m := SPLIT.match(n.rsplit("/", 1)[-1])) and int(m["i"]) == 1]
    return (firsts or ggufs)[0]


def classify(files: dict[str, Path]) -> tuple[str, str, str]:
    """(format, architecture, quant) of a set of model files."""
    if "config.json" in files:
        return ("hf", *config_info(files["config.json"]))
    ggufs = [rel for rel in files if rel.endswith(".gguf")]
    if not ggufs:
        listed = ", ".join(sorted(files)) or "no files"
        raise StoreError(f"no config.json and no .gguf among {listed} ({HINT})")
    return ("gguf", *gguf_info(files[gguf_entry(ggufs)]))


def config_info(path: Path) -> tuple[str, str]:
    try:
        cfg = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise StoreError(f"{path}: unreadable config.json ({e})") from None
    names = cfg.get("architectures") or []
    arch = next((ARCHITECTURES[n] for n in names if n in ARCHITECTURES), None)
    arch = arch or cfg.get("model_type") or (names[0] if names else "unknown")
    qcfg = cfg.get("quantization_config") or {}
    dtype = str(cfg.get("torch_dtype") or cfg.get("dtype") or "")
    quant = qcfg.get("quant_method") or DTYPES.get(dtype, dtype) or "unknown"
    return arch, str(quant)


def gguf_info(path: Path) -> tuple[str, str]:
    try:
        meta = read_metadata(path, {"general.architecture", "general.file_type"})
    except (OSError, ValueError, UnicodeDecodeError, struct.error) as e:
        raise StoreError(f"{path}: unreadable GGUF ({e}); re-download it") from None
    return str(meta.get("general.architecture", "unknown")), file_type_name(meta.get("general.file_type"))


def file_type_name(file_type: int | None) -> str:
    if file_type is None:
        return "unknown"
    import gguf
    try:
        name = gguf.LlamaFileType(file_type).name
    except ValueError:
        return f"type{file_type}"
    return name.removeprefix("MOSTLY_").removeprefix("ALL_").lower()
