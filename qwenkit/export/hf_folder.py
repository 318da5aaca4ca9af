"""Write a Hugging Face model folder (safetensors shards, config.json, tokenizer, generation config) that
transformers and qwenkit both load."""
import json
import shutil
from math import prod
from pathlib import Path

import torch
from safetensors.torch import save_file

from qwenkit.export.hf_config import hf_config
from qwenkit.export.source import MergedSource
from qwenkit.loading.gguf_file import read_gguf
from qwenkit.tokenizer.gguf_vocab import read_gguf_fields

DTYPES = {"bf16": torch.bfloat16, "f16": torch.float16, "f32": torch.float32}
SHARD_BYTES = 4 << 30
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "added_tokens.json",
                   "vocab.json", "merges.txt", "chat_template.jinja", "chat_template.json")


def write_hf_folder(source: MergedSource, folder: Path, dtype: str, shard_bytes: int | None = None) -> None:
    write_weights(source, folder, DTYPES[dtype], shard_bytes or SHARD_BYTES)
    bos, eos = write_tokenizer(source, folder)
    write_json(folder / "config.json", hf_config(source.checkpoint.config, dtype, bos, eos))


def write_weights(source: MergedSource, folder: Path, dtype: torch.dtype, shard_bytes: int) -> None:
    """Shards of at most shard_bytes, each written as soon as it is full; one file when it all fits."""
    shards, shard, size = [], {}, 0
    for name in source.shapes:
        t = source.tensor(name).to(dtype).contiguous()
        if shard and size + t.nbytes > shard_bytes:
            shards.append(_save(shard, folder, len(shards)))
            shard, size = {}, 0
        shard[name], size = t, size + t.nbytes
    shards.append(_save(shard, folder, len(shards)))
    if len(shards) == 1:
        (folder / shards[0][0]).rename(folder / "model.safetensors")
        return
    weight_map = {}
    for i, (file, names) in enumerate(shards):
        final = f"model-{i + 1:05d}-of-{len(shards):05d}.safetensors"
        (folder / file).rename(folder / final)
        weight_map |= dict.fromkeys(names, final)
    total = sum(prod(source.shapes[n]) * dtype.itemsize for n in weight_map)
    write_json(folder / "model.safetensors.index.json", {"metadata": {"total_size": total}, "weight_map": weight_map})


def _save(tensors: dict[str, torch.Tensor], folder: Path, index: int) -> tuple[str, list[str]]:
    file = f"shard-{index}.safetensors"
    save_file(tensors, folder / file, metadata={"format": "pt"})
    return file, list(tensors)


def write_tokenizer(source: MergedSource, folder: Path) -> tuple[int | None, int | list[int] | None]:
    """Copy the tokenizer files of an HF folder, or rebuild them from a GGUF's metadata; returns (bos, eos ids)
    for config.json."""
    ck = source.checkpoint
    eos = list(ck.generation.eos_token_ids)
    tokenizer = ck.tokenizer
    bos = tokenizer.bos_token_id
    if ck.format == "hf":
        for name in TOKENIZER_FILES:
            if (ck.path / name).is_file():
                shutil.copy2(ck.path / name, folder / name)
        if (ck.path / "additional_chat_templates").is_dir():
            shutil.copytree(ck.path / "additional_chat_templates", folder / "additional_chat_templates")
    else:
        _, fields = read_gguf(ck.path)
        parts = read_gguf_fields(fields, str(ck.path))
        (folder / "tokenizer.json").write_text(parts.backend.to_str(pretty=True), encoding="utf-8")
        templates = [{"name": "default", "template": parts.chat_template}] if parts.chat_template else []
        templates += [{"name": k, "template": v} for k, v in parts.named_templates.items()]
        pad = fields.get("tokenizer.ggml.padding_token_id")
        config = {
            "tokenizer_class": "PreTrainedTokenizerFast",
            "bos_token": parts.bos_token,
            "eos_token": parts.eos_tokens[0] if parts.eos_tokens else None,
            "pad_token": tokenizer.id_to_token(pad) if pad is not None else None,
            "add_bos_token": parts.add_bos,
            "clean_up_tokenization_spaces": False,
            "model_max_length": ck.config.max_position_embeddings,
            "chat_template": templates[0]["template"] if len(templates) == 1 else templates or None,
        }
        write_json(folder / "tokenizer_config.json", config)
    if ck.format == "hf" and (ck.path / "generation_config.json").is_file():
        shutil.copy2(ck.path / "generation_config.json", folder / "generation_config.json")
    else:
        write_json(folder / "generation_config.json", generation_config(source, bos, eos))
    if ck.format == "hf":  # keep what the original config.json said
        original = json.loads((ck.path / "config.json").read_text(encoding="utf-8"))
        bos, eos = original.get("bos_token_id", bos), original.get("eos_token_id", eos)
    return bos, eos


def generation_config(source: MergedSource, bos: int | None, eos: list[int]) -> dict:
    g = source.checkpoint.generation
    sampling = {k: getattr(g, k) for k in ("temperature", "top_p", "top_k", "min_p", "repetition_penalty",
                                           "presence_penalty") if getattr(g, k) is not None}
    config = {"bos_token_id": bos, "eos_token_id": eos[0] if len(eos) == 1 else eos}
    if sampling:
        config |= {"do_sample": bool(sampling.get("temperature", 1.0)), **sampling}
    return config


def write_json(path: Path, obj: dict) -> None:
    path.write_text(json.dumps(obj, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
