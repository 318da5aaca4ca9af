import pytest

from qwenkit.errors import QwenkitError
from qwenkit.store.errors import InvalidNameError
from qwenkit.store.manifest import Manifest, safe_relpath
from qwenkit.store.names import ModelName, parse_name
from qwenkit.store.sources import default_name, parse_source


@pytest.mark.parametrize("ref, expected", [
    ("qwen3", ModelName("qwen3", "latest")),
    ("qwen3:0.6b", ModelName("qwen3", "0.6b")),
    ("Qwen2.5:1.5B-Q4_K_M", ModelName("qwen2.5", "1.5b-q4_k_m")),
    ("my_model:v1", ModelName("my_model", "v1")),
])
def test_valid_names(ref, expected):
    assert parse_name(ref) == expected


@pytest.mark.parametrize("ref", ["", "   ", "../x", "..", ".", "a/b", "a\\b", "/etc/passwd", "x:../y", "x:",
                                 ":tag", "a..b", "-x", "x:-y", "a b", "a:b:c", "ü", "x" * 65,
                                 "qwen3:" + "t" * 65, "name\0", "a:b/c"])
def test_invalid_names(ref):
    with pytest.raises(InvalidNameError) as e:
        parse_name(ref)
    assert isinstance(e.value, QwenkitError) and "invalid model name" in str(e.value)


@pytest.mark.parametrize("path", ["../x", "/abs", "a/../../b", "", "a//b", "./a"])
def test_manifest_file_paths_cannot_escape(path):
    with pytest.raises(ValueError):
        safe_relpath(path)


def test_tampered_manifest_is_rejected(store):
    d = {"name": "x:latest", "format": "hf", "files": [{"path": "../../evil", "sha256": "0" * 64, "size": 1}]}
    with pytest.raises(QwenkitError, match="damaged manifest"):
        Manifest.from_dict(d)


def test_hub_refs_get_store_names():
    assert str(default_name("Qwen/Qwen3-0.6B-GGUF", "Qwen3-0.6B-Q8_0.gguf")) == "qwen3-0.6b-gguf:q8_0"
    shard = "qwen2.5-7b-instruct-q4_k_m-00001-of-00002.gguf"
    assert str(default_name("Qwen/Qwen2.5-7B-Instruct-GGUF", shard)) == "qwen2.5-7b-instruct-gguf:q4_k_m"
    assert str(parse_source("hf:Qwen/Qwen3-0.6B").name) == "qwen3-0.6b:latest"
    assert parse_source("hf:org/r:tiny-f16-00001-of-00002.gguf").patterns == ("tiny-f16-*-of-*.gguf",)
    with pytest.raises(QwenkitError, match="ORG/REPO"):
        parse_source("hf:../../etc")
    with pytest.raises(QwenkitError):
        parse_source("hf:org/repo", name="../x")
