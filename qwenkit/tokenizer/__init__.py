"""Tokenizers for Qwen-family checkpoints: Hugging Face folders and GGUF metadata, chat templates,
control-token-safe chat encoding and streaming decode."""
from qwenkit.tokenizer.detokenizer import IncrementalDetokenizer
from qwenkit.tokenizer.tokenizer import Tokenizer

__all__ = ["IncrementalDetokenizer", "Tokenizer"]
