"""Streaming decode: text for each new token, never a broken character."""
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from qwenkit.tokenizer.tokenizer import Tokenizer

REPLACEMENT = "\ufffd"


@dataclass(slots=True)
class IncrementalDetokenizer:
    """Decodes a window that starts one emitted step back (as vLLM and TGI do), so leading spaces and
    prefix handling come out as in a full decode; holds text back while its tail is an unfinished
    UTF-8 sequence."""
    tokenizer: "Tokenizer"
    skip_special_tokens: bool = True
    ids: list[int] = field(default_factory=list)   # the window: prefix tokens, then tokens not yet emitted
    read_offset: int = 0                           # ids[:read_offset] were emitted already

    def add(self, token_id: int) -> str:
        self.ids.append(int(token_id))
        prefix, text = self._window()
        if len(text) <= len(prefix) or text.endswith(REPLACEMENT):
            return ""
        del self.ids[:self.read_offset]
        self.read_offset = len(self.ids)
        return text[len(prefix):]

    def flush(self) -> str:
        prefix, text = self._window()
        self.ids.clear()
        self.read_offset = 0
        return text[len(prefix):]

    def _window(self) -> tuple[str, str]:
        decode = self.tokenizer.decode
        return (decode(self.ids[:self.read_offset], self.skip_special_tokens),
                decode(self.ids, self.skip_special_tokens))
