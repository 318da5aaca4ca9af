"""llama.cpp tensor names -> Hugging Face names, and the tensor shapes a config implies."""
from qwenkit.config import ModelConfig

GLOBAL = {
    "token_embd.weight": "model.embed_tokens.weight",
    "output_norm.weight": "model.norm.weight",
    "output.weight": "lm_head.weight",
}
BLOCK = {
    "attn_norm.weight": "input_layernorm.weight",
    "ffn_norm.weight": "post_attention_layernorm.weight",
    "attn_q.weight": "self_attn.q_proj.weight",
    "attn_k.weight": "self_attn.k_proj.weight",
    "attn_v.weight": "self_attn.v_proj.weight",
    "attn_output.weight": "self_attn.o_proj.weight",
    "attn_q.bias": "self_attn.q_proj.bias",
    "attn_k.bias": "self_attn.k_proj.bias",
    "attn_v.bias": "self_attn.v_proj.bias",
    "attn_q_norm.weight": "self_attn.q_norm.weight",
    "attn_k_norm.weight": "self_attn.k_norm.weight",
    "ffn_gate.weight": "mlp.gate_proj.weight",
    "ffn_up.weight": "mlp.up_proj.weight",
    "ffn_down.weight": "mlp.down_proj.weight",
    "ffn_gate_inp.weight": "mlp.gate.weight",
}
EXPERTS = {"ffn_gate_exps.weight": "gate_proj", "ffn_up_exps.weight": "up_proj",
           "ffn_down_exps.weight": "down_proj"}


def hf_names(gguf_name: str, num_experts: int) -> list[tuple[str, int | None]]:
    """The HF tensors stored in one GGUF tensor; stacked experts give one (name, expert index) each."""
    if gguf_name in GLOBAL:
        return [(GLOBAL[gguf_name], None)]
    _, layer, suffix = gguf_name.split(".", 2)
    prefix = f"model.layers.{layer}."
    if suffix in EXPERTS:
        return [(f"{prefix}mlp.experts.{e}.{EXPERTS[suffix]}.weight", e) for e in range(num_experts)]
    return [(prefix + BLOCK[suffix], None)]


def expected_shapes(cfg: ModelConfig) -> dict[str, tuple[int, ...]]:
    """Every tensor the model needs, by GGUF name, in numpy (out, in) order."""
    h = cfg.hidden_size
    shapes = {"token_embd.weight": (cfg.vocab_size, h), "output_norm.weight": (h,)}
    if not cfg.tie_word_embeddings:
        shapes["output.weight"] = (cfg.vocab_size, h)
    for i in range(cfg.num_hidden_layers):
        shapes |= {f"blk.{i}.{name}": shape for name, shape in _block(cfg, i).items()}
    return shapes


def _block(cfg: ModelConfig, i: int) -> dict[str, tuple[int, ...]]:
    h, hd = cfg.hidden_size, cfg.head_dim
    q, kv = cfg.num_attention_heads * hd, cfg.num_key_value_heads * hd
    shapes = {"attn_norm.weight": (h,), "ffn_norm.weight": (h,), "attn_q.weight": (q, h),
              "attn_k.weight": (kv, h), "attn_v.weight": (kv, h), "attn_output.weight": (h, q)}
    if cfg.attention_bias:
        shapes |= {"attn_q.bias": (q,), "attn_k.bias": (kv,), "attn_v.bias": (kv,)}
    if cfg.qk_norm:
        shapes |= {"attn_q_norm.weight": (hd,), "attn_k_norm.weight": (hd,)}
    if cfg.is_moe_layer(i):
        e, f = cfg.num_experts, cfg.moe_intermediate_size
        shapes |= {"ffn_gate_inp.weight": (e, h), "ffn_gate_exps.weight": (e, f, h),
                   "ffn_up_exps.weight": (e, f, h), "ffn_down_exps.weight": (e, h, f)}
    else:
        f = cfg.intermediate_size
        shapes |= {"ffn_gate.weight": (f, h), "ffn_up.weight": (f, h), "ffn_down.weight": (h, f)}
    return shapes
