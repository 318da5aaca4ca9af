"""What a tokenizer loader found: the encoder and the metadata around it."""
from dataclasses import dataclass, field

from tokenizers import Tokenizer as Backend


@dataclass(slots=True)
class TokenizerParts:
    backend: Backend
    source: str                                   # file the vocabulary came from, for error messages
    chat_template: str | None = None
    template_source: str = ""                     # file (and field) the chat template came from
    named_templates: dict[str, str] = field(default_factory=dict)  # e.g. "tool_use"
    bos_token: str | None = None
    eos_tokens: list[str] = field(default_factory=list)
    extra_eos_ids: list[int] = field(default_factory=list)         # generation_config.json, GGUF eot/eom
    add_bos: bool = False
