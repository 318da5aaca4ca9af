"""Hardware probe and the fit / speed advice built on it."""
import time
from pathlib import Path

import pytest

from qwenkit.store import advice, hardware
from qwenkit.store.advice import assess, fit_warning, kv_cache_bytes, recommend
from qwenkit.store.catalog import CATALOG
from qwenkit.store.hardware import Gpu, Hardware


def machine(memory_gb: float, bandwidth_gbs: float, gpus: list[Gpu] | None = None) -> Hardware:
    memory = int(memory_gb * 1e9)
    return Hardware(cpu="test", cores=8, memory_total=memory, memory_available=memory,
                    features=["AVX2"], disk_path=Path("/"), disk_free=10**12, gpus=gpus or [],
                    bandwidth=bandwidth_gbs * 1e9, gpu_bandwidth=1000e9)


def test_probe_reads_this_machine(tmp_path):
    hw = hardware.probe(tmp_path / "not-yet", measure=False)
    assert hw.cores >= 1 and hw.memory_total >= hw.memory_available > 0 and hw.disk_free > 0
    assert isinstance(hw.features, list)


def test_bandwidth_measurement_is_quick():
    import torch  # noqa: F401  (the import is not part of the measurement)
    t0 = time.perf_counter()
    bw = hardware.measure_bandwidth()
    assert time.perf_counter() - t0 < 1.0 and bw > 1e8


def test_kv_cache_size():
    r = CATALOG["qwen3:0.6b"].release                    # 28 layers x 8 kv heads x 128 dims, K and V, 2 bytes
    assert kv_cache_bytes(r, 4096) == 2 * 28 * 8 * 128 * 4096 * 2


def test_fits_and_speeds_on_an_8gb_laptop():
    hw = machine(8, 20)
    small, big = assess(CATALOG["qwen3:0.6b-q8_0"], hw, 4096), assess(CATALOG["qwen3:8b"], hw, 4096)
    assert small.fits == "yes" and big.fits == "no" and small.device == "cpu"
    per_token = CATALOG["qwen3:0.6b-q8_0"].size + kv_cache_bytes(CATALOG["qwen3:0.6b"].release, 4096)
    assert small.tokens_per_s == pytest.approx(20e9 / per_token)


def test_moe_reads_only_its_active_experts():
    hw = machine(64, 50)
    dense = assess(CATALOG["qwen3:8b-q4_k_m"], hw, 4096)
    moe = assess(CATALOG["qwen3:30b-a3b-q4_k_m"], hw, 4096)
    assert moe.memory > dense.memory and moe.tokens_per_s > dense.tokens_per_s


def test_gpu_is_used_when_the_model_fits_there():
    hw = machine(16, 20, [Gpu("H100", 80 * 10**9, 79 * 10**9)])
    f = assess(CATALOG["qwen3:30b-a3b"], hw, 4096)
    assert (f.device, f.fits) == ("cuda", "yes") and f.tokens_per_s > 100


def test_recommendation_is_the_largest_interactive_model():
    best = recommend(advice.assess_all(machine(32, 60), 4096))
    assert best.fits == "yes" and best.tokens_per_s >= advice.INTERACTIVE
    assert recommend(advice.assess_all(machine(0.1, 20), 4096)) is None


def test_pull_warns_before_a_model_that_will_not_fit(monkeypatch):
    monkeypatch.setattr(advice, "memory", lambda: (8 * 10**9, 6 * 10**9))
    monkeypatch.setattr(advice, "gpus", lambda: [])
    e = CATALOG["qwen3:30b-a3b"]
    assert "will not fit" in fit_warning(e.name, e.size, e.release)
    small = CATALOG["qwen3:0.6b"]
    assert fit_warning(small.name, small.size, small.release) is None
