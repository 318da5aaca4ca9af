"""`pull modelscope:...` with the real ModelScope client against a ModelScope look-alike on loopback."""
import hashlib
import json
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from qwenkit.cli import store as store_cli
from qwenkit.store import resolve
from qwenkit.store.errors import PullError
from qwenkit.store.manifest import read_manifest
from qwenkit.store.names import parse_name
from qwenkit.store.pull import pull
from tests.store import tiny
from tests.store.fakemodelscope import FakeModelScope

pytest.importorskip("modelscope")

WANTED = {"config.json", "generation_config.json", "tokenizer_config.json", "vocab.json", "merges.txt",
          "tokenizer.json", "model.safetensors"}


@pytest.fixture
def ms(monkeypatch, tmp_path, hf_files, gguf_files):
    h = FakeModelScope()
    h.add_repo("org/tiny-qwen", hf_files, tiny.HF_LFS)
    h.add_repo("org/Tiny-GGUF", gguf_files, {n for n in gguf_files if n.endswith(".gguf")})
    h.start()
    monkeypatch.setenv("MODELSCOPE_ENDPOINT", h.url)
    monkeypatch.setenv("HOME", str(tmp_path / "user"))      # the client's defaults live under ~
    for var in ("MODELSCOPE_OFFLINE", "MODELSCOPE_DOMAIN", "MODELSCOPE_API_TOKEN", "MODELSCOPE_CACHE",
                "MODELSCOPE_DOWNLOAD_INTRA_CLOUD", "TQDM_DISABLE"):
        monkeypatch.delenv(var, raising=False)
    yield h
    h.stop()


def assert_only_the_known_endpoints(h: FakeModelScope, home: Path) -> None:
    assert h.unknown == []                                   # e.g. no region probe (internalAccelerationInfo)
    assert {path.rsplit("/", 1)[-1] for _, path, _ in h.log} <= {"files", "repo"} | {
        f.sha256 for r in h.repos.values() for f in r.files.values()}
    assert not home.exists() or not any(home.rglob("*")), "the client wrote outside the qwenkit store"


def test_pull_stores_the_verified_files_and_cleans_up(ms, store, hf_files, tmp_path):
    m = pull("modelscope:org/tiny-qwen", store=store)
    assert m.name == "tiny-qwen:latest"
    assert (m.format, m.architecture, m.quant) == ("hf", "qwen3", "bf16")
    assert m.source == "modelscope:org/tiny-qwen@master"
    assert {f.path for f in m.files} == WANTED
    for f in m.files:
        assert f.sha256 == hashlib.sha256(hf_files[f.path]).hexdigest()
        assert store.blob(f.sha256).read_bytes() == hf_files[f.path]
    assert read_manifest(store, parse_name("tiny-qwen")) == m
    assert sorted(ms.downloads()) == sorted(WANTED)
    r = resolve("tiny-qwen", store)
    assert r.format == "hf" and json.loads((r.path / "config.json").read_text())["model_type"] == "qwen3"
    assert list(store.tmp.iterdir()) == []
    assert_only_the_known_endpoints(ms, tmp_path / "user")


def test_second_pull_downloads_nothing(ms, store):
    pull("modelscope:org/tiny-qwen", store=store)
    served = len(ms.served)
    assert pull("modelscope:org/tiny-qwen", store=store, name="again:v1").name == "again:v1"
    assert ms.served[served:] == []


def test_a_dropped_connection_resumes_with_a_range_request(ms, store, hf_files):
    half = len(hf_files["model.safetensors"]) // 2
    ms.drops["model.safetensors"] = half
    m = pull("modelscope:org/tiny-qwen", store=store)
    ranges = [rng for name, rng in ms.served if name == "model.safetensors"]
    assert ranges[0] is None and ranges[1] == f"bytes={half}-"
    f = next(f for f in m.files if f.path == "model.safetensors")
    assert f.sha256 == hashlib.sha256(hf_files["model.safetensors"]).hexdigest()


