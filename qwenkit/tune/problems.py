"""Training data that cannot be used: every problem found, reported at once as `file:line: problem`."""
from qwenkit.errors import QwenkitError

MAX_LISTED = 20


class DataError(QwenkitError):
    def __init__(self, problems: list[str], hint: str = "fix them and run again"):
        self.problems = list(problems)
        count = len(self.problems)
        lines = [f"  {p}" for p in self.problems[:MAX_LISTED]]
        if count > MAX_LISTED:
            lines.append(f"  ... and {count - MAX_LISTED} more")
        head = f"{count} problem{'s' if count != 1 else ''} in the training data ({hint}):"
        super().__init__("\n".join([head, *lines]))


class RecordError(ValueError):
    """One record's problem, without its place (the caller adds `file:line`)."""
