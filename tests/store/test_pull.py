"""`pull` against a Hub look-alike on loopback (HF_ENDPOINT points at it)."""
import hashlib
import json
import shutil
from collections import namedtuple

import pytest

from qwenkit.store import catalog, resolve
from qwenkit.store.blobs import stored_blobs
from qwenkit.store.errors import DiskSpaceError, IntegrityError, PullError
from qwenkit.store.manifest import read_manifest
from qwenkit.store.names import parse_name
from qwenkit.store.pull import pull

WANTED = {"config.json", "generation_config.json", "tokenizer_config.json", "vocab.json", "merges.txt",
          "tokenizer.json", "model.safetensors"}


def test_fresh_pull_verifies_and_stores_every_file(hub, store, hf_files):
    m = pull("hf:org/tiny-qwen", store=store)
    assert m.name == "tiny-qwen:latest"
    assert (m.format, m.architecture, m.quant) == ("hf", "qwen3", "bf16")
    assert m.source == f"hf:org/tiny-qwen@{hub.repos['org/tiny-qwen'].commit}"
    assert {f.path for f in m.files} == WANTED              # README and .gitattributes left out
    for f in m.files:
        assert f.sha256 == hashlib.sha256(hf_files[f.path]).hexdigest()
        assert store.blob(f.sha256).read_bytes() == hf_files[f.path]
    assert read_manifest(store, parse_name("tiny-qwen")) == m

    r = resolve("tiny-qwen", store)
    assert r.format == "hf" and r.path.is_dir()
    assert json.loads((r.path / "config.json").read_text())["model_type"] == "qwen3"
    assert (r.path / "model.safetensors").read_bytes() == hf_files["model.safetensors"]
    assert not list(store.tmp.glob("*.partial"))


def test_second_pull_skips_stored_lfs_files(hub, store):
    pull("hf:org/tiny-qwen", store=store)
    served = len(hub.served)
    pull("hf:org/tiny-qwen", store=store)
    again = {n for n, _ in hub.served[served:]}
    assert "model.safetensors" not in again and "tokenizer.json" not in again


def test_resume_after_connection_drops_midway(hub, store, hf_files):
    half = len(hf_files["model.safetensors"]) // 2
    hub.faults["model.safetensors"] = [("drop", half)]
    m = pull("hf:org/tiny-qwen", store=store)
    ranges = hub.downloads("model.safetensors")
    assert ranges[0] is None and ranges[1] is not None and ranges[1].startswith("bytes=")
    assert int(ranges[1].removeprefix("bytes=").split("-")[0]) > 0
    f = next(f for f in m.files if f.path == "model.safetensors")
    assert store.blob(f.sha256).read_bytes() == hf_files["model.safetensors"]


def test_interrupted_pull_resumes_on_the_next_run(hub, store, hf_files):
    data = hf_files["model.safetensors"]
    half = len(data) // 2
    hub.faults["model.safetensors"] = [("drop", half), 500]     # the retry inside the same run fails too
    with pytest.raises(PullError, match="resume"):
        pull("hf:org/tiny-qwen", store=store)
    sha = hashlib.sha256(data).hexdigest()
    partial = store.tmp / f"{sha}.partial"
    kept = partial.stat().st_size
    assert 0 < kept <= half and partial.read_bytes() == data[:kept]
    assert read_manifest(store, parse_name("tiny-qwen")) is None

    pull("hf:org/tiny-qwen", store=store)
    assert hub.downloads("model.safetensors")[-1] == f"bytes={kept}-"
    assert store.blob(sha).read_bytes() == data
    assert not partial.exists()


def test_sha256_mismatch_is_rejected(hub, store):
    hub.corrupt.add("model.safetensors")
    with pytest.raises(IntegrityError, match="does not match the hash"):
        pull("hf:org/tiny-qwen", store=store)
    assert read_manifest(store, parse_name("tiny-qwen")) is None
    corrupt_sha = hashlib.sha256(b"").hexdigest()
    assert all(sha != corrupt_sha for sha in stored_blobs(store))
    assert not list(store.tmp.glob("*.partial"))
    hub.corrupt.clear()
    assert pull("hf:org/tiny-qwen", store=store).name == "tiny-qwen:latest"


def test_hashes_from_the_resolve_headers_when_the_listing_lacks_them(hub, store, hf_files):
    hub.file_metadata = False            # X-Linked-Etag for LFS files, ETag (git blob id) for others
    m = pull("hf:org/tiny-qwen", store=store)
    assert {f.path: f.sha256 for f in m.files}["model.safetensors"] == \
        hashlib.sha256(hf_files["model.safetensors"]).hexdigest()
    assert sum(1 for method, _, _ in hub.log if method == "HEAD") == len(WANTED)
    hub.corrupt.add("config.json")
    with pytest.raises(IntegrityError, match="config.json"):
        pull("hf:org/tiny-qwen", store=store)


