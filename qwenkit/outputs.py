"""Results in vLLM's shape."""
from dataclasses import dataclass, field


@dataclass(slots=True)
class TokenLogprob:
    token_id: int
    token: str
    logprob: float
    top: list[tuple[int, str, float]] = field(default_factory=list)


@dataclass(slots=True)
class CompletionOutput:
    index: int
    text: str
    token_ids: list[int]
    finish_reason: str | None          # "stop", "length" or None while running
    stop_reason: int | str | None = None
    logprobs: list[TokenLogprob] | None = None
    cumulative_logprob: float | None = None


@dataclass(slots=True)
class RequestOutput:
    prompt: str | None
    prompt_token_ids: list[int]
    outputs: list[CompletionOutput]
    finished: bool = True


@dataclass(slots=True)
class StreamDelta:
    """One step of one sequence: the new token and the text it completed (may be empty while held back)."""
    index: int
    token_id: int | None
    text: str
    finish_reason: str | None = None
    stop_reason: int | str | None = None
    logprob: TokenLogprob | None = None
