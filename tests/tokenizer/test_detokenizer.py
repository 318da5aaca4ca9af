"""Streaming decode equals the full decode, and never shows half a character."""
import json

import pytest
from tokenizers import AddedToken, decoders, models, pre_tokenizers, trainers
from tokenizers import Tokenizer as Backend

from qwenkit.tokenizer import Tokenizer
from qwenkit.tokenizer.byte_level import spell
from qwenkit.tokenizer.parts import TokenizerParts

TEXTS = [
    "Hello, world! How are you today?",
    "你好，世界！这是一个测试。今天天气很好，我们去公园散步吧。",
    "日本語のテキストと한국어 텍스트, and Ελληνικά.",
    "Emoji: 😀😃😄 👍🏽 👨‍👩‍👧‍👦 🏳️‍🌈 🦙🦙 🇯🇵",
    "Combining: e\u0301 a\u0308 n\u0303 \u0915\u094d\u0937 Z\u0351\u0352\u0353algo",
    "Rare CJK: 𠀀𠀁𪚥 𝔘𝔫𝔦𝔠𝔬𝔡𝔢 math 𝛼𝛽",
    "code:\n    def f(x):\n        return x  # ✓\n\n\n",
    "   leading and trailing spaces   ",
    "a genuine replacement char \ufffd in the text",
]


def stream(tok: Tokenizer, ids: list[int], skip_special_tokens: bool = True) -> list[str]:
    detok = tok.detokenizer(skip_special_tokens)
    return [detok.add(i) for i in ids] + [detok.flush()]


def check_stream(tok: Tokenizer, ids: list[int], skip_special_tokens: bool = True) -> list[str]:
    chunks = stream(tok, ids, skip_special_tokens)
    full = tok.decode(ids, skip_special_tokens)
    assert "".join(chunks) == full
    if "\ufffd" not in full:
        assert not any("\ufffd" in c for c in chunks), chunks
    return chunks


def sentencepiece_like() -> Tokenizer:
    """A Llama-style BPE: Metaspace with a prefix space, byte fallback, and a decoder that strips the
    first space, so decoding a window on its own differs from decoding it in context."""
    trainer = trainers.BpeTrainer(vocab_size=400, show_progress=False)
    trained = Backend(models.BPE())
    trained.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="first")
    trained.train_from_iterator([t for t in TEXTS if "\ufffd" not in t] * 3, trainer)
    vocab = trained.get_vocab()
    vocab.update({f"<0x{b:02X}>": len(vocab) + b for b in range(256)})
    merges = [tuple(m) for m in json.loads(trained.to_str())["model"]["merges"]]
    backend = Backend(models.BPE(vocab=vocab, merges=merges, byte_fallback=True))
    backend.pre_tokenizer = trained.pre_tokenizer
    backend.decoder = decoders.Sequence([decoders.Replace("▁", " "), decoders.ByteFallback(), decoders.Fuse(),
                                         decoders.Strip(" ", 1, 0)])
    backend.add_special_tokens([AddedToken("</s>", special=True)])
    return Tokenizer(TokenizerParts(backend, "toy"))


@pytest.fixture(scope="module", params=["qwen3", "smollm2", "sentencepiece"])
def tok(request, qwen_pair, smollm2_fields, smollm2_gguf):
    if request.param == "qwen3":
        return qwen_pair("qwen3")[0]
    if request.param == "smollm2":
        return Tokenizer.from_gguf_fields(smollm2_fields, str(smollm2_gguf))
    return sentencepiece_like()


@pytest.mark.parametrize("text", TEXTS)
def test_stream_equals_full_decode(tok, text):
    ids = tok.encode(text)
    chunks = check_stream(tok, ids)
    assert sum(1 for c in chunks if c) > 1 or len(ids) < 3


def test_special_tokens_in_the_stream(tok):
    end = tok.special_tokens.get("<|im_end|>", tok.special_tokens.get("</s>"))
    ids = tok.encode("答案是 42") + [end] + tok.encode(" 😀 after") + [end]
    check_stream(tok, ids, skip_special_tokens=True)
    check_stream(tok, ids, skip_special_tokens=False)


def test_sentencepiece_spaces_come_out_in_context():
    tok = sentencepiece_like()
    ids = tok.encode("Hello, world! How are you today?")
    word = next(i for i in ids[1:] if tok.id_to_token(i).startswith("▁"))
    assert not tok.decode([word]).startswith(" ")      # alone, a piece loses its space
    assert "".join(stream(tok, ids)) == "Hello, world! How are you today?"


def byte_ids(tok: Tokenizer, data: bytes) -> list[int]:
    return [tok.token_to_id(spell(bytes([b]))) for b in data]


def test_character_split_over_byte_tokens(qwen_pair):
    tok = qwen_pair("qwen3")[0]
    detok = tok.detokenizer()
    out = [detok.add(i) for i in tok.encode("ok ") + byte_ids(tok, "😀中".encode())]
    assert out[:2] == ["ok", " "] and out[2:5] == ["", "", ""] and out[5] == "😀"
    assert out[6:] == ["", "", "中"] and detok.flush() == ""


def test_broken_bytes_are_shown_only_once_they_cannot_complete(qwen_pair):
    tok = qwen_pair("qwen3")[0]
    ids = byte_ids(tok, b"\xe4\xb8") + tok.encode("a") + byte_ids(tok, b"\xf0\x9f")
    chunks = check_stream(tok, ids)
    assert chunks == ["", "", "\ufffda", "", "", "\ufffd"]   # the last is flush()
    assert tok.decode(ids) == "\ufffda\ufffd"
