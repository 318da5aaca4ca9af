"""Hugging Face tokenizer folders: what is read from them, parity with transformers, and broken files."""
import json
import shutil

import pytest
from tokenizers import processors

from qwenkit.errors import ModelLoadError
from qwenkit.tokenizer import Tokenizer
from qwenkit.tokenizer.qwen_vocab import build_qwen_tokenizer
from tests.tokenizer.test_gguf_tokenizer import TEXTS


def test_qwen3_folder(qwen_pair):
    tok, hf = qwen_pair("qwen3")
    assert len(tok) == len(hf) == 151669
    assert tok.eos_token_ids == [151645, 151643]
    assert tok.bos_token_id is None and tok.add_bos is False
    assert len(tok.special_tokens) == 14 and len(tok.added_tokens) == 26
    assert "<think>" in tok.added_tokens and "<think>" not in tok.special_tokens
    assert tok.token_to_id("Ġworld") == 1879 and tok.id_to_token(1879) == "Ġworld"
    assert tok.token_to_id("no such token") is None and tok.id_to_token(10**7) is None
    ids = tok.encode("<think>\nok\n</think>\n\nhi<|im_end|>", allow_special=True)
    assert tok.decode(ids) == "<think>\nok\n</think>\n\nhi"
    assert tok.decode(ids, skip_special_tokens=False).endswith("hi<|im_end|>")


@pytest.mark.parametrize("name", ["qwen2.5", "qwen3"])
def test_encoding_matches_transformers(qwen_pair, name):
    tok, hf = qwen_pair(name)
    for text in TEXTS + ["<tool_call>\n{\"a\": 1}\n</tool_call>", "<|fim_prefix|>x<|fim_suffix|>"]:
        ids = tok.encode(text, allow_special=True)
        assert ids == hf.encode(text, add_special_tokens=False), repr(text)
        assert tok.encode(text) == hf.encode(text, add_special_tokens=False, split_special_tokens=True)
        assert tok.decode(ids) == hf.decode(ids, skip_special_tokens=True)


def copy_folder(qwen_folder, tmp_path):
    for name in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copy(qwen_folder("qwen2.5") / name, tmp_path / name)
    return tmp_path


def test_generation_config_eos(qwen_folder, tmp_path):
    folder = copy_folder(qwen_folder, tmp_path)
    (folder / "generation_config.json").write_text(json.dumps({"eos_token_id": [151645, 151643, 151663]}))
    assert Tokenizer.from_hf_folder(folder).eos_token_ids == [151645, 151643, 151663]


def test_bos_from_post_processor(tmp_path):
    backend = build_qwen_tokenizer()
    backend.post_processor = processors.TemplateProcessing(single="<|endoftext|> $A",
                                                           special_tokens=[("<|endoftext|>", 151643)])
    backend.save(str(tmp_path / "tokenizer.json"))
    (tmp_path / "tokenizer_config.json").write_text(json.dumps({"bos_token": "<|endoftext|>"}))
    tok = Tokenizer.from_hf_folder(tmp_path)
    assert tok.add_bos and tok.bos_token_id == 151643
    assert tok.encode("hi") == [6023]
    assert tok.encode_chat([{"role": "user", "content": "hi"}])[:2] == [151643, 151644]


def test_missing_folder_or_tokenizer_json(tmp_path):
    with pytest.raises(ModelLoadError, match="is not a folder"):
        Tokenizer.from_hf_folder(tmp_path / "nope")
    with pytest.raises(ModelLoadError, match="tokenizer.json: is missing") as e:
        Tokenizer.from_hf_folder(tmp_path)
    assert e.value.source == str(tmp_path / "tokenizer.json")


def test_corrupt_tokenizer_json(qwen_folder, tmp_path):
    folder = copy_folder(qwen_folder, tmp_path)
    text = (folder / "tokenizer.json").read_text()
    (folder / "tokenizer.json").write_text(text[: len(text) // 2])
    with pytest.raises(ModelLoadError, match="could not be parsed") as e:
        Tokenizer.from_hf_folder(folder)
    assert e.value.source == str(folder / "tokenizer.json") and "re-download" in e.value.hint


def test_corrupt_tokenizer_config(qwen_folder, tmp_path):
    folder = copy_folder(qwen_folder, tmp_path)
    (folder / "tokenizer_config.json").write_text('{"eos_token": "<|im_end|>",')
    with pytest.raises(ModelLoadError, match="not valid JSON") as e:
        Tokenizer.from_hf_folder(folder)
    assert e.value.source == str(folder / "tokenizer_config.json")