def test_a_failed_pull_resumes_on_the_next_run(ms, store, hf_files, monkeypatch):
    from modelscope_hub import _download
    monkeypatch.setattr(_download, "DOWNLOAD_RETRY_TIMES", 0)      # no retry inside the run: it fails
    half = len(hf_files["model.safetensors"]) // 2
    ms.drops["model.safetensors"] = half
    with pytest.raises(PullError, match="model.safetensors.*run the same pull again to resume"):
        pull("modelscope:org/tiny-qwen", store=store)
    assert read_manifest(store, parse_name("tiny-qwen")) is None
    served = len(ms.served)
    pull("modelscope:org/tiny-qwen", store=store)
    assert ms.served[served:] == [("model.safetensors", f"bytes={half}-")]     # the rest of it, nothing else
    assert list(store.tmp.iterdir()) == []


def test_pulled_model_loads(ms, store, tiny_models):
    from qwenkit.loading import load_checkpoint
    folder, _ = tiny_models("qwen2")
    files = {p.name: p.read_bytes() for p in folder.iterdir()}
    ms.add_repo("Qwen/Qwen2-Tiny", files, {"model.safetensors", "tokenizer.json"})
    pull("modelscope:Qwen/Qwen2-Tiny", store=store)
    ckpt = load_checkpoint(resolve("qwen2-tiny", store).path)
    assert ckpt.format == "hf" and ckpt.config.num_hidden_layers == 2
    assert ckpt.tokenizer.encode("hello") == load_checkpoint(folder).tokenizer.encode("hello")


@pytest.mark.parametrize("ref, name, wanted", [
    ("modelscope:org/Tiny-GGUF:tiny-q4_k_m.gguf", "tiny-gguf:q4_k_m", ["tiny-q4_k_m.gguf"]),
    ("modelscope:org/Tiny-GGUF:Q8_0", "tiny-gguf:q8_0", ["tiny-q8_0.gguf"]),    # a quant, any case
    ("modelscope:org/Tiny-GGUF:tiny-f16-00001-of-00002.gguf", "tiny-gguf:f16",
     ["tiny-f16-00001-of-00002.gguf", "tiny-f16-00002-of-00002.gguf"]),
])
def test_gguf_selector_picks_the_named_file(ms, store, gguf_files, ref, name, wanted):
    m = pull(ref, store=store)
    assert m.name == name and m.format == "gguf"
    assert sorted(f.path for f in m.files) == wanted
    assert sorted(ms.downloads()) == wanted
    r = resolve(name, store)
    assert r.path.name == wanted[0] and r.path.read_bytes() == gguf_files[wanted[0]]


@pytest.mark.parametrize("ref, message", [
    ("modelscope:org/Tiny-GGUF", "pick one, e.g. `qwenkit pull modelscope:org/Tiny-GGUF:tiny-f16"),
    ("modelscope:org/Tiny-GGUF:tiny", "several GGUF models"),
    ("modelscope:org/Tiny-GGUF:q2_k", "no file in modelscope:org/Tiny-GGUF matches q2_k"),
    ("modelscope:org/nope", "no such repository"),
])
def test_bad_references_fail_before_any_download(ms, store, ref, message):
    with pytest.raises(PullError, match=message.replace("(", r"\(")):
        pull(ref, store=store)
    assert ms.served == []


def test_modelscope_offline_refuses_without_contacting_anything(ms, store, monkeypatch):
    monkeypatch.setenv("MODELSCOPE_OFFLINE", "1")
    with pytest.raises(PullError, match="MODELSCOPE_OFFLINE"):
        pull("modelscope:org/tiny-qwen", store=store)
    assert ms.log == []


def test_cli_pull_list_and_missing_repo(ms, store):
    app = typer.Typer(no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False)
    store_cli.register(app)
    runner = CliRunner()
    r = runner.invoke(app, ["pull", "modelscope:org/tiny-qwen", "--name", "tiny:ms"])
    assert r.exit_code == 0, r.stderr
    assert "pulled tiny:ms: 7 files" in " ".join(r.stdout.split())
    assert "Downloading" not in r.stderr                     # the client's own bars and log lines stay quiet
    assert "tiny:ms" in runner.invoke(app, ["list"]).stdout
    r = runner.invoke(app, ["pull", "modelscope:org/nope"])
    err = " ".join(r.stderr.split())
    assert r.exit_code == 1 and err.count("error:") == 1 and "error: modelscope:org/nope: no such repository" in err
    assert "Traceback" not in r.stdout + r.stderr
