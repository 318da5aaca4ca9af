"""Two `pull`s of one model at once (separate processes): one downloads, the other waits and reuses it."""
import os
import subprocess
import sys
from pathlib import Path

from qwenkit.store import resolve
from qwenkit.store.blobs import stored_blobs
from qwenkit.store.gc import prune
from qwenkit.store.lock import is_locked
from qwenkit.store.verify import verify

ROOT = Path(__file__).resolve().parents[2]
PULL = """
from qwenkit.store.progress import Reporter
from qwenkit.store.pull import pull
class Say(Reporter):
    def info(self, message):
        print(message)
print(pull('hf:org/tiny-qwen', reporter=Say()).name)
"""


def test_two_concurrent_pulls(hub, store):
    hub.delay = 0.02                     # ~1 s for the weights, so the two pulls overlap
    env = {**os.environ, "PYTHONPATH": str(ROOT), "QWENKIT_HOME": str(store.root), "HF_ENDPOINT": hub.url}
    procs = [subprocess.Popen([sys.executable, "-c", PULL], env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(2)]
    results = [p.communicate(timeout=120) for p in procs]
    for p, (out, err) in zip(procs, results, strict=True):
        assert p.returncode == 0, err
        assert out.splitlines()[-1] == "tiny-qwen:latest"
    assert any("model.safetensors: another pull is fetching it" in out for out, _ in results)
    assert len(hub.downloads("model.safetensors")) == 1
    assert verify(store=store).problems == []
    assert len(stored_blobs(store)) == 7
    assert (resolve("tiny-qwen", store).path / "model.safetensors").is_file()
    assert not [p for p in store.tmp.iterdir() if p.suffix == ".lock" and is_locked(p)]
    assert prune(store=store).blobs == 0


def test_prune_waits_for_a_running_pull(hub, store):
    hub.delay = 0.02
    env = {**os.environ, "PYTHONPATH": str(ROOT), "QWENKIT_HOME": str(store.root), "HF_ENDPOINT": hub.url}
    proc = subprocess.Popen([sys.executable, "-c", PULL], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    while not hub.downloads("model.safetensors"):
        assert proc.poll() is None, proc.communicate()
    waited = []
    done = prune(store=store, on_wait=lambda: waited.append(True))
    assert proc.wait(timeout=120) == 0
    assert waited and done.blobs == 0 and done.partials == 0
    assert verify(store=store).problems == []
