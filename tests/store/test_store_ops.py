"""import / create / list / describe / rm / verify / prune round trips, sharing and corruption."""
import os

import pytest

from qwenkit.errors import InvalidRequestError
from qwenkit.store import describe, resolve
from qwenkit.store.blobs import stored_blobs
from qwenkit.store.create import create_model, parse_params
from qwenkit.store.errors import CorruptBlobError, ModelNotFoundError, StoreError
from qwenkit.store.gc import prune, remove
from qwenkit.store.importer import import_model
from qwenkit.store.listing import list_models
from qwenkit.store.verify import verify
from tests.store import tiny


@pytest.fixture
def folder(tmp_path, hf_files):
    visible = {k: v for k, v in hf_files.items() if not k.startswith(".")}
    return tiny.write_folder(tmp_path / "tiny-qwen", visible)


@pytest.fixture
def gguf(tmp_path, gguf_files):
    path = tmp_path / "tiny-q8_0.gguf"
    path.write_bytes(gguf_files["tiny-q8_0.gguf"])
    return path


def flip_a_byte(path):
    os.chmod(path, 0o644)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


def test_import_folder_and_gguf(store, folder, gguf, hf_files):
    m = import_model(folder, "tiny:hf", store=store)
    assert (m.format, m.architecture, m.quant) == ("hf", "qwen3", "bf16")
    assert "model.safetensors" in {f.path for f in m.files}
    r = resolve("tiny:hf", store)
    assert (r.path / "model.safetensors").read_bytes() == hf_files["model.safetensors"]
    assert (r.path / "model.safetensors").stat().st_ino == store.blob(
        next(f.sha256 for f in m.files if f.path == "model.safetensors")).stat().st_ino

    g = import_model(gguf, "tiny:q8_0", store=store)
    assert (g.format, g.quant) == ("gguf", "q8_0")
    assert resolve("tiny:q8_0", store).path.read_bytes() == gguf.read_bytes()
    assert [x.name for x in list_models(store)][:2] == ["tiny:hf", "tiny:q8_0"]


def test_import_link_shares_the_inode(store, gguf):
    m = import_model(gguf, "tiny:linked", link=True, store=store)
    assert store.blob(m.files[0].sha256).stat().st_ino == gguf.stat().st_ino


def test_two_tags_share_blobs(store, folder):
    import_model(folder, "a", store=store)
    before = stored_blobs(store)
    import_model(folder, "b:v2", store=store)
    assert stored_blobs(store) == before


def test_create_derived_model(store, folder, tmp_path):
    import_model(folder, "tiny", store=store)
    adapter = tiny.write_adapter(tmp_path / "lora")
    params = parse_params(["temperature=0.2", "top_k=5", "stop=<|im_end|>", "stop=END", "think=false"])
    m = create_model("pirate", "tiny", adapter=adapter, system="Talk like a pirate.", params=params,
                     store=store)
    assert m.base == "tiny:latest"
    r = resolve("pirate", store)
    assert r.system == "Talk like a pirate."
    assert r.params == {"temperature": 0.2, "top_k": 5, "stop": ["<|im_end|>", "END"], "think": False}
    assert (r.adapter / "adapter_config.json").is_file() and (r.path / "config.json").is_file()

    child = create_model("pirate:cold", "pirate", params={"temperature": 0.0}, store=store)
    assert child.system == "Talk like a pirate." and child.params["temperature"] == 0.0 and child.adapter
    d = describe("pirate:cold", store)
    assert d["base"] == "pirate:latest" and d["params"]["top_k"] == 5 and d["id"] == child.digest[:12]


def test_create_from_paths_and_builtin(store, gguf):
    m = create_model("terse", str(gguf), system="Be brief.", store=store)
    assert m.format == "gguf" and resolve("terse", store).path.name == "tiny-q8_0.gguf"
    s = create_model("smol", "smollm2:135m", params={"temperature": 0.1}, store=store)
    assert s.architecture == "llama" and resolve("smol", store).params == {"temperature": 0.1}


@pytest.mark.parametrize("bad", ["temperature", "temprature=1", "top_k=1.5", "think=maybe", "=3"])
def test_bad_params(bad):
    with pytest.raises(InvalidRequestError, match="--param"):
        parse_params([bad])


