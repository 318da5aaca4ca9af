"""LoRA test helpers: a model with a nonzero adapter, greedy decoding, and an adapter folder on disk."""
from pathlib import Path

import torch

from qwenkit.engine.generator import Generator
from qwenkit.loading import load_checkpoint
from qwenkit.models import load_model
from qwenkit.sampling_params import SamplingParams
from qwenkit.tune.adapter import apply_lora, lora_modules, lora_state
from qwenkit.tune.lora import LoraConfig
from qwenkit.tune.peft_format import write_adapter

PROMPT = "The capital of Finland is"


def randomize_b(model: torch.nn.Module, seed: int = 1, std: float = 0.2) -> None:
    """B starts at zero, which would make every comparison pass trivially."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for module in lora_modules(model).values():
            for b in module.lora_B:
                b.copy_(torch.randn(b.shape, generator=g) * std)


def lora_model(folder: Path, config: LoraConfig | None = None, seed: int = 1, std: float = 0.2, **load):
    model = load_model(load_checkpoint(folder), **load)
    apply_lora(model, config or LoraConfig(r=4, alpha=8, dropout=0.0))
    randomize_b(model, seed, std)
    return model.eval()


def write_random_adapter(base: Path, folder: Path, seed: int = 1, std: float = 0.2, **config) -> Path:
    model = lora_model(base, LoraConfig(**({"r": 4, "alpha": 8, "dropout": 0.0} | config)), seed, std)
    return write_adapter(folder, lora_state(model, str(base)))


def greedy(model, tokenizer, n: int = 32, prompt: str = PROMPT) -> list[int]:
    generator = Generator(model, tokenizer, [], 256)
    params = SamplingParams(temperature=0, max_tokens=n, ignore_eos=True)
    return [d.token_id for d in generator.stream(tokenizer.encode(prompt), params)]
