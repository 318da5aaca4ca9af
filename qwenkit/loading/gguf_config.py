"""GGUF metadata (`{arch}.*` keys) -> ModelConfig."""
from collections.abc import Mapping
from typing import Any

from qwenkit.config import ModelConfig
from qwenkit.errors import ModelLoadError

ARCHITECTURES = {"qwen2": "qwen2", "qwen3": "qwen3", "qwen3moe": "qwen3_moe", "llama": "llama"}
RECONVERT = "re-convert the model with llama.cpp's convert_hf_to_gguf.py or download another GGUF"


def config_from_gguf(fields: Mapping[str, Any], shapes: Mapping[str, tuple[int, ...]],
                     source: str) -> ModelConfig:
    """`shapes`: GGUF name -> numpy shape; token_embd gives the vocab size, `output.weight` the tying."""
    arch = fields.get("general.architecture")
    if arch not in ARCHITECTURES:
        raise ModelLoadError(source, f"unsupported architecture {arch!r} (general.architecture)",
                             f"qwenkit runs GGUF architectures {', '.join(ARCHITECTURES)}")
    if "token_embd.weight" not in shapes:
        raise ModelLoadError(source, "required tensor 'token_embd.weight' is missing", RECONVERT)

    def need(key: str) -> Any:
        if f"{arch}.{key}" not in fields:
            raise ModelLoadError(source, f"missing metadata key '{arch}.{key}'", RECONVERT)
        return fields[f"{arch}.{key}"]

    name = ARCHITECTURES[arch]
    moe = name == "qwen3_moe"
    hidden, heads = need("embedding_length"), need("attention.head_count")
    ffn = fields.get(f"{arch}.feed_forward_length", 0) if moe else need("feed_forward_length")
    cfg = ModelConfig(
        architecture=name,
        vocab_size=shapes["token_embd.weight"][0],
        hidden_size=hidden,
        intermediate_size=ffn,
        num_hidden_layers=need("block_count"),
        num_attention_heads=heads,
        num_key_value_heads=fields.get(f"{arch}.attention.head_count_kv", heads),
        head_dim=fields.get(f"{arch}.attention.key_length") or hidden // heads,
        rms_norm_eps=need("attention.layer_norm_rms_epsilon"),
        rope_theta=float(fields.get(f"{arch}.rope.freq_base", 10000.0)),
        rope_scaling=_rope_scaling(fields, arch),
        max_position_embeddings=need("context_length"),
        tie_word_embeddings="output.weight" not in shapes,
        attention_bias=name == "qwen2" or "blk.0.attn_q.bias" in shapes,
        qk_norm=name in ("qwen3", "qwen3_moe"),
    )
    if moe:
        cfg.num_experts = need("expert_count")
        cfg.num_experts_per_tok = need("expert_used_count")
        cfg.moe_intermediate_size = need("expert_feed_forward_length")
        cfg.norm_topk_prob = True
    return cfg


def _rope_scaling(fields: Mapping[str, Any], arch: str) -> dict | None:
    kind = fields.get(f"{arch}.rope.scaling.type", "none")
    if kind == "none":
        return None
    scaling = {"rope_type": kind, "factor": float(fields.get(f"{arch}.rope.scaling.factor", 1.0))}
    if f"{arch}.rope.scaling.original_context_length" in fields:
        scaling["original_max_position_embeddings"] = fields[f"{arch}.rope.scaling.original_context_length"]
    return scaling
