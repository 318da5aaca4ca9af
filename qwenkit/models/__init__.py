"""Build a CausalLM from any Checkpoint and load its weights."""
from qwenkit.models.decoder import CausalLM
from qwenkit.models.load import load_model

__all__ = ["CausalLM", "load_model"]
