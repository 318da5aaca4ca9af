"""Small stand-ins for real checkpoints: a Qwen3-shaped Hugging Face folder and GGUF files."""
import json
from pathlib import Path

import gguf
import numpy as np
from safetensors.numpy import save

CONFIG = {"architectures": ["Qwen3ForCausalLM"], "model_type": "qwen3", "vocab_size": 1024,
          "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2, "num_attention_heads": 4,
          "num_key_value_heads": 2, "head_dim": 16, "max_position_embeddings": 512,
          "tie_word_embeddings": True, "torch_dtype": "bfloat16"}


def hf_files(seed: int = 0) -> dict[str, bytes]:
    rng = np.random.default_rng(seed)
    weights = save({"model.embed_tokens.weight": rng.standard_normal((1024, 768), dtype=np.float32)})
    return {
        "config.json": json.dumps(CONFIG).encode(),
        "generation_config.json": json.dumps({"eos_token_id": [151645, 151643], "temperature": 0.6}).encode(),
        "tokenizer_config.json": json.dumps({"model_max_length": 512}).encode(),
        "vocab.json": json.dumps({f"t{i}": i for i in range(200)}).encode(),
        "merges.txt": b"#version: 0.2\nt 0\n",
        "tokenizer.json": json.dumps({"version": "1.0", "model": {"type": "BPE"}}).encode(),
        "model.safetensors": weights,
        "README.md": b"# tiny\n",
        ".gitattributes": b"*.safetensors filter=lfs diff=lfs merge=lfs -text\n",
    }


HF_LFS = {"model.safetensors", "tokenizer.json"}


def gguf_bytes(tmp: Path, file_type: gguf.LlamaFileType, seed: int = 0) -> bytes:
    path = tmp / f"tiny-{file_type.name}-{seed}.gguf"
    w = gguf.GGUFWriter(str(path), "qwen3")
    w.add_file_type(file_type)
    w.add_block_count(1)
    w.add_context_length(128)
    weights = np.random.default_rng(seed).standard_normal((64, 256), dtype=np.float32)
    w.add_tensor("token_embd.weight", weights)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path.read_bytes()


def gguf_files(tmp: Path) -> dict[str, bytes]:
    return {
        "tiny-q8_0.gguf": gguf_bytes(tmp, gguf.LlamaFileType.MOSTLY_Q8_0, 1),
        "tiny-q4_k_m.gguf": gguf_bytes(tmp, gguf.LlamaFileType.MOSTLY_Q4_K_M, 2),
        "tiny-f16-00001-of-00002.gguf": gguf_bytes(tmp, gguf.LlamaFileType.MOSTLY_F16, 3),
        "tiny-f16-00002-of-00002.gguf": b"second shard" * 100,
        "README.md": b"# tiny gguf\n",
    }


def write_folder(folder: Path, files: dict[str, bytes]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        (folder / name).write_bytes(data)
    return folder


def write_adapter(folder: Path, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    return write_folder(folder, {
        "adapter_config.json": json.dumps({"peft_type": "LORA", "r": 4, "lora_alpha": 8,
                                           "target_modules": ["q_proj", "v_proj"]}).encode(),
        "adapter_model.safetensors": save({"lora_A": rng.standard_normal((4, 64), dtype=np.float32)}),
    })
