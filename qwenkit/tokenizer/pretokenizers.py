"""How byte-level BPE vocabularies split text before merging, by llama.cpp's `tokenizer.ggml.pre` name."""
import logging

from tokenizers import Regex, normalizers, pre_tokenizers

log = logging.getLogger(__name__)

QWEN2_SPLIT = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}"
    r"| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)
LLAMA3_SPLIT = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}"
    r"| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)
SPLITS = {"qwen2": QWEN2_SPLIT, "deepseek-r1-qwen": QWEN2_SPLIT, "llama-bpe": LLAMA3_SPLIT,
          "llama3": LLAMA3_SPLIT}
NFC = {"qwen2", "deepseek-r1-qwen"}
IGNORE_MERGES = {"llama-bpe", "llama3"}


def split_then_bytes(pattern: str) -> pre_tokenizers.PreTokenizer:
    return pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(pattern), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=False, use_regex=False),
    ])


def gpt2_bytes() -> pre_tokenizers.PreTokenizer:
    return pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=False, use_regex=True)


def for_pre(pre: str | None, source: str) -> tuple[normalizers.Normalizer | None,
                                                   pre_tokenizers.PreTokenizer]:
    """(normalizer, pre-tokenizer) for a `tokenizer.ggml.pre` value; unknown names fall back to GPT-2."""
    normalizer = normalizers.NFC() if pre in NFC else None
    if pre in SPLITS:
        return normalizer, split_then_bytes(SPLITS[pre])
    if pre == "smollm":
        return None, pre_tokenizers.Sequence([pre_tokenizers.Digits(individual_digits=True), gpt2_bytes()])
    if pre not in (None, "default", "gpt-2", "gpt2"):
        log.warning("%s: tokenizer.ggml.pre %r is not known to qwenkit; splitting text like GPT-2, "
                    "so some prompts may tokenize differently from llama.cpp", source, pre)
    return None, gpt2_bytes()