def test_git_blob_id_mismatch_is_rejected_for_small_files(hub, store):
    hub.corrupt.add("config.json")
    with pytest.raises(IntegrityError, match="config.json"):
        pull("hf:org/tiny-qwen", store=store)


def test_refuses_when_the_disk_is_too_small(hub, store, monkeypatch):
    Usage = namedtuple("Usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda path: Usage(10**9, 10**9 - 1000, 1000))
    with pytest.raises(DiskSpaceError, match="QWENKIT_HOME"):
        pull("hf:org/tiny-qwen", store=store)
    assert hub.served == []


def test_gguf_file_by_quant(hub, store, gguf_files):
    m = pull("hf:org/Tiny-GGUF:Q4_K_M", store=store)
    assert m.name == "tiny-gguf:q4_k_m"
    assert (m.format, m.architecture, m.quant) == ("gguf", "qwen3", "q4_k_m")
    assert [f.path for f in m.files] == ["tiny-q4_k_m.gguf"]
    r = resolve("tiny-gguf:q4_k_m", store)
    assert r.format == "gguf" and r.path.name == "tiny-q4_k_m.gguf"
    assert r.path.read_bytes() == gguf_files["tiny-q4_k_m.gguf"]


def test_split_gguf_pulls_every_shard_and_serves_the_first(hub, store):
    m = pull("hf:org/Tiny-GGUF:tiny-f16-00001-of-00002.gguf", store=store, name="tiny:f16")
    assert sorted(f.path for f in m.files) == ["tiny-f16-00001-of-00002.gguf", "tiny-f16-00002-of-00002.gguf"]
    assert resolve("tiny:f16", store).path.name == "tiny-f16-00001-of-00002.gguf"


def test_gguf_repo_without_a_file_asks_for_one(hub, store):
    with pytest.raises(PullError, match="pick one"):
        pull("hf:org/Tiny-GGUF", store=store)
    with pytest.raises(PullError, match="several GGUF models"):
        pull("hf:org/Tiny-GGUF:tiny", store=store)
    with pytest.raises(PullError, match="no file"):
        pull("hf:org/Tiny-GGUF:q2_k", store=store)


def test_catalog_name_pulls_the_official_repo(hub, store, monkeypatch):
    release = catalog.CATALOG["qwen3:0.6b"].release
    entry = catalog.CatalogEntry("qwen3:0.6b-q8_0", release, "org/Tiny-GGUF", ("tiny-q8_0*.gguf",), "gguf",
                                 "q8_0", 0.64)
    monkeypatch.setitem(catalog.CATALOG, "qwen3:0.6b-q8_0", entry)
    m = pull("qwen3:0.6b-q8_0", store=store)
    assert (m.name, m.quant, [f.path for f in m.files]) == ("qwen3:0.6b-q8_0", "q8_0", ["tiny-q8_0.gguf"])


def test_warns_before_pulling_a_model_that_will_not_fit(hub, store, monkeypatch):
    from qwenkit.store import advice
    from qwenkit.store.progress import Reporter
    monkeypatch.setattr(advice, "memory", lambda: (10**6, 10**6))
    monkeypatch.setattr(advice, "gpus", lambda: [])
    warnings = []

    class Collect(Reporter):
        def warn(self, message):
            warnings.append(message)
    pull("hf:org/tiny-qwen", store=store, reporter=Collect())
    assert len(warnings) == 1 and "will not fit" in warnings[0]


def test_reuses_huggingface_hub_cache(hub, store, hf_files, tmp_path):
    commit = hub.repos["org/tiny-qwen"].commit
    snap = tmp_path / "hf-cache" / "models--org--tiny-qwen" / "snapshots" / commit
    snap.mkdir(parents=True)
    (snap / "model.safetensors").write_bytes(hf_files["model.safetensors"])
    pull("hf:org/tiny-qwen", store=store)
    assert hub.downloads("model.safetensors") == []


def test_unknown_repo_and_offline_mode_are_clear_errors(hub, store, monkeypatch):
    with pytest.raises(PullError, match="no such repository"):
        pull("hf:org/nope", store=store)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(PullError, match="offline mode"):
        pull("hf:org/tiny-qwen", store=store)


def test_unreachable_endpoint_says_what_to_do(store, monkeypatch):
    import huggingface_hub.constants as constants
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")     # nothing listens on the discard port
    with pytest.raises(PullError, match="HF_ENDPOINT"):
        pull("hf:org/tiny-qwen", store=store)


def test_unknown_catalog_name(store):
    with pytest.raises(Exception, match="not in the catalog"):
        pull("qwen9:1b", store=store)


def test_modelscope_without_client_says_how_to_install(store, monkeypatch):
    import builtins
    real = builtins.__import__

    def fake_import(name, *args, **kwargs):
        if name == "modelscope":
            raise ImportError(name)
        return real(name, *args, **kwargs)
    monkeypatch.setattr(builtins, "__import__", fake_import)
    with pytest.raises(PullError, match="pip install modelscope"):
        pull("modelscope:Qwen/Qwen3-0.6B", store=store)
