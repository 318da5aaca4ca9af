"""ModelConfig -> the config.json transformers (4 and 5) and qwenkit read back to the same model."""
from qwenkit.config import ARCHITECTURES, ModelConfig

CLASS_NAMES = {arch: name for name, arch in ARCHITECTURES.items()}
DTYPE_NAMES = {"bf16": "bfloat16", "f16": "float16", "f32": "float32"}


def hf_config(cfg: ModelConfig, dtype: str, bos_token_id: int | None = None,
              eos_token_id: int | list[int] | None = None) -> dict:
    rope = {"rope_type": "default", **(cfg.rope_scaling or {}), "rope_theta": cfg.rope_theta}
    d = {
        "architectures": [CLASS_NAMES[cfg.architecture]],
        "model_type": cfg.architecture,
        "vocab_size": cfg.vocab_size,
        "hidden_size": cfg.hidden_size,
        "intermediate_size": cfg.intermediate_size,
        "num_hidden_layers": cfg.num_hidden_layers,
        "num_attention_heads": cfg.num_attention_heads,
        "num_key_value_heads": cfg.num_key_value_heads,
        "head_dim": cfg.head_dim,
        "hidden_act": "silu",
        "rms_norm_eps": cfg.rms_norm_eps,
        "max_position_embeddings": cfg.max_position_embeddings,
        "tie_word_embeddings": cfg.tie_word_embeddings,
        "attention_bias": cfg.attention_bias,
        "attention_dropout": 0.0,
        "initializer_range": 0.02,
        "rope_theta": cfg.rope_theta,        # transformers 4
        "rope_scaling": cfg.rope_scaling,    # transformers 4
        "rope_parameters": rope,             # transformers 5
        "bos_token_id": bos_token_id,
        "eos_token_id": eos_token_id,
        "use_cache": True,
        "torch_dtype": DTYPE_NAMES[dtype],
        "dtype": DTYPE_NAMES[dtype],
    }
    if cfg.architecture == "llama":
        d |= {"mlp_bias": False, "pretraining_tp": 1}
    else:
        d |= {"use_sliding_window": False, "sliding_window": None, "max_window_layers": cfg.num_hidden_layers}
    if cfg.architecture == "qwen3_moe":
        d |= {"num_experts": cfg.num_experts, "num_experts_per_tok": cfg.num_experts_per_tok,
              "moe_intermediate_size": cfg.moe_intermediate_size, "norm_topk_prob": cfg.norm_topk_prob,
              "decoder_sparse_step": cfg.decoder_sparse_step, "mlp_only_layers": list(cfg.mlp_only_layers),
              "output_router_logits": False, "router_aux_loss_coef": 0.001}
    return d
