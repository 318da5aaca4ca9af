"""Tokenizer metadata for GGUF (`tokenizer.ggml.*`, `tokenizer.chat_template`) as llama.cpp's converter
writes it: a byte-level BPE ("gpt2") vocabulary padded to the embedding rows, token types, merges, special ids."""
import json
from pathlib import Path

from gguf import GGUFReader, GGUFValueType, GGUFWriter

from qwenkit.errors import ModelLoadError
from qwenkit.tokenizer.hf_folder import read_hf_folder, read_json, token_name
from qwenkit.tokenizer.pretokenizers import for_pre

NORMAL, CONTROL, USER_DEFINED, UNUSED = 1, 3, 4, 5
PRE_NAMES = ("qwen2", "llama-bpe", "smollm", "gpt-2")
PROBE = "Hello World! I'm 1234567 years old...\n\n\t  don't\r\n STOP 3.14159 café ÅÄÖ 東京 🙂 a\u0301 ''''"
EOT_TOKENS = ("<|im_end|>", "<|eot_id|>")


def copy_vocab(writer: GGUFWriter, reader: GGUFReader) -> None:
    """A GGUF source keeps its tokenizer exactly: every `tokenizer.*` key with its stored type."""
    for key, field in reader.fields.items():
        if key.startswith("tokenizer."):
            sub = field.types[-1] if field.types[0] == GGUFValueType.ARRAY else None
            writer.add_key_value(key, field.contents(), field.types[0], sub_type=sub)


def write_hf_vocab(writer: GGUFWriter, folder: Path, rows: int, eos_ids: list[int]) -> None:
    parts = read_hf_folder(folder)
    backend = parts.backend
    saved = json.loads(backend.to_str())
    model = saved["model"]
    if model.get("type") != "BPE" or "ByteLevel" not in json.dumps(saved["pre_tokenizer"]):
        raise ModelLoadError(folder / "tokenizer.json", "not a byte-level BPE tokenizer",
                             "qwenkit writes only byte-level BPE ('gpt2') vocabularies into GGUF")
    vocab = {i: t for t, i in backend.get_vocab(with_added_tokens=True).items()}
    if max(vocab) >= rows:
        raise ModelLoadError(folder / "tokenizer.json", f"token id {max(vocab)} has no embedding row (the model "
                             f"has {rows})", "the tokenizer does not belong to these weights")
    added = backend.get_added_tokens_decoder()
    tokens = [vocab.get(i, f"[PAD{i}]") for i in range(rows)]
    types = [_token_type(i, vocab, added) for i in range(rows)]
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre(detect_pre(backend, folder))
    writer.add_token_list(tokens)
    writer.add_token_types(types)
    writer.add_token_merges([m if isinstance(m, str) else " ".join(m) for m in model["merges"]])
    config = read_json(folder / "tokenizer_config.json") if (folder / "tokenizer_config.json").is_file() else {}
    eos = _id(backend, parts.eos_tokens[0] if parts.eos_tokens else None)
    ids = {"bos_token_id": _id(backend, parts.bos_token), "eos_token_id": eos if eos is not None else
           next(iter(eos_ids), None), "padding_token_id": _id(backend, token_name(config.get("pad_token"))),
           "eot_token_id": next((i for t in EOT_TOKENS if (i := backend.token_to_id(t)) is not None), None)}
    for key, i in ids.items():
        if i is not None:
            writer.add_uint32(f"tokenizer.ggml.{key}", i)
    writer.add_add_bos_token(parts.add_bos)
    templates = [{"name": "default", "template": parts.chat_template}] if parts.chat_template else []
    templates += [{"name": k, "template": v} for k, v in parts.named_templates.items()]
    if templates:
        writer.add_chat_template(templates)


def detect_pre(backend, folder: Path) -> str:
    """llama.cpp's name for how this tokenizer splits text, found by splitting a probe both ways."""
    expected = _split(backend.normalizer, backend.pre_tokenizer)
    for name in PRE_NAMES:
        if _split(*for_pre(name, str(folder))) == expected:
            return name
    raise ModelLoadError(folder / "tokenizer.json", "its pre-tokenizer matches none llama.cpp knows "
                         f"({', '.join(PRE_NAMES)})", "export the model with llama.cpp's convert_hf_to_gguf.py")


def _split(normalizer, pre_tokenizer) -> list[str]:
    text = normalizer.normalize_str(PROBE) if normalizer is not None else PROBE
    return [piece for piece, _ in pre_tokenizer.pre_tokenize_str(text)]


def _token_type(i: int, vocab: dict[int, str], added: dict) -> int:
    if i not in vocab:
        return UNUSED
    if i in added:
        return CONTROL if added[i].special else USER_DEFINED
    return NORMAL


def _id(backend, token: str | None) -> int | None:
    return backend.token_to_id(token) if token else None
