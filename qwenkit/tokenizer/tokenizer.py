"""Text <-> token ids for one checkpoint, with its chat template and control-token safety."""
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from qwenkit.tokenizer import chat_template
from qwenkit.tokenizer.chatml import CHATML_TEMPLATE
from qwenkit.tokenizer.detokenizer import IncrementalDetokenizer
from qwenkit.tokenizer.gguf_vocab import read_gguf_fields
from qwenkit.tokenizer.hf_folder import read_hf_folder
from qwenkit.tokenizer.parts import TokenizerParts
from qwenkit.tokenizer.placeholders import Placeholders, literal_pattern

STOP_TOKENS = ("<|im_end|>", "<|endoftext|>")


class Tokenizer:
    def __init__(self, parts: TokenizerParts):
        self._backend = parts.backend
        self._backend.encode_special_tokens = True   # special tokens come only from our own split
        self._parts = parts
        self.source = parts.source
        self.chat_template: str | None = parts.chat_template
        self.add_bos = parts.add_bos
        self.bos_token_id = self.token_to_id(parts.bos_token) if parts.bos_token else None
        added = self._backend.get_added_tokens_decoder()
        self.added_tokens: dict[str, int] = {t.content: i for i, t in sorted(added.items())}
        self.special_tokens: dict[str, int] = {t.content: i for i, t in sorted(added.items()) if t.special}
        self._special_pattern = literal_pattern(self.special_tokens)
        named = [self.token_to_id(t) for t in parts.eos_tokens]
        stops = [self.token_to_id(t) for t in STOP_TOKENS]
        eos = [i for i in [*named, *parts.extra_eos_ids, *stops] if i is not None]
        self.eos_token_ids: list[int] = list(dict.fromkeys(eos))
        for name, template in [("", self.chat_template), *parts.named_templates.items()]:
            if template is not None:
                chat_template.check_template(template, self._template_source(name))

    @classmethod
    def from_hf_folder(cls, path: Path) -> "Tokenizer":
        return cls(read_hf_folder(Path(path)))

    @classmethod
    def from_gguf_fields(cls, fields: Mapping[str, Any], source: str) -> "Tokenizer":
        return cls(read_gguf_fields(fields, str(source)))

    def __len__(self) -> int:
        return self._backend.get_vocab_size(with_added_tokens=True)

    def token_to_id(self, token: str) -> int | None:
        return self._backend.token_to_id(token)

    def id_to_token(self, i: int) -> str | None:
        return self._backend.id_to_token(i)

    def encode(self, text: str, allow_special: bool = False) -> list[int]:
        """Ids for `text`, without BOS. Special-token text is plain text unless allow_special."""
        if not allow_special:
            return self._plain(text)
        return self._encode_split(text, lambda piece: piece)

    def decode(self, ids: Sequence[int], skip_special_tokens: bool = True) -> str:
        return self._backend.decode([int(i) for i in ids], skip_special_tokens=skip_special_tokens)

    def render_chat(self, messages: list[dict], tools: list[dict] | None = None,
                    add_generation_prompt: bool = True, **template_kwargs) -> str:
        template, source = self._template(tools, messages)
        names = {"bos_token": self._parts.bos_token, "eos_token": next(iter(self._parts.eos_tokens), None)}
        variables = {k: v for k, v in names.items() if v is not None} | template_kwargs
        return chat_template.render(template, source, messages, tools, add_generation_prompt, variables)

    def encode_chat(self, messages: list[dict], tools: list[dict] | None = None,
                    add_generation_prompt: bool = True, **template_kwargs) -> list[int]:
        """Ids of the rendered chat. Control tokens come only from the template's own text: special-token
        text inside messages, tools and template variables is encoded as plain text."""
        hidden = Placeholders.for_inputs(self.special_tokens, messages, tools, template_kwargs,
                                         self.chat_template or "", self._parts.named_templates)
        text = self.render_chat(hidden.hide(messages), hidden.hide(tools), add_generation_prompt,
                                **hidden.hide(template_kwargs))
        ids = self._encode_split(text, hidden.show)
        if self.add_bos and self.bos_token_id is not None and ids[:1] != [self.bos_token_id]:
            ids.insert(0, self.bos_token_id)
        return ids

    def detokenizer(self, skip_special_tokens: bool = True) -> IncrementalDetokenizer:
        return IncrementalDetokenizer(self, skip_special_tokens)

    def _plain(self, text: str) -> list[int]:
        return self._backend.encode(text, add_special_tokens=False).ids if text else []

    def _encode_split(self, text: str, show) -> list[int]:
        """Special-token text -> control ids; the text between goes through `show`, then plain encoding."""
        if self._special_pattern is None:
            return self._plain(show(text))
        ids, start = [], 0
        for match in self._special_pattern.finditer(text):
            ids += self._plain(show(text[start:match.start()]))
            ids.append(self.special_tokens[match.group()])
            start = match.end()
        return ids + self._plain(show(text[start:]))

    def _template(self, tools: list[dict] | None, messages: list[dict] = ()) -> tuple[str, str]:
        """(template, where it came from): the checkpoint's tool_use template when tools are given and it
        has one, else chat_template, else qwenkit's ChatML. A template that knows nothing of tools (it
        would silently drop them, as SmolLM2's does) gives way to qwenkit's ChatML with Qwen-style tools
        when the chat carries tools, tool calls or tool results."""
        if tools and "tool_use" in self._parts.named_templates:
            return self._parts.named_templates["tool_use"], self._template_source("tool_use")
        if self.chat_template is None:
            return CHATML_TEMPLATE, "qwenkit's ChatML template"
        uses_tools = bool(tools) or any(m.get("role") == "tool" or m.get("tool_calls") for m in messages)
        if uses_tools and "tool" not in self.chat_template and self._is_chatml():
            return CHATML_TEMPLATE, "qwenkit's ChatML template (the model's own template has no tool support)"
        if self.chat_template != self._parts.chat_template:
            return self.chat_template, "Tokenizer.chat_template"
        return self.chat_template, self._template_source("")

    def _is_chatml(self) -> bool:
        return "<|im_start|>" in self.special_tokens and "<|im_end|>" in self.special_tokens

    def _template_source(self, name: str) -> str:
        source = self._parts.template_source or self.source
        return f"{source} [{name} template]" if name else source
