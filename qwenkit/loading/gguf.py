"""Load a llama.cpp GGUF file (qwen2, qwen3, qwen3moe, llama) as a Checkpoint with Hugging Face names."""
from collections import Counter
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from gguf import ReaderTensor

from qwenkit.loading.checkpoint import Checkpoint, GenerationDefaults
from qwenkit.loading.gguf_config import config_from_gguf
from qwenkit.loading.gguf_file import read_gguf
from qwenkit.loading.gguf_tensors import gguf_tensors, numpy_shape
from qwenkit.tokenizer import Tokenizer

SAMPLING = {"temperature": "temp", "top_p": "top_p", "top_k": "top_k", "min_p": "min_p",
            "repetition_penalty": "penalty_repeat"}


def load_gguf(path: Path) -> Checkpoint:
    path = Path(path)
    source = str(path)
    reader, fields = read_gguf(path)
    config = config_from_gguf(fields, {t.name: numpy_shape(t) for t in reader.tensors}, source)
    tensors = gguf_tensors(reader.tensors, config, source)
    tokenizer = Tokenizer.from_gguf_fields(fields, source)
    return Checkpoint(path=path, format="gguf", config=config, tensors=tensors, tokenizer=tokenizer,
                      generation=_generation(fields, tokenizer), dtype=stored_dtype(reader.tensors))


def stored_dtype(tensors: list[ReaderTensor]) -> str:
    """The types of the weight matrices, most common first: "Q8_0", or "mixed (Q4_1, Q8_0)"."""
    counts = Counter(t.tensor_type.name for t in tensors if len(t.shape) > 1)
    kinds = [kind for kind, _ in counts.most_common()] or ["F32"]
    return kinds[0] if len(kinds) == 1 else f"mixed ({', '.join(kinds)})"


def _generation(fields: Mapping[str, Any], tokenizer: Tokenizer) -> GenerationDefaults:
    sampling = {name: fields[f"general.sampling.{key}"] for name, key in SAMPLING.items()
                if f"general.sampling.{key}" in fields}
    return GenerationDefaults(eos_token_ids=list(tokenizer.eos_token_ids), **sampling)
