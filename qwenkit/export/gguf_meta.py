"""Model metadata for GGUF (`general.*`, `{arch}.*`) with llama.cpp's keys."""
from gguf import GGML_QUANT_VERSION, GGUFReader, GGUFValueType, GGUFWriter, RopeScalingType

from qwenkit.errors import ModelLoadError
from qwenkit.export.source import MergedSource

ARCHES = {"qwen2": "qwen2", "qwen3": "qwen3", "qwen3_moe": "qwen3moe", "llama": "llama"}
SET_HERE = {"general.architecture", "general.file_type", "general.quantization_version"}
SAMPLING = {"temperature": "add_sampling_temp", "top_p": "add_sampling_top_p", "top_k": "add_sampling_top_k",
            "min_p": "add_sampling_min_p", "repetition_penalty": "add_sampling_penalty_repeat"}


def check_exportable(source: MergedSource) -> None:
    cfg = source.checkpoint.config
    kind = (cfg.rope_scaling or {}).get("rope_type", "default")
    if kind not in ("default", "yarn", "linear"):
        raise ModelLoadError(source.name, f"rope scaling {kind!r} has no GGUF form qwenkit writes",
                             "export with llama.cpp's convert_hf_to_gguf.py instead")
    dense = [i for i in range(cfg.num_hidden_layers) if not cfg.is_moe_layer(i)]
    if cfg.num_experts and (dense or not cfg.norm_topk_prob):
        problem = f"dense layers {dense} among MoE layers" if dense else "norm_topk_prob=false"
        raise ModelLoadError(source.name, f"{problem} cannot be written as GGUF qwen3moe, which llama.cpp reads as "
                             "all-MoE with renormalised top-k weights", "use `qwenkit merge` for a HF folder instead")


def write_model_metadata(writer: GGUFWriter, source: MergedSource, file_type: int,
                         reader: GGUFReader | None) -> None:
    cfg = source.checkpoint.config
    if reader is not None:  # a GGUF source keeps its name, license, sampling defaults...
        _copy_general(writer, reader)
    else:
        writer.add_name(source.checkpoint.path.name)
        for field, add in SAMPLING.items():
            if (value := getattr(source.checkpoint.generation, field)) is not None:
                getattr(writer, add)(value)
    writer.add_file_type(file_type)
    writer.add_quantization_version(GGML_QUANT_VERSION)
    writer.add_context_length(cfg.max_position_embeddings)
    writer.add_embedding_length(cfg.hidden_size)
    writer.add_block_count(cfg.num_hidden_layers)
    if cfg.intermediate_size:
        writer.add_feed_forward_length(cfg.intermediate_size)
    writer.add_head_count(cfg.num_attention_heads)
    writer.add_head_count_kv(cfg.num_key_value_heads)
    writer.add_key_length(cfg.head_dim)
    writer.add_value_length(cfg.head_dim)
    writer.add_rope_dimension_count(cfg.head_dim)
    writer.add_layer_norm_rms_eps(cfg.rms_norm_eps)
    writer.add_rope_freq_base(cfg.rope_theta)
    if cfg.architecture == "llama":
        writer.add_vocab_size(cfg.vocab_size)
    if cfg.num_experts:
        writer.add_expert_count(cfg.num_experts)
        writer.add_expert_used_count(cfg.num_experts_per_tok)
        writer.add_expert_feed_forward_length(cfg.moe_intermediate_size)
    scaling = cfg.rope_scaling or {}
    if scaling:
        writer.add_rope_scaling_type(RopeScalingType(scaling["rope_type"]))
        writer.add_rope_scaling_factor(float(scaling.get("factor", 1.0)))
        if "original_max_position_embeddings" in scaling:
            writer.add_rope_scaling_orig_ctx_len(int(scaling["original_max_position_embeddings"]))


def _copy_general(writer: GGUFWriter, reader: GGUFReader) -> None:
    for key, field in reader.fields.items():
        if key.startswith("general.") and key not in SET_HERE:
            sub = field.types[-1] if field.types[0] == GGUFValueType.ARRAY else None
            writer.add_key_value(key, field.contents(), field.types[0], sub_type=sub)
