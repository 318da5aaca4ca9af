"""Write tiny llama.cpp-style GGUF files from a Hugging Face config and state dict, for tests.

Independent of qwenkit's loader on purpose: the names, metadata and llama q/k permutation follow
llama.cpp's convert_hf_to_gguf.py, so the loader is checked against the converter, not against itself.
"""
from pathlib import Path
from typing import Any

import numpy as np
import torch
from gguf import GGML_QUANT_SIZES, GGMLQuantizationType, GGUFValueType, GGUFWriter, quants

ARCHES = {"qwen2": "qwen2", "qwen3": "qwen3", "qwen3_moe": "qwen3moe", "llama": "llama"}

GLOBAL = {"model.embed_tokens.weight": "token_embd.weight", "model.norm.weight": "output_norm.weight",
          "lm_head.weight": "output.weight"}
BLOCK = {
    "input_layernorm.weight": "attn_norm.weight",
    "post_attention_layernorm.weight": "ffn_norm.weight",
    "self_attn.q_proj.weight": "attn_q.weight",
    "self_attn.k_proj.weight": "attn_k.weight",
    "self_attn.v_proj.weight": "attn_v.weight",
    "self_attn.o_proj.weight": "attn_output.weight",
    "self_attn.q_proj.bias": "attn_q.bias",
    "self_attn.k_proj.bias": "attn_k.bias",
    "self_attn.v_proj.bias": "attn_v.bias",
    "self_attn.q_norm.weight": "attn_q_norm.weight",
    "self_attn.k_norm.weight": "attn_k_norm.weight",
    "mlp.gate_proj.weight": "ffn_gate.weight",
    "mlp.up_proj.weight": "ffn_up.weight",
    "mlp.down_proj.weight": "ffn_down.weight",
    "mlp.gate.weight": "ffn_gate_inp.weight",
}
EXPERTS = {"gate_proj": "ffn_gate_exps.weight", "up_proj": "ffn_up_exps.weight",
           "down_proj": "ffn_down_exps.weight"}


def write_gguf(path: Path, hf_config, state_dict: dict[str, torch.Tensor],
               tokenizer_fields: dict | None = None, quant: str = "F32",
               metadata: dict[str, Any] | None = None) -> Path:
    """quant: F32, F16, BF16, Q8_0, Q5_0, Q5_1, Q4_0, Q4_1 (gguf-py) or Q6_K (ours); 1-D tensors, the router
    and rows that are not a multiple of the block stay F32. `metadata` overrides keys, or removes them
    with None values, to write broken files on purpose."""
    cfg = hf_config if isinstance(hf_config, dict) else hf_config.to_dict()
    meta = model_metadata(cfg) | dict(tokenizer_fields or {}) | dict(metadata or {})
    writer = GGUFWriter(path, meta.pop("general.architecture") or "", use_temp_file=False)
    for key, value in meta.items():
        if value is not None:
            add_field(writer, key, value)
    for name, array in gguf_tensors(cfg, state_dict).items():
        data, qtype = encode(name, array, quant)
        writer.add_tensor(name, data, raw_dtype=qtype)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return Path(path)


def model_metadata(cfg: dict) -> dict[str, Any]:
    arch = ARCHES[cfg["model_type"]]
    rope = cfg.get("rope_parameters") or {}
    meta = {
        "general.architecture": arch,
        "general.name": f"tiny-{arch}",
        "general.quantization_version": 2,
        f"{arch}.context_length": cfg["max_position_embeddings"],
        f"{arch}.embedding_length": cfg["hidden_size"],
        f"{arch}.block_count": cfg["num_hidden_layers"],
        f"{arch}.feed_forward_length": cfg["intermediate_size"],
        f"{arch}.attention.head_count": cfg["num_attention_heads"],
        f"{arch}.attention.head_count_kv": cfg["num_key_value_heads"],
        f"{arch}.attention.layer_norm_rms_epsilon": float(cfg["rms_norm_eps"]),
        f"{arch}.rope.freq_base": float(rope.get("rope_theta", cfg.get("rope_theta", 10000.0))),
    }
    if cfg.get("head_dim"):
        meta[f"{arch}.attention.key_length"] = cfg["head_dim"]
        meta[f"{arch}.attention.value_length"] = cfg["head_dim"]
    if arch == "llama":
        meta["llama.vocab_size"] = cfg["vocab_size"]
        head_dim = cfg.get("head_dim") or cfg["hidden_size"] // cfg["num_attention_heads"]
        meta["llama.rope.dimension_count"] = head_dim
    if arch == "qwen3moe":
        meta["qwen3moe.expert_count"] = cfg.get("num_experts") or cfg["num_local_experts"]
        meta["qwen3moe.expert_used_count"] = cfg["num_experts_per_tok"]
        meta["qwen3moe.expert_feed_forward_length"] = cfg["moe_intermediate_size"]
    if rope.get("rope_type") == "yarn":
        meta[f"{arch}.rope.scaling.type"] = "yarn"
        meta[f"{arch}.rope.scaling.factor"] = float(rope["factor"])
        meta[f"{arch}.rope.scaling.original_context_length"] = rope["original_max_position_embeddings"]
    return meta


