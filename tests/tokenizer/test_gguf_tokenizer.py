"""Tokenizers built from GGUF metadata: SmolLM2 against transformers' GGUF loader, metadata, bad fields."""
import logging

import pytest
from tokenizers import pre_tokenizers

from qwenkit.errors import ModelLoadError
from qwenkit.tokenizer import Tokenizer

TEXTS = [
    "Hello world", "12345 and 3.14159, 1,000,000 or 007", " 1 2 3 42", "héllo wörld ñ Æ œ ß",
    "e\u0301 combining",
    "中文测试 日本語 한국어 Ελληνικά русский", "emoji 😀👍🏽🦙 family 👨‍👩‍👧 flags 🇫🇷", "\u00a0nbsp\u3000ideographic",
    "def f(x):\n    return x**2  # comment\n", "for (int i = 0; i < n; ++i) { a[i] = b[i] * 2; }",
    "  leading spaces\t\ttabs\n\n\nnewlines   ", "   ", "", "\r\n\r\n", "x" * 50,
    "I've been 'told' he's there, 'RE you sure?", "<|im_start|>user\nhi<|im_end|>\n", "a<|endoftext|>b",
    "<repo_name>qwenkit<file_sep>tokenizer.py", "<|im_start|><|im_start|>", "<|im_start", "<|im_end|>text",
]
# transformers 5.24 builds SmolLM2's GGUF tokenizer without HF's Digits(individual_digits=True) step (its
# "smollm" pre-tokenizer is not mapped), so whitespace runs before digits split differently there:
# "a  1" gives [a, Ġ, Ġ, 1] in transformers, [a, ĠĠ, 1] in the original tokenizer.json and in llama.cpp.
SPACES_BEFORE_DIGITS = ["a  1", "x   42", "total:  100", "\n  7", "1  2  3"]


@pytest.fixture(scope="module")
def smollm2(smollm2_fields, smollm2_gguf):
    return Tokenizer.from_gguf_fields(smollm2_fields, str(smollm2_gguf))


@pytest.fixture(scope="module")
def smollm2_hf(smollm2_gguf):
    import transformers
    return transformers.AutoTokenizer.from_pretrained(smollm2_gguf.parent, gguf_file=smollm2_gguf.name)


def test_smollm2_matches_transformers(smollm2, smollm2_hf):
    for text in TEXTS:
        ids = smollm2.encode(text, allow_special=True)
        assert ids == smollm2_hf.encode(text, add_special_tokens=False), repr(text)
        plain = smollm2_hf.encode(text, add_special_tokens=False, split_special_tokens=True)
        assert smollm2.encode(text) == plain, repr(text)
        assert smollm2.decode(ids, skip_special_tokens=False) == smollm2_hf.decode(ids)
        assert smollm2.decode(ids) == smollm2_hf.decode(ids, skip_special_tokens=True)


def test_smollm2_digits_split_like_the_original(smollm2, smollm2_hf):
    original = pre_tokenizers.Sequence([pre_tokenizers.Digits(individual_digits=True),
                                        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)])
    smollm2_hf.backend_tokenizer.pre_tokenizer = original
    for text in SPACES_BEFORE_DIGITS + TEXTS:
        assert smollm2.encode(text, allow_special=True) == smollm2_hf.encode(text, add_special_tokens=False)
    assert [smollm2.id_to_token(i) for i in smollm2.encode("a  1")] == ["a", "ĠĠ", "1"]


def test_smollm2_metadata(smollm2, smollm2_fields):
    assert len(smollm2) == 49152
    assert smollm2.bos_token_id == 1 and smollm2.add_bos is False
    assert smollm2.eos_token_ids == [2, 0]
    assert len(smollm2.special_tokens) == 17 and smollm2.special_tokens["<|im_end|>"] == 2
    assert smollm2.chat_template == smollm2_fields["tokenizer.chat_template"]
    assert smollm2.render_chat([{"role": "user", "content": "Hi"}]).startswith("<|im_start|>system\n")


