"""SamplingParams in vLLM's shape, validated on construction."""
from dataclasses import dataclass, field, fields, replace

from qwenkit.errors import InvalidRequestError


@dataclass(slots=True)
class SamplingParams:
    n: int = 1
    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int = 0                      # 0 or -1: off
    min_p: float = 0.0
    repetition_penalty: float = 1.0     # prompt and output tokens, logit /= p if > 0 else *= p
    presence_penalty: float = 0.0       # output tokens
    frequency_penalty: float = 0.0      # output tokens, times their count
    logit_bias: dict[int, float] | None = None
    seed: int | None = None
    max_tokens: int | None = 16         # None: up to the context limit
    min_tokens: int = 0
    stop: list[str] | str | None = None
    stop_token_ids: list[int] = field(default_factory=list)
    ignore_eos: bool = False
    logprobs: int | None = None         # number of top logprobs per token (0: only the sampled one)
    skip_special_tokens: bool = True

    def __post_init__(self) -> None:
        if isinstance(self.stop, str):
            self.stop = [self.stop]
        self.stop = [s for s in (self.stop or []) if s]
        if self.top_k == -1:
            self.top_k = 0
        _check("n", self.n >= 1, "must be at least 1")
        _check("temperature", 0 <= self.temperature <= 100, "must be between 0 and 100")
        _check("top_p", 0 < self.top_p <= 1, "must be in (0, 1]")
        _check("top_k", self.top_k >= 0, "must be -1, 0 (off) or positive")
        _check("min_p", 0 <= self.min_p <= 1, "must be in [0, 1]")
        _check("repetition_penalty", 0 < self.repetition_penalty <= 10, "must be in (0, 10]")
        _check("presence_penalty", -2 <= self.presence_penalty <= 2, "must be in [-2, 2]")
        _check("frequency_penalty", -2 <= self.frequency_penalty <= 2, "must be in [-2, 2]")
        _check("max_tokens", self.max_tokens is None or self.max_tokens >= 1, "must be at least 1")
        _check("min_tokens", self.min_tokens >= 0, "must be >= 0")
        _check("logprobs", self.logprobs is None or 0 <= self.logprobs <= 20, "must be between 0 and 20")

    @property
    def greedy(self) -> bool:
        return self.temperature == 0 or self.top_k == 1

    @property
    def penalized(self) -> bool:
        return (self.repetition_penalty != 1.0 or self.presence_penalty != 0.0
                or self.frequency_penalty != 0.0 or bool(self.logit_bias))

    def updated(self, **changes) -> "SamplingParams":
        known = {f.name for f in fields(self)}
        return replace(self, **{k: v for k, v in changes.items() if k in known and v is not None})


def _check(name: str, ok: bool, problem: str) -> None:
    if not ok:
        raise InvalidRequestError(name, problem)