def add_field(writer: GGUFWriter, key: str, value: Any) -> None:
    if isinstance(value, bool):
        writer.add_bool(key, value)
    elif isinstance(value, int):
        writer.add_uint32(key, value)
    elif isinstance(value, float):
        writer.add_float32(key, value)
    elif isinstance(value, str):
        writer.add_string(key, value)
    else:
        sub = GGUFValueType.INT32 if isinstance(value[0], int) else None
        writer.add_key_value(key, list(value), GGUFValueType.ARRAY, sub_type=sub)


def gguf_tensors(cfg: dict, state_dict: dict[str, torch.Tensor]) -> dict[str, np.ndarray]:
    """HF checkpoint (per-expert or transformers-5 fused experts) -> llama.cpp names and layouts."""
    arch = ARCHES[cfg["model_type"]]
    sd = {k: v.detach().float().numpy() for k, v in unfuse_experts(state_dict).items()}
    out, experts = {}, {}
    for name, array in sd.items():
        if name == "lm_head.weight" and cfg.get("tie_word_embeddings"):
            continue
        if name in GLOBAL:
            out[GLOBAL[name]] = array
            continue
        _, _, i, rest = name.split(".", 3)
        if ".experts." in name:
            _, _, e, proj, _ = rest.split(".")
            experts.setdefault(f"blk.{i}.{EXPERTS[proj]}", {})[int(e)] = array
            continue
        if arch == "llama" and rest.startswith(("self_attn.q_proj", "self_attn.k_proj")):
            heads = cfg["num_attention_heads"] if "q_proj" in rest else cfg["num_key_value_heads"]
            array = permute(array, heads)
        out[f"blk.{i}.{BLOCK[rest]}"] = array
    for name, by_index in experts.items():
        out[name] = np.stack([by_index[e] for e in sorted(by_index)])
    return out