def test_create_errors(store, tmp_path, folder):
    with pytest.raises(ModelNotFoundError, match="qwenkit pull qwen3:0.6b"):
        create_model("x", "qwen3:0.6b", store=store)
    import_model(folder, "tiny", store=store)
    with pytest.raises(StoreError, match="adapter_config.json"):
        create_model("x", "tiny", adapter=tmp_path, store=store)
    with pytest.raises(StoreError, match="built-in"):
        create_model("smollm2", "tiny", store=store)


def test_rm_keeps_blobs_that_other_models_use(store, folder, tmp_path):
    import_model(folder, "tiny", store=store)
    create_model("pirate", "tiny", adapter=tiny.write_adapter(tmp_path / "lora"), store=store)
    base_blobs = set(stored_blobs(store))
    done = remove(["tiny"], store=store)
    assert done.removed == ["tiny:latest"] and done.blobs == 0
    assert not store.view(resolve_name("tiny")).exists()
    r = resolve("pirate", store)                     # still complete: it shares the base's blobs
    assert (r.path / "model.safetensors").is_file()
    assert base_blobs <= set(stored_blobs(store))

    done = remove(["pirate"], store=store)
    assert done.blobs == len(base_blobs) and stored_blobs(store) == {}
    assert list_models(store)[-1].name == "smollm2:135m"
    with pytest.raises(ModelNotFoundError):
        resolve("pirate", store)


def resolve_name(ref):
    from qwenkit.store.names import parse_name
    return parse_name(ref)


def test_rm_refuses_unknown_and_builtin(store):
    with pytest.raises(ModelNotFoundError, match="qwenkit list"):
        remove(["nope"], store=store)
    with pytest.raises(StoreError, match="pip uninstall"):
        remove(["smollm2:135m"], store=store)


def test_verify_reports_corrupt_and_missing_blobs_and_resolve_refuses(store, folder, gguf):
    m = import_model(folder, "tiny", store=store)
    g = import_model(gguf, "g", store=store)
    assert verify(store=store).problems == []
    weights = next(f for f in m.files if f.path == "model.safetensors")
    flip_a_byte(store.blob(weights.sha256))
    store.blob(g.files[0].sha256).unlink()

    report = verify(store=store)
    assert {(p.model, p.path, p.state) for p in report.problems} == {
        ("tiny:latest", "model.safetensors", "corrupt"), ("g:latest", "tiny-q8_0.gguf", "missing")}
    with pytest.raises(CorruptBlobError, match="corrupt"):
        resolve("tiny", store)
    with pytest.raises(CorruptBlobError, match="missing"):
        resolve("g", store)
    assert [p.state for p in verify("tiny", store=store).problems] == ["corrupt"]


def test_corruption_is_caught_without_running_verify(store, folder):
    m = import_model(folder, "tiny", store=store)
    resolve("tiny", store)
    weights = next(f for f in m.files if f.path == "model.safetensors")
    flip_a_byte(resolve("tiny", store).path / "model.safetensors")    # through the view's hard link
    with pytest.raises(CorruptBlobError):
        resolve("tiny", store)
    assert not store.stamp(weights.sha256).exists()


def test_reimport_repairs_a_corrupt_blob(store, folder):
    m = import_model(folder, "tiny", store=store)
    weights = next(f for f in m.files if f.path == "model.safetensors")
    flip_a_byte(store.blob(weights.sha256))
    import_model(folder, "tiny", store=store)
    assert resolve("tiny", store).path.is_dir() and verify(store=store).problems == []


def test_prune_removes_unused_blobs_partials_and_stale_views(store, folder):
    import_model(folder, "tiny", store=store)
    store.blob("a" * 64).write_bytes(b"orphan")
    (store.tmp / f"{'b' * 64}.partial").write_bytes(b"half a download")
    (store.models / "ghost" / "latest" / "model").mkdir(parents=True)
    assert prune(store=store, dry_run=True).blobs == 1 and store.blob("a" * 64).exists()
    done = prune(store=store)
    assert (done.blobs, done.partials) == (1, 1) and done.freed == len(b"orphan") + len(b"half a download")
    assert not store.blob("a" * 64).exists() and not (store.models / "ghost").exists()
    assert resolve("tiny", store).path.is_dir()


def test_damaged_manifest_stops_garbage_collection(store, folder):
    import_model(folder, "tiny", store=store)
    store.manifest(resolve_name("other")).parent.mkdir(parents=True)
    store.manifest(resolve_name("other")).write_text("{not json")
    with pytest.raises(StoreError, match="unreadable manifest"):
        prune(store=store)
    assert len(stored_blobs(store)) > 0
    remove(["other"], store=store)                   # the way out the message names
    assert prune(store=store).blobs == 0
