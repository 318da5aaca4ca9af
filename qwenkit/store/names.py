"""Store names `name:tag`: validated so a name can never escape the store folder."""
import re
from dataclasses import dataclass

from qwenkit.store.errors import InvalidNameError

PART = re.compile(r"[a-z0-9][a-z0-9._-]*")
MAX_LEN = 64


@dataclass(slots=True, frozen=True)
class ModelName:
    name: str
    tag: str = "latest"

    def __str__(self) -> str:
        return f"{self.name}:{self.tag}"


def parse_name(ref: str) -> ModelName:
    text = ref.strip().lower()
    if not text:
        raise InvalidNameError(ref, "it is empty")
    name, sep, tag = text.partition(":")
    if sep and not tag:
        raise InvalidNameError(ref, "the tag after ':' is empty")
    for part, what in ((name, "name"), (tag or "latest", "tag")):
        check_part(ref, part, what)
    return ModelName(name, tag or "latest")


def check_part(ref: str, part: str, what: str) -> None:
    if "/" in part or "\\" in part:
        raise InvalidNameError(ref, f"the {what} contains a path separator")
    if ".." in part:
        raise InvalidNameError(ref, f"the {what} contains '..'")
    if len(part) > MAX_LEN:
        raise InvalidNameError(ref, f"the {what} is longer than {MAX_LEN} characters")
    if not PART.fullmatch(part):
        raise InvalidNameError(ref, f"the {what} {part!r} has characters that are not allowed")


def is_valid_name(ref: str) -> bool:
    try:
        parse_name(ref)
    except InvalidNameError:
        return False
    return True
