"""Errors a user can act on: what was wrong, where, and what to do."""


class QwenkitError(Exception):
    """Base of every error qwenkit reports to a user without a traceback."""


class ModelLoadError(QwenkitError):
    def __init__(self, source: str, problem: str, hint: str = ""):
        self.source, self.problem, self.hint = str(source), problem, hint
        super().__init__(f"{self.source}: {problem}" + (f" ({hint})" if hint else ""))


class InvalidRequestError(QwenkitError, ValueError):
    """A request or parameter is malformed; names the field."""

    def __init__(self, field: str, problem: str):
        self.field = field
        super().__init__(f"{field}: {problem}")
