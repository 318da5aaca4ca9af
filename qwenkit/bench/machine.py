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
