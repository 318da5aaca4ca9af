"""Keep special-token text in chat inputs as plain text: hide it behind private-use characters
while the template renders, and put it back, as text, when encoding."""
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from qwenkit.errors import InvalidRequestError

PRIVATE_PLANES = (0xF0000, 0x100000)
PLANE_SIZE = 0xFFFE


def literal_pattern(tokens: Iterable[str]) -> re.Pattern | None:
    """Matches any of `tokens`, longest first; None when there are none."""
    tokens = sorted(tokens, key=len, reverse=True)
    return re.compile("|".join(map(re.escape, tokens))) if tokens else None


def strings(value: Any) -> Iterable[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, Mapping):
        for item in value.values():
            yield from strings(item)
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from strings(item)


def free_base(used: set[int], count: int) -> int:
    """First run of `count` private-use code points that no input uses."""
    for plane in PRIVATE_PLANES:
        for base in range(plane, plane + PLANE_SIZE - count + 1, count):
            if not any(base <= c < base + count for c in used):
                return base
    raise InvalidRequestError("messages", "uses too many private-use characters to be encoded safely")


@dataclass(slots=True)
class Placeholders:
    pattern: re.Pattern | None   # the special tokens
    hide_table: dict[str, str]   # special token -> placeholder character
    show_table: dict[int, str]   # placeholder code point -> special token

    @classmethod
    def for_inputs(cls, specials: Iterable[str], *inputs: Any) -> "Placeholders":
        specials = list(specials)
        used = {ord(c) for text in strings(inputs) for c in text if ord(c) >= PRIVATE_PLANES[0]}
        base = free_base(used, max(len(specials), 1))
        hide = {token: chr(base + i) for i, token in enumerate(specials)}
        return cls(literal_pattern(specials), hide, {ord(ch): token for token, ch in hide.items()})

    def hide(self, value: Any) -> Any:
        """A copy of messages, tools or variables with special-token text swapped for placeholders."""
        if isinstance(value, str):
            return self.pattern.sub(lambda m: self.hide_table[m.group()], value) if self.pattern else value
        if isinstance(value, Mapping):
            return {key: self.hide(item) for key, item in value.items()}
        if isinstance(value, (list, tuple)):
            return [self.hide(item) for item in value]
        return value

    def show(self, text: str) -> str:
        return text.translate(self.show_table)
