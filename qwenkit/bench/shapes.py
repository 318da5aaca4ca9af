"""Random-weight checkpoints with the exact shapes of released Qwen models: decode speed and memory depend
on the shapes, not on the weight values, so W4 needs no download."""
from pathlib import Path

SHAPES = {
    "qwen3-0.6b": dict(arch="Qwen3Config", num_hidden_layers=28, hidden_size=1024, num_attention_heads=16,
                       num_key_value_heads=8, head_dim=128, intermediate_size=3072, vocab_size=151936,
                       tie_word_embeddings=True, max_position_embeddings=40960, rope_theta=1e6),
    "qwen2.5-0.5b": dict(arch="Qwen2Config", num_hidden_layers=24, hidden_size=896, num_attention_heads=14,
                         num_key_value_heads=2, intermediate_size=4864, vocab_size=151936,
                         tie_word_embeddings=True, max_position_embeddings=32768, rope_theta=1e6),
}


def random_checkpoint(name: str, root: Path) -> Path:
    """Write (once) a bf16 safetensors folder with Qwen's tokenizer; returns the folder."""
    folder = root / name
    if (folder / "config.json").is_file() and (folder / "tokenizer.json").is_file():
        return folder
    import torch
    import transformers

    from qwenkit.tokenizer.qwen_vocab import write_qwen_tokenizer_files
    spec = dict(SHAPES[name])
    config = getattr(transformers, spec.pop("arch"))(**spec)
    torch.manual_seed(0)
    with torch.device("meta"):
        model = transformers.AutoModelForCausalLM.from_config(config, dtype=torch.bfloat16)
    model = model.to_empty(device="cpu")
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0, 0.02) if p.dim() > 1 else p.fill_(1.0)
    model.save_pretrained(folder)
    write_qwen_tokenizer_files(folder, None, qwen3=name.startswith("qwen3"))
    return folder