def test_qwen2_gguf_metadata(qwen2_gguf_fields):
    tok = Tokenizer.from_gguf_fields(qwen2_gguf_fields, "qwen2.gguf")
    assert len(tok) == 151936 and tok.eos_token_ids == [151643, 151645]
    assert set(tok.special_tokens) == {"<|endoftext|>", "<|im_start|>", "<|im_end|>"}
    assert tok.added_tokens["[PAD151646]"] == 151646 and "[PAD151646]" not in tok.special_tokens
    assert tok.encode("x[PAD151700]") == [87, 151700]   # user-defined: matched whole, as llama.cpp does


def tiny_fields(**changes) -> dict:
    tokens = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<think>", "a", "b", "ab", "Ġ", "Ġab"]
    fields = {"tokenizer.ggml.model": "gpt2", "tokenizer.ggml.pre": "qwen2", "tokenizer.ggml.tokens": tokens,
              "tokenizer.ggml.token_type": [3, 3, 3, 4, 1, 1, 1, 1, 1],
              "tokenizer.ggml.merges": ["a b", "Ġ ab"], "tokenizer.ggml.eos_token_id": 2,
              "tokenizer.chat_template": "{{ messages[0].content }}"}
    fields.update(changes)
    return {k: v for k, v in fields.items() if v is not None}


def test_tiny_vocabulary():
    tok = Tokenizer.from_gguf_fields(tiny_fields(), "tiny.gguf")
    assert tok.encode("ab ab") == [6, 8]
    assert tok.encode("ab<think>b<|im_end|>", allow_special=True) == [6, 3, 5, 2]
    assert tok.encode("<think>", allow_special=False) == [3]           # user-defined, not special
    assert tok.encode("<|im_end|>", allow_special=True) == [2]
    assert tok.eos_token_ids == [2, 0]
    assert tok.decode([6, 3, 2]) == "ab<think>"
    assert tok.decode([6, 2], skip_special_tokens=False) == "ab<|im_end|>"


@pytest.mark.parametrize("field", ["tokenizer.ggml.model", "tokenizer.ggml.tokens", "tokenizer.ggml.merges"])
def test_missing_field_is_named(field):
    with pytest.raises(ModelLoadError, match=field.replace(".", r"\.")) as e:
        Tokenizer.from_gguf_fields(tiny_fields(**{field: None}), "tiny.gguf")
    assert e.value.source == "tiny.gguf" and "convert_hf_to_gguf" in e.value.hint


def test_bad_fields_are_named():
    with pytest.raises(ModelLoadError, match="token_type has 2 entries"):
        Tokenizer.from_gguf_fields(tiny_fields(**{"tokenizer.ggml.token_type": [1, 1]}), "tiny.gguf")
    with pytest.raises(ModelLoadError, match=r"eos_token_id = 99"):
        Tokenizer.from_gguf_fields(tiny_fields(**{"tokenizer.ggml.eos_token_id": 99}), "tiny.gguf")
    with pytest.raises(ModelLoadError, match=r"merges\[1\]"):
        Tokenizer.from_gguf_fields(tiny_fields(**{"tokenizer.ggml.merges": ["a b", "ab"]}), "tiny.gguf")


def test_sentencepiece_is_refused_clearly():
    with pytest.raises(ModelLoadError, match="SentencePiece") as e:
        Tokenizer.from_gguf_fields(tiny_fields(**{"tokenizer.ggml.model": "llama"}), "llama2.gguf")
    assert "Hugging Face checkpoint folder" in e.value.hint


def test_unknown_pre_tokenizer_warns(caplog):
    with caplog.at_level(logging.WARNING):
        tok = Tokenizer.from_gguf_fields(tiny_fields(**{"tokenizer.ggml.pre": "mystery"}), "odd.gguf")
    assert "mystery" in caplog.text and "odd.gguf" in caplog.text
    assert tok.encode("ab ab") == [6, 8]


def test_template_syntax_error_names_the_field():
    with pytest.raises(ModelLoadError, match="line 1") as e:
        Tokenizer.from_gguf_fields(tiny_fields(**{"tokenizer.chat_template": "{% for m in x %}"}), "t.gguf")
    assert e.value.source == "t.gguf (tokenizer.chat_template)"
