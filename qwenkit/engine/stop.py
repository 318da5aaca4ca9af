"""Stop strings: cut exactly at the first match and never stream a partial match."""


class StopStrings:
    def __init__(self, stops: list[str]):
        self.stops = stops
        self.longest = max((len(s) for s in stops), default=0)

    def find(self, text: str, new_from: int) -> int | None:
        """Index in `text` where the earliest stop string starts, looking only at matches that end after new_from."""
        if not self.stops:
            return None
        start = max(0, new_from - self.longest + 1)
        hits = [i for i in (text.find(s, start) for s in self.stops) if i >= 0]
        return min(hits) if hits else None

    def holdback(self, text: str) -> int:
        """Length of the longest tail of `text` that could still grow into a stop string."""
        for n in range(min(self.longest - 1, len(text)), 0, -1):
            tail = text[-n:]
            if any(s.startswith(tail) for s in self.stops):
                return n
        return 0
