"""Place names in recognized text: diacritics folded, near spellings accepted."""

import difflib
import re
import unicodedata


def fold(text: str) -> str:
    """Lowercase ASCII words: 'Hotel Kämp!' -> 'hotel kamp'."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return " ".join(re.findall(r"[a-z0-9]+", ascii_text.lower()))


def mentions(text: str, name: str, cutoff: float = 0.8) -> bool:
    """Whether `name` occurs in `text`, comparing every window of as many words by similarity."""
    words, target = fold(text).split(), fold(name)
    size = len(target.split())
    if not target:
        return False
    windows = (" ".join(words[i : i + size]) for i in range(max(1, len(words) - size + 1)))
    return any(difflib.SequenceMatcher(None, w, target).ratio() >= cutoff for w in windows)


def find_places(text: str, places: list[str], cutoff: float = 0.8) -> list[str]:
    return [p for p in places if mentions(text, p, cutoff)]
