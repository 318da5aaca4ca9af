"""Build a tokenizer from GGUF metadata (`tokenizer.ggml.*`), as llama.cpp's converter wrote it."""
import contextlib
import operator
from collections.abc import Mapping
from typing import Any

from tokenizers import AddedToken
from tokenizers import Tokenizer as Backend

from qwenkit.errors import ModelLoadError
from qwenkit.tokenizer.byte_level import byte_level_bpe
from qwenkit.tokenizer.parts import TokenizerParts

CONTROL, USER_DEFINED = 3, 4
BOS_BY_DEFAULT = {"llama-bpe", "llama3"}
RECONVERT = "convert the model again with llama.cpp's convert_hf_to_gguf.py, which embeds the tokenizer"


def required(fields: Mapping[str, Any], key: str, source: str) -> Any:
    if fields.get(key) is None:
        raise ModelLoadError(source, f"GGUF metadata has no {key}", RECONVERT)
    return fields[key]


def token_id(fields: Mapping[str, Any], key: str, tokens: list[str], source: str) -> int | None:
    value = fields.get(key)
    if value is None:
        return None
    with contextlib.suppress(TypeError):
        value = operator.index(value)
    if not isinstance(value, int) or not 0 <= value < len(tokens):
        raise ModelLoadError(source, f"{key} = {value!r} is not a token id below {len(tokens)}", RECONVERT)
    return value


def split_merges(merges: list[str], source: str) -> list[tuple[str, str]]:
    pairs = []
    for i, merge in enumerate(merges):
        left, space, right = merge.partition(" ")
        if not space or not left or not right:
            raise ModelLoadError(source, f"tokenizer.ggml.merges[{i}] = {merge!r} is not two tokens "
                                 "separated by a space", RECONVERT)
        pairs.append((left, right))
    return pairs


def check_model(model: Any, source: str) -> None:
    if model == "gpt2":
        return
    if model == "llama":
        raise ModelLoadError(source, "tokenizer.ggml.model is 'llama' (a SentencePiece vocabulary), which "
                             "qwenkit cannot read from GGUF yet", "load the Hugging Face checkpoint folder "
                             "of this model instead, or a GGUF with a byte-level BPE ('gpt2') tokenizer")
    raise ModelLoadError(source, f"tokenizer.ggml.model is {model!r}; qwenkit reads only byte-level BPE "
                         "('gpt2') vocabularies from GGUF",
                         "load the Hugging Face checkpoint folder of this model instead")


def add_marked_tokens(backend: Backend, tokens: list[str], types: list[int]) -> None:
    """Control tokens become special added tokens; user-defined ones (like <think>) plain added tokens.
    Both are matched whole in text, as llama.cpp does; they keep their ids, being in the vocabulary."""
    control = [t for t, ty in zip(tokens, types) if ty == CONTROL]
    user_defined = [t for t, ty in zip(tokens, types) if ty == USER_DEFINED]
    backend.add_special_tokens([AddedToken(t, normalized=False, special=True) for t in control])
    backend.add_tokens([AddedToken(t, normalized=False, special=False) for t in user_defined])


def read_gguf_fields(fields: Mapping[str, Any], source: str) -> TokenizerParts:
    check_model(required(fields, "tokenizer.ggml.model", source), source)
    tokens = list(required(fields, "tokenizer.ggml.tokens", source))
    types = fields.get("tokenizer.ggml.token_type")
    types = [1] * len(tokens) if types is None else list(types)
    if len(types) != len(tokens):
        raise ModelLoadError(source, f"tokenizer.ggml.token_type has {len(types)} entries but "
                             f"tokenizer.ggml.tokens has {len(tokens)}", RECONVERT)
    merges = split_merges(list(required(fields, "tokenizer.ggml.merges", source)), source)
    vocab: dict[str, int] = {}
    for i, token in enumerate(tokens):
        vocab.setdefault(token, i)
    backend = byte_level_bpe(vocab, merges, fields.get("tokenizer.ggml.pre"), source)
    add_marked_tokens(backend, tokens, types)
    bos = token_id(fields, "tokenizer.ggml.bos_token_id", tokens, source)
    eos = token_id(fields, "tokenizer.ggml.eos_token_id", tokens, source)
    extra = [token_id(fields, f"tokenizer.ggml.{k}_token_id", tokens, source) for k in ("eot", "eom")]
    named = {k.removeprefix("tokenizer.chat_template."): v for k, v in fields.items()
             if k.startswith("tokenizer.chat_template.") and isinstance(v, str)}
    template = fields.get("tokenizer.chat_template")
    add_bos = fields.get("tokenizer.ggml.add_bos_token", fields.get("tokenizer.ggml.pre") in BOS_BY_DEFAULT)
    return TokenizerParts(
        backend=backend, source=source, chat_template=template,
        template_source=f"{source} (tokenizer.chat_template)", named_templates=named,
        bos_token=tokens[bos] if bos is not None else None,
        eos_tokens=[tokens[eos]] if eos is not None else [],
        extra_eos_ids=[i for i in extra if i is not None],
        add_bos=bool(add_bos),
    )