def unfuse_experts(state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    sd = {}
    for name, t in state_dict.items():
        if name.endswith("mlp.experts.gate_up_proj"):
            prefix, half = name.removesuffix("gate_up_proj"), t.shape[1] // 2
            for e in range(t.shape[0]):
                sd[f"{prefix}{e}.gate_proj.weight"] = t[e, :half]
                sd[f"{prefix}{e}.up_proj.weight"] = t[e, half:]
        elif name.endswith("mlp.experts.down_proj"):
            for e in range(t.shape[0]):
                sd[f"{name.removesuffix('down_proj')}{e}.down_proj.weight"] = t[e]
        else:
            sd[name] = t
    return sd


def permute(w: np.ndarray, n_head: int) -> np.ndarray:
    """llama.cpp's q/k row order for llama-arch files (its rope pairs adjacent values)."""
    return w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def encode(name: str, array: np.ndarray, quant: str) -> tuple[np.ndarray, GGMLQuantizationType]:
    qtype = GGMLQuantizationType[quant]
    block = GGML_QUANT_SIZES[qtype][0]
    keep_f32 = array.ndim < 2 or name.endswith("ffn_gate_inp.weight") or array.shape[-1] % block
    if keep_f32 or qtype == GGMLQuantizationType.F32:
        return np.ascontiguousarray(array, dtype=np.float32), GGMLQuantizationType.F32
    if qtype == GGMLQuantizationType.F16:
        return array.astype(np.float16), qtype
    if qtype == GGMLQuantizationType.Q6_K:
        return quantize_q6_k(array), qtype
    return quants.quantize(array, qtype), qtype


def quantize_q6_k(x: np.ndarray) -> np.ndarray:
    """Q6_K: super-blocks of 256 = 16 sub-blocks of 16, 6-bit values, int8 sub-scales, one fp16 d.

    Byte layout per super-block (210 bytes): ql[128] low nibbles, qh[64] high 2-bit pairs,
    scales[16] int8, d fp16.
    """
    shape = x.shape
    blocks = x.astype(np.float32).reshape(-1, 16, 16)
    n = blocks.shape[0]
    sub = np.abs(blocks).max(-1) / 31
    d = (sub.max(-1, keepdims=True) / 127).astype(np.float16).astype(np.float32)
    with np.errstate(divide="ignore", invalid="ignore"):
        sc = np.where(d > 0, np.ceil(sub / d), 0).clip(0, 127)
        step = (d * sc)[..., None]
        q = np.where(step > 0, np.round(blocks / step), 0).clip(-32, 31)
    levels = (q + 32).astype(np.uint8).reshape(n, 2, 128)
    ql = (levels[:, :, :64] & 0x0F) | ((levels[:, :, 64:] & 0x0F) << 4)
    hi = (levels >> 4).reshape(n, 2, 4, 32)
    qh = hi[:, :, 0] | (hi[:, :, 1] << 2) | (hi[:, :, 2] << 4) | (hi[:, :, 3] << 6)
    scales = sc.astype(np.int8).view(np.uint8)
    packed = np.concatenate([ql.reshape(n, 128), qh.reshape(n, 64), scales,
                             d.astype(np.float16).view(np.uint8)], axis=1)
    return packed.reshape(*shape[:-1], shape[-1] // 256 * 210)


CHATML = ("{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
          "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")
MERGES = ["Ġ t", "h e", "Ġt he", "i n", "e r", "Ġ a", "o n", "r e", "Ġ w", "l l"]
SPECIAL = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
QWEN_VOCAB = Path(__file__).resolve().parents[2] / "shared/fixtures/qwen/ggml-vocab-qwen2.gguf"


def tiny_tokenizer_fields(vocab_rows: int = 288) -> dict[str, Any]:
    """A byte-level BPE vocab in Qwen's shape: 256 bytes, a few merges, ChatML specials, [PAD] rows."""
    tokens = [byte_char(b) for b in range(256)] + [m.replace(" ", "") for m in MERGES] + SPECIAL
    types = [1] * (len(tokens) - len(SPECIAL)) + [3] * len(SPECIAL)
    tokens += [f"[PAD{i}]" for i in range(len(tokens), vocab_rows)]
    types += [5] * (vocab_rows - len(types))
    return {
        "tokenizer.ggml.model": "gpt2",
        "tokenizer.ggml.pre": "qwen2",
        "tokenizer.ggml.tokens": tokens,
        "tokenizer.ggml.token_type": types,
        "tokenizer.ggml.merges": MERGES,
        "tokenizer.ggml.eos_token_id": tokens.index("<|im_end|>"),
        "tokenizer.ggml.padding_token_id": tokens.index("<|endoftext|>"),
        "tokenizer.ggml.add_bos_token": False,
        "tokenizer.chat_template": CHATML,
    }


def qwen_tokenizer_fields() -> dict[str, Any] | None:
    """The full Qwen2 vocab metadata from llama.cpp's vocab-only GGUF, when the shared fixture exists."""
    if not QWEN_VOCAB.exists():
        return None
    from qwenkit.loading.gguf_file import read_gguf
    return {k: v for k, v in read_gguf(QWEN_VOCAB)[1].items() if k.startswith("tokenizer.")}


def tiny_hf_config(arch: str, **overrides):
    """2 layers, hidden 256 (Q6_K needs rows of 256), GQA 4/2, vocab = tiny_tokenizer_fields' rows."""
    import transformers
    common = dict(vocab_size=288, hidden_size=256, intermediate_size=512, num_hidden_layers=2,
                  num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=4096)
    configs = {
        "qwen2": lambda: transformers.Qwen2Config(
            **common, tie_word_embeddings=True, rope_parameters={"rope_type": "default", "rope_theta": 1e6}),
        "qwen3": lambda: transformers.Qwen3Config(**common, head_dim=32, rms_norm_eps=1e-6),
        "qwen3_moe": lambda: transformers.Qwen3MoeConfig(
            **common, head_dim=64, num_experts=4, num_experts_per_tok=2, moe_intermediate_size=256,
            norm_topk_prob=True),
        "llama": lambda: transformers.LlamaConfig(**common, rms_norm_eps=1e-5, tie_word_embeddings=True),
    }
    cfg = configs[arch]()
    for key, value in overrides.items():
        setattr(cfg, key, value)
    return cfg


def byte_char(b: int) -> str:
    """GPT-2's printable stand-in for a byte (bytes_to_unicode)."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1),
                 *range(ord("®"), ord("ÿ") + 1)]
    if b in printable:
        return chr(b)
    return chr(256 + [c for c in range(256) if c not in printable].index(b))
