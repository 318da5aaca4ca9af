"""Bad GGUF files fail with a ModelLoadError that names the file and what is wrong."""
import pytest
import torch
import transformers
from gguf import GGUFReader

from qwenkit.errors import ModelLoadError
from qwenkit.loading.gguf import load_gguf
from tests import gguf_writer as gw


@pytest.fixture(scope="module")
def tiny():
    torch.manual_seed(0)
    cfg = gw.tiny_hf_config("qwen3", hidden_size=64, intermediate_size=128, num_hidden_layers=2, head_dim=16)
    return cfg, transformers.AutoModelForCausalLM.from_config(cfg).state_dict()


@pytest.fixture
def write(tiny, tmp_path):
    def write(state_dict=None, metadata=None, quant="Q8_0"):
        cfg, sd = tiny
        return gw.write_gguf(tmp_path / "model.gguf", cfg, sd if state_dict is None else state_dict,
                             gw.tiny_tokenizer_fields(), quant, metadata)
    return write


def load_error(path) -> ModelLoadError:
    with pytest.raises(ModelLoadError) as info:
        load_gguf(path)
    assert str(path) in str(info.value)
    return info.value


def test_valid_file_loads(write):
    assert load_gguf(write()).config.architecture == "qwen3"


def test_bad_magic(write):
    path = write()
    data = bytearray(path.read_bytes())
    data[:4] = b"GGML"
    path.write_bytes(bytes(data))
    assert "not a GGUF file" in load_error(path).problem


def test_empty_and_missing_file(tmp_path):
    (tmp_path / "empty.gguf").write_bytes(b"")
    assert "empty" in load_error(tmp_path / "empty.gguf").problem
    assert "no such file" in load_error(tmp_path / "absent.gguf").problem


@pytest.mark.parametrize("keep", [6, 24, 200, 3000, "half", "all but one byte"])
def test_truncated_file(write, keep):
    path = write()
    data = path.read_bytes()
    path.write_bytes(data[:{"half": len(data) // 2, "all but one byte": len(data) - 1}.get(keep, keep)])
    error = load_error(path)
    assert "truncated or corrupt" in error.problem and "bytes" in error.hint


def test_unknown_architecture(write):
    error = load_error(write(metadata={"general.architecture": "mamba"}))
    assert "unsupported architecture 'mamba'" in error.problem and "qwen3moe" in error.hint


def test_missing_metadata_key(write):
    error = load_error(write(metadata={"qwen3.block_count": None}))
    assert "missing metadata key 'qwen3.block_count'" in error.problem


def test_missing_tensor(tiny, write):
    sd = {k: v for k, v in tiny[1].items() if k != "model.layers.1.mlp.up_proj.weight"}
    assert "required tensor 'blk.1.ffn_up.weight' is missing" in load_error(write(sd)).problem


def test_wrong_shape(tiny, write):
    sd = dict(tiny[1]) | {"model.layers.0.self_attn.v_proj.weight": torch.zeros(48, 64)}
    error = load_error(write(sd))
    assert "tensor 'blk.0.attn_v.weight' has shape [48, 64], expected [32, 64]" in error.problem


@pytest.mark.parametrize(("type_id", "name"), [(9, "Q8_1"), (24, "I8")])  # gguf-py reads, cannot dequantize
def test_type_gguf_py_cannot_dequantize(write, type_id, name):
    error = load_error(set_type_id(write(), "token_embd.weight", type_id))
    assert f"tensor 'token_embd.weight' has type {name}, which gguf-py cannot dequantize" in error.problem


def test_invalid_type_id(write):
    path = set_type_id(write(), "blk.0.attn_q.weight", 99)
    assert "unknown type id 99" in load_error(path).problem


def set_type_id(path, name: str, type_id: int):
    reader = GGUFReader(path, mode="r+")
    info = next(t for t in reader.tensors if t.name == name).field
    info.parts[4][0] = type_id  # parts: name length, name, n_dims, dims, type, offset
    reader.data.flush()
    del reader
    return path
