"""The built-in catalog: short names for the official Qwen2.5 and Qwen3 releases on the Hugging Face Hub.

Sizes are approximate download sizes (GB = 1e9 bytes); the exact size and sha256 of every file come from
the Hub at pull time and are verified then.
"""
from dataclasses import dataclass

from qwenkit.store.names import ModelName

HF_FILES = ("*.json", "*.safetensors", "merges.txt", "LICENSE")


@dataclass(slots=True, frozen=True)
class Release:
    family: str          # "qwen3"
    size: str            # "0.6b"
    repo: str            # safetensors repo
    architecture: str
    params: float        # billions, total
    active: float        # billions used per token (differs for MoE)
    layers: int
    kv_heads: int
    head_dim: int
    context: int
    bf16_gb: float
    gguf: dict[str, float]  # quant -> approximate file size in GB


@dataclass(slots=True, frozen=True)
class CatalogEntry:
    name: str
    release: Release
    repo: str
    patterns: tuple[str, ...]
    format: str          # "hf" or "gguf"
    quant: str
    size_gb: float

    @property
    def size(self) -> int:
        return int(self.size_gb * 1e9)


RELEASES = [
    Release("qwen2.5", "0.5b", "Qwen/Qwen2.5-0.5B-Instruct", "qwen2", 0.49, 0.49, 24, 2, 64, 32768, 0.99,
            {"q4_k_m": 0.49, "q8_0": 0.68}),
    Release("qwen2.5", "1.5b", "Qwen/Qwen2.5-1.5B-Instruct", "qwen2", 1.54, 1.54, 28, 2, 128, 32768, 3.09,
            {"q4_k_m": 1.12, "q8_0": 1.89}),
    Release("qwen2.5", "3b", "Qwen/Qwen2.5-3B-Instruct", "qwen2", 3.09, 3.09, 36, 2, 128, 32768, 6.17,
            {"q4_k_m": 2.10, "q8_0": 3.62}),
    Release("qwen2.5", "7b", "Qwen/Qwen2.5-7B-Instruct", "qwen2", 7.62, 7.62, 28, 4, 128, 32768, 15.2,
            {"q4_k_m": 4.68, "q8_0": 8.10}),
    Release("qwen3", "0.6b", "Qwen/Qwen3-0.6B", "qwen3", 0.60, 0.60, 28, 8, 128, 40960, 1.50,
            {"q8_0": 0.64}),
    Release("qwen3", "1.7b", "Qwen/Qwen3-1.7B", "qwen3", 1.72, 1.72, 28, 8, 128, 40960, 4.06,
            {"q8_0": 1.83}),
    Release("qwen3", "4b", "Qwen/Qwen3-4B", "qwen3", 4.02, 4.02, 36, 8, 128, 40960, 8.05,
            {"q4_k_m": 2.50, "q8_0": 4.28}),
    Release("qwen3", "8b", "Qwen/Qwen3-8B", "qwen3", 8.19, 8.19, 36, 8, 128, 40960, 16.4,
            {"q4_k_m": 5.03, "q8_0": 8.71}),
    Release("qwen3", "30b-a3b", "Qwen/Qwen3-30B-A3B", "qwen3_moe", 30.5, 3.3, 48, 4, 128, 40960, 61.1,
            {"q4_k_m": 18.6, "q8_0": 32.5}),
]

ALIASES = {"qwen3:latest": "qwen3:0.6b", "qwen2.5:latest": "qwen2.5:0.5b"}


def gguf_pattern(r: Release, quant: str) -> str:
    """Official file names: qwen2.5-0.5b-instruct-q4_k_m.gguf, Qwen3-0.6B-Q8_0.gguf; large ones are split
    into `...-00001-of-00002.gguf` shards, which the trailing '*' also matches."""
    stem = r.repo.split("/")[1]
    if r.family == "qwen2.5":
        return f"{stem.lower()}-{quant}*.gguf"
    return f"{stem}-{quant.upper()}*.gguf"


def _entries() -> dict[str, CatalogEntry]:
    out = {}
    for r in RELEASES:
        name = f"{r.family}:{r.size}"
        out[name] = CatalogEntry(name, r, r.repo, HF_FILES, "hf", "bf16", r.bf16_gb)
        for quant, gb in r.gguf.items():
            out[f"{name}-{quant}"] = CatalogEntry(f"{name}-{quant}", r, f"{r.repo}-GGUF",
                                                  (gguf_pattern(r, quant),), "gguf", quant, gb)
    return out


CATALOG = _entries()


def lookup(name: ModelName) -> CatalogEntry | None:
    key = ALIASES.get(str(name), str(name))
    return CATALOG.get(key)


def canonical(name: ModelName) -> str:
    return ALIASES.get(str(name), str(name))
