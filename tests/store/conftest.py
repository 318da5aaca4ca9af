import importlib.util
import sys
from pathlib import Path

import pytest

from qwenkit.store.layout import Store
from tests.store import tiny
from tests.store.fakehub import FakeHub

NETGUARD = Path(__file__).parent / "netguard"


def _load_guard():
    spec = importlib.util.spec_from_file_location("qwenkit_test_netguard", NETGUARD / "sitecustomize.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    sys.addaudithook(module.hook)
    return module


guard = _load_guard()


@pytest.fixture(autouse=True)
def no_outbound():
    """Every store test fails if anything in this process tries to reach a non-loopback address."""
    guard.attempts.clear()
    guard.state["active"] = True
    yield
    guard.state["active"] = False
    assert not guard.attempts, f"outbound network attempts: {guard.attempts}"


@pytest.fixture
def store(tmp_path, monkeypatch) -> Store:
    home = tmp_path / "home"
    monkeypatch.setenv("QWENKIT_HOME", str(home))
    return Store(home)


@pytest.fixture(scope="session")
def hf_files() -> dict[str, bytes]:
    return tiny.hf_files()


@pytest.fixture(scope="session")
def gguf_files(tmp_path_factory) -> dict[str, bytes]:
    return tiny.gguf_files(tmp_path_factory.mktemp("gguf"))


@pytest.fixture
def hub(monkeypatch, tmp_path, hf_files, gguf_files):
    import huggingface_hub.constants as constants
    h = FakeHub()
    h.add_repo("org/tiny-qwen", hf_files, tiny.HF_LFS)
    h.add_repo("org/Tiny-GGUF", gguf_files, {n for n in gguf_files if n.endswith(".gguf")})
    h.start()
    monkeypatch.setenv("HF_ENDPOINT", h.url)
    for var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hf-cache"))
    # huggingface_hub writes in 10 MB chunks; smaller ones let a few-MB file behave like a large one on a cut
    monkeypatch.setattr(constants, "DOWNLOAD_CHUNK_SIZE", 64 << 10)
    yield h
    h.stop()
