"""One model config for every supported family, read from Hugging Face or GGUF metadata."""
from dataclasses import dataclass, field

from qwenkit.errors import ModelLoadError

ARCHITECTURES = {
    "Qwen2ForCausalLM": "qwen2",
    "Qwen3ForCausalLM": "qwen3",
    "Qwen3MoeForCausalLM": "qwen3_moe",
    "LlamaForCausalLM": "llama",
}
ROPE_TYPES = ("default", "linear", "llama3", "yarn")


@dataclass(slots=True)
class ModelConfig:
    architecture: str
    vocab_size: int
    hidden_size: int
    intermediate_size: int
    num_hidden_layers: int
    num_attention_heads: int
    num_key_value_heads: int
    head_dim: int
    rms_norm_eps: float = 1e-6
    rope_theta: float = 1e6
    rope_scaling: dict | None = None
    max_position_embeddings: int = 32768
    tie_word_embeddings: bool = False
    attention_bias: bool = False
    qk_norm: bool = False
    num_experts: int = 0
    num_experts_per_tok: int = 0
    moe_intermediate_size: int = 0
    norm_topk_prob: bool = False
    decoder_sparse_step: int = 1
    mlp_only_layers: list[int] = field(default_factory=list)

    def is_moe_layer(self, i: int) -> bool:
        return (self.num_experts > 0 and i not in self.mlp_only_layers
                and (i + 1) % self.decoder_sparse_step == 0)

    @classmethod
    def from_hf(cls, d: dict, source: str = "config.json") -> "ModelConfig":
        arch = _architecture(d, source)
        try:
            heads = d["num_attention_heads"]
            cfg = cls(
                architecture=arch,
                vocab_size=d["vocab_size"],
                hidden_size=d["hidden_size"],
                intermediate_size=d["intermediate_size"],
                num_hidden_layers=d["num_hidden_layers"],
                num_attention_heads=heads,
                num_key_value_heads=d.get("num_key_value_heads") or heads,
                head_dim=d.get("head_dim") or d["hidden_size"] // heads,
                rms_norm_eps=d.get("rms_norm_eps", 1e-6),
                max_position_embeddings=d.get("max_position_embeddings", 32768),
                tie_word_embeddings=bool(d.get("tie_word_embeddings", False)),
                attention_bias=arch == "qwen2" or bool(d.get("attention_bias", False)),
                qk_norm=arch in ("qwen3", "qwen3_moe"),
                num_experts=(d.get("num_experts") or d.get("num_local_experts") or 0) if arch == "qwen3_moe" else 0,
                num_experts_per_tok=d.get("num_experts_per_tok", 0),
                moe_intermediate_size=d.get("moe_intermediate_size", 0),
                norm_topk_prob=bool(d.get("norm_topk_prob", False)),
                decoder_sparse_step=d.get("decoder_sparse_step", 1) or 1,
                mlp_only_layers=list(d.get("mlp_only_layers") or []),
            )
        except KeyError as e:
            raise ModelLoadError(source, f"missing field {e.args[0]!r}",
                                 "the config.json is incomplete; re-download or re-export the model") from None
        cfg.rope_theta, cfg.rope_scaling = _rope(d)
        kind = (cfg.rope_scaling or {}).get("rope_type", "default")
        if kind not in ROPE_TYPES:
            raise ModelLoadError(source, f"unsupported rope scaling {kind!r}", f"supported: {', '.join(ROPE_TYPES)}")
        return cfg


def _architecture(d: dict, source: str) -> str:
    names = d.get("architectures") or []
    for name in names:
        if name in ARCHITECTURES:
            return ARCHITECTURES[name]
    model_type = d.get("model_type")
    if model_type in ARCHITECTURES.values():
        return model_type
    raise ModelLoadError(source, f"unsupported architecture {names or model_type!r}",
                         f"qwenkit runs {', '.join(ARCHITECTURES)}")


def _rope(d: dict) -> tuple[float, dict | None]:
    """Accept both transformers-4 (`rope_theta`, `rope_scaling`) and transformers-5 (`rope_parameters`)."""
    params = d.get("rope_parameters")
    if isinstance(params, dict) and "full_attention" in params:
        params = params["full_attention"]
    if isinstance(params, dict):
        theta = params.get("rope_theta", d.get("rope_theta", 1e6))
        scaling = {k: v for k, v in params.items() if k != "rope_theta"}
    else:
        theta = d.get("rope_theta", 1e6)
        scaling = dict(d.get("rope_scaling") or {})
    if "type" in scaling and "rope_type" not in scaling:
        scaling["rope_type"] = scaling.pop("type")
    if scaling.get("rope_type", "default") == "default":
        scaling = None
    return float(theta), scaling
