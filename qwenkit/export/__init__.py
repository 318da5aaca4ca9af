"""Write models out: a merged Hugging Face folder, or a llama.cpp GGUF file."""
from qwenkit.export.gguf import QTYPES, export_gguf

__all__ = ["QTYPES", "export_gguf"]
