"""What this machine has: cores, memory, GPUs, CPU features, free disk, and measured memory bandwidth."""
import os
import platform
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

FEATURES = [("avx2", "AVX2"), ("avx512f", "AVX-512"), ("avx512_bf16", "AVX512-BF16"),
            ("avx512_vnni", "AVX512-VNNI"), ("avx_vnni", "AVX-VNNI"), ("amx_tile", "AMX"),
            ("amx_bf16", "AMX-BF16"), ("amx_int8", "AMX-INT8"), ("fma", "FMA"), ("f16c", "F16C"),
            ("asimd", "NEON"), ("sve", "SVE"), ("bf16", "BF16"), ("i8mm", "I8MM")]


@dataclass(slots=True)
class Gpu:
    name: str
    memory_total: int
    memory_free: int


@dataclass(slots=True)
class Hardware:
    cpu: str
    cores: int
    memory_total: int
    memory_available: int
    features: list[str]
    disk_path: Path
    disk_free: int
    gpus: list[Gpu] = field(default_factory=list)
    bandwidth: float = 0.0        # CPU memory bandwidth measured by a timed copy, bytes/s
    decode_bandwidth: float = 0.0  # weight bytes/s qwenkit's decode reached on the embedded model (0: not measured)
    gpu_bandwidth: float = 0.0


def probe(disk_path: Path, measure: bool = True) -> Hardware:
    cpu, flags = cpu_info()
    total, available = memory()
    path = disk_path if disk_path.exists() else _existing_parent(disk_path)
    hw = Hardware(cpu=cpu, cores=len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else
                  os.cpu_count() or 1, memory_total=total, memory_available=available,
                  features=[label for flag, label in FEATURES if flag in flags],
                  disk_path=disk_path, disk_free=shutil.disk_usage(path).free, gpus=gpus())
    if measure:
        hw.bandwidth = measure_bandwidth("cpu")
        from qwenkit.bench.machine import decode_bandwidth_gbs
        hw.decode_bandwidth = (decode_bandwidth_gbs() or 0.0) * 1e9
        if hw.gpus:
            hw.gpu_bandwidth = measure_bandwidth("cuda")
    return hw


def cpu_info() -> tuple[str, set[str]]:
    name, flags = platform.processor() or platform.machine(), set()
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return name, flags
    for line in text.splitlines():
        key, _, value = line.partition(":")
        key = key.strip().lower()
        if key in ("model name", "cpu model") and name in (platform.processor(), platform.machine()):
            name = value.strip()
        elif key in ("flags", "features") and not flags:
            flags = set(value.split())
    return name, flags


def memory() -> tuple[int, int]:
    """(total, available) bytes, capped by a cgroup memory limit when running in a container."""
    info = {}
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            key, _, value = line.partition(":")
            info[key] = int(value.split()[0]) * 1024
        total, available = info["MemTotal"], info.get("MemAvailable", info.get("MemFree", 0))
    except (OSError, KeyError, ValueError, IndexError):
        page = os.sysconf("SC_PAGE_SIZE")
        total, available = os.sysconf("SC_PHYS_PAGES") * page, os.sysconf("SC_AVPHYS_PAGES") * page
    limit, used = _cgroup_limit()
    if limit and limit < total:
        total, available = limit, min(available, max(limit - used, 0))
    return total, available


def _cgroup_limit() -> tuple[int | None, int]:
    for limit_file, used_file in (("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current"),
                                  ("/sys/fs/cgroup/memory/memory.limit_in_bytes",
                                   "/sys/fs/cgroup/memory/memory.usage_in_bytes")):
        try:
            text = Path(limit_file).read_text().strip()
            if text == "max":
                return None, 0
            return int(text), int(Path(used_file).read_text().strip())
        except (OSError, ValueError):
            continue
    return None, 0


def gpus() -> list[Gpu]:
    try:
        import torch
        if not torch.cuda.is_available():
            return []
        out = []
        for i in range(torch.cuda.device_count()):
            free, total = torch.cuda.mem_get_info(i)
            out.append(Gpu(torch.cuda.get_device_name(i), total, free))
        return out
    except Exception:
        return []


def measure_bandwidth(device: str = "cpu", nbytes: int = 128 << 20, repeats: int = 3) -> float:
    """Bytes/s moved by a large tensor copy (read + write), best of a few runs; well under a second."""
    import torch
    if device == "cpu":
        nbytes = min(nbytes, max(memory()[1] // 8, 16 << 20))
    src = torch.ones(nbytes // 4, dtype=torch.float32, device=device)
    dst = torch.empty_like(src)
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    dst.copy_(src)
    sync()
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        dst.copy_(src)
        sync()
        best = min(best, time.perf_counter() - t0)
    return 2 * src.numel() * 4 / best


def _existing_parent(path: Path) -> Path:
    while not path.exists() and path != path.parent:
        path = path.parent
    return path
