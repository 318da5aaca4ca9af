"""Byte-level BPE: GPT-2's byte alphabet and the `tokenizers` pipeline built around it."""
from functools import cache

from tokenizers import Tokenizer, decoders, models, processors

from qwenkit.tokenizer import pretokenizers


@cache
def bytes_to_unicode() -> dict[int, str]:
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1),
                 *range(ord("®"), ord("ÿ") + 1)]
    table = {b: chr(b) for b in printable}
    shifted = 256
    for b in range(256):
        if b not in table:
            table[b] = chr(shifted)
            shifted += 1
    return table


def spell(token: bytes) -> str:
    table = bytes_to_unicode()
    return "".join(table[b] for b in token)


def byte_level_bpe(vocab: dict[str, int], merges: list[tuple[str, str]], pre: str | None,
                   source: str) -> Tokenizer:
    """A BPE tokenizer over the byte alphabet, split the way `pre` (llama.cpp's name) says."""
    model = models.BPE(vocab=vocab, merges=merges, dropout=None, unk_token=None, continuing_subword_prefix="",
                       end_of_word_suffix="", fuse_unk=False, byte_fallback=False,
                       ignore_merges=pre in pretokenizers.IGNORE_MERGES)
    backend = Tokenizer(model)
    normalizer, pre_tokenizer = pretokenizers.for_pre(pre, source)
    if normalizer is not None:
        backend.normalizer = normalizer
    backend.pre_tokenizer = pre_tokenizer
    backend.decoder = decoders.ByteLevel(add_prefix_space=False, trim_offsets=False, use_regex=False)
    backend.post_processor = processors.ByteLevel(add_prefix_space=False, trim_offsets=False, use_regex=False)
    return backend
