"""What the trainer will learn from: examples, tokens, supervised tokens, and what happened to long examples."""
from dataclasses import dataclass, field

from rich.table import Table
from rich.text import Text


@dataclass(slots=True)
class DataSummary:
    examples: int                   # kept for training
    tokens: int                     # in the kept examples
    supervised_tokens: int          # tokens the loss trains on
    longest: int                    # tokens in the longest kept example
    max_length: int
    overlong: int = 0               # examples longer than max_length
    overlong_action: str = "drop"   # what was done with them: "drop" or "truncate"
    dropped: int = 0                # examples left out (too long, or truncated to nothing supervised)
    truncated: int = 0
    overlong_places: list[str] = field(default_factory=list)   # the first few as `file:line`
    reasoning_turns: int = 0        # assistant turns whose thinking is trained on
    formats: dict[str, str] = field(default_factory=dict)      # file -> layout it was read as

    def rows(self) -> list[tuple[str, str]]:
        rows = [("examples", f"{self.examples:,}"), ("tokens", f"{self.tokens:,}"),
                ("supervised tokens", f"{self.supervised_tokens:,} ({self.supervised_share():.0%})"),
                ("longest example", f"{self.longest:,} tokens (max_length {self.max_length:,})")]
        if self.overlong:
            places = ", ".join(self.overlong_places) + (", ..." if self.overlong > len(self.overlong_places) else "")
            done = (f"truncated {self.truncated:,}, dropped {self.dropped:,}" if self.overlong_action == "truncate"
                    else f"dropped {self.dropped:,}; overlong='truncate' keeps their start")
            rows.append(("longer than max_length", f"{self.overlong:,}: {done} ({places})"))
        if self.reasoning_turns:
            turns = self.reasoning_turns
            rows.append(("reasoning trained on", f"{turns:,} assistant turn{'s' if turns != 1 else ''}"))
        rows += [(f"format of {name}", fmt) for name, fmt in self.formats.items()]
        return rows

    def supervised_share(self) -> float:
        return self.supervised_tokens / self.tokens if self.tokens else 0.0

    def __str__(self) -> str:
        return "\n".join(f"{name}: {value}" for name, value in self.rows())

    def __rich__(self) -> Table:
        table = Table(title="training data", show_header=False, title_justify="left")
        table.add_column(style="bold")
        table.add_column()
        for name, value in self.rows():
            table.add_row(name, Text(value))
        return table
