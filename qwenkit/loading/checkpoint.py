"""What every loader returns: config, tensors under Hugging Face names, tokenizer, generation defaults."""
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from qwenkit.config import ModelConfig

if TYPE_CHECKING:
    from qwenkit.tokenizer import Tokenizer


@dataclass(slots=True)
class GenerationDefaults:
    """Sampling defaults shipped with a checkpoint (generation_config.json or GGUF metadata)."""
    eos_token_ids: list[int] = field(default_factory=list)
    temperature: float | None = None
    top_p: float | None = None
    top_k: int | None = None
    min_p: float | None = None
    repetition_penalty: float | None = None
    presence_penalty: float | None = None


@dataclass(slots=True)
class Checkpoint:
    path: Path
    format: str                          # "hf" or "gguf"
    config: ModelConfig
    tensors: Mapping[str, torch.Tensor]  # HF parameter names -> float tensors (memory-mapped where possible)
    tokenizer: "Tokenizer"
    generation: GenerationDefaults
    dtype: str                           # what is stored: "bfloat16", "float32", "Q4_1", "mixed (Q4_K, Q6_K)"
