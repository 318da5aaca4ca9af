"""Which catalog models fit this machine, and how fast they would decode.

Decode is memory-bound: every new token reads the active weights and the KV cache once, so the estimate is
bandwidth / bytes read per token. On CPU the bandwidth is what qwenkit's own decode of the embedded model
reached on this machine (falling back to a timed copy when that model is absent): a measurement scaled by
model size, not a benchmark of each model.
"""
from dataclasses import dataclass

from qwenkit.store.catalog import CATALOG, CatalogEntry, Release
from qwenkit.store.hardware import Hardware, gpus, memory
from qwenkit.store.units import human_size

OVERHEAD = int(0.5e9)          # runtime, activations, tokenizer
INTERACTIVE = 10.0             # tokens/s a chat feels fluid at
QUALITY = {"bf16": 3, "q8_0": 2, "q4_k_m": 1}


@dataclass(slots=True)
class Fit:
    entry: CatalogEntry
    device: str           # "cpu" or "cuda"
    memory: int           # bytes: weights + KV cache at the context length + runtime
    fits: str             # "yes"; "tight" (more than is free now, less than installed); "no"
    tokens_per_s: float   # decode estimate from measured bandwidth


def kv_cache_bytes(r: Release, context: int) -> int:
    return 2 * r.layers * r.kv_heads * r.head_dim * context * 2


def bytes_per_token(e: CatalogEntry, context: int) -> float:
    return e.size * e.release.active / e.release.params + kv_cache_bytes(e.release, context)


def assess(e: CatalogEntry, hw: Hardware, context: int) -> Fit:
    need = e.size + kv_cache_bytes(e.release, context) + OVERHEAD
    per_token = bytes_per_token(e, context)
    gpu_free = max((g.memory_free for g in hw.gpus), default=0)
    if need <= gpu_free:
        return Fit(e, "cuda", need, "yes", hw.gpu_bandwidth / per_token)
    fits = "yes" if need <= hw.memory_available else "tight" if need <= hw.memory_total else "no"
    return Fit(e, "cpu", need, fits, (hw.decode_bandwidth or hw.bandwidth) / per_token)


def assess_all(hw: Hardware, context: int) -> list[Fit]:
    return [assess(e, hw, context) for e in CATALOG.values()]


def recommend(fits: list[Fit]) -> Fit | None:
    """The largest model that fits and decodes at an interactive speed, in its best quant that still does."""
    ok = [f for f in fits if f.fits == "yes"]
    fast = [f for f in ok if f.tokens_per_s >= INTERACTIVE]
    if fast:
        return max(fast, key=lambda f: (f.entry.release.params, QUALITY.get(f.entry.quant, 0)))
    return max(ok, key=lambda f: f.tokens_per_s, default=None)


def fit_warning(name: str, weights: int, release: Release | None, context: int = 4096) -> str | None:
    """A warning before downloading what cannot fit in RAM or on any GPU here (no measurement needed)."""
    total, _ = memory()
    need = weights + (kv_cache_bytes(release, context) if release else 0) + OVERHEAD
    if need <= total:
        return None
    gpu_total = max((g.memory_total for g in gpus()), default=0)
    if need <= gpu_total:
        return None
    gpu = f" and {human_size(gpu_total)} on its largest GPU" if gpu_total else " and no GPU"
    return (f"{name} needs about {human_size(need)} of memory with a {context}-token context, but this "
            f"machine has {human_size(total)} of RAM{gpu}: it will not fit. "
            "`qwenkit doctor` shows what does.")
