"""What the machine can do: memory copy bandwidth, cores, CPU flags."""
import os
import time

import numpy as np


def copy_bandwidth_gbs(megabytes: int = 256, repeats: int = 5) -> float:
    """Best of a few large copies, counting bytes read plus bytes written (as PERF_NOTES does)."""
    src = np.ones(megabytes * 2**20 // 8)
    dst = np.empty_like(src)
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        np.copyto(dst, src)
        best = min(best, time.perf_counter() - started)
    return 2 * src.nbytes / best / 1e9


def describe() -> dict:
    flags = ""
    try:
        with open("/proc/cpuinfo") as f:
            flags = next((line for line in f if line.startswith("flags")), "")
    except OSError:
        pass
    features = [f for f in ("avx2", "avx512f", "avx512_bf16", "avx512_vnni", "amx_tile") if f" {f}" in flags]
    return {"cores": os.cpu_count(), "cpu_features": features}


def weight_bytes_per_token(model) -> int:
    """Bytes of weights one decode step reads: everything but the embedding table (one row of it is read),
    unless the output head is that same table."""
    def ids(module) -> set[int]:
        return {id(t) for t in [*module.parameters(), *module.buffers()]}
    head = getattr(model.lm_head, "packed", model.lm_head)  # a RefinedHead reads only a few table rows
    skip = ids(model.model.embed_tokens) - ids(head)
    tensors = {id(t): t for t in [*model.parameters(), *model.buffers()]}
    return sum(t.numel() * t.element_size() for i, t in tensors.items() if i not in skip)


def decode_bandwidth_gbs(tokens: int = 32) -> float | None:
    """Weight bytes per second that qwenkit's own decode reaches on the embedded model: what a larger model
    of known size will see on this machine. None when the embedded model is not installed."""
    from qwenkit import SamplingParams
    from qwenkit.errors import QwenkitError
    from qwenkit.llm import LLM
    try:
        llm = LLM("smollm2:135m")
    except QwenkitError:
        return None
    ids = llm.tokenizer.encode("The history of the printing press")
    stream = llm.generator.stream(ids, SamplingParams(temperature=0, max_tokens=tokens + 8, ignore_eos=True))
    for _ in range(8):
        next(stream)
    started = time.perf_counter()
    count = sum(1 for _ in stream)
    return weight_bytes_per_token(llm.model) * count / (time.perf_counter() - started) / 1e9
