"""A request's tokens and its place in the paged KV cache."""
from dataclasses import dataclass, field
from enum import Enum, auto
from itertools import count

from qwenkit.sampling_params import SamplingParams

_ids = count()


class Status(Enum):
    WAITING = auto()
    RUNNING = auto()
    FINISHED = auto()


@dataclass(slots=True, eq=False)
class Sequence:
    token_ids: list[int]
    params: SamplingParams
    seq_id: int = field(default_factory=lambda: next(_ids))
    num_prompt_tokens: int = 0
    num_computed_tokens: int = 0      # tokens whose keys and values are in the cache
    block_table: list[int] = field(default_factory=list)
    block_hashes: list[int] = field(default_factory=list)   # chain hashes of the leading full, computed blocks
    status: Status = Status.WAITING
    finish_reason: str | None = None
    num_preemptions: int = 0
    adapter: int = 0                  # the LoRA slot it runs; 0 is the base model

    def __post_init__(self) -> None:
        self.num_prompt_tokens = self.num_prompt_tokens or len(self.token_ids)

    def __len__(self) -> int:
        return len(self.token_ids)

    @property
    def num_output_tokens(self) -> int:
        return len(self.token_ids) - self.num_prompt_tokens

    @property
    def output_ids(self) -> list[int]:
        return self.token_ids[self.num_prompt_tokens:]

    @property
    def is_finished(self) -> bool:
        return self.status == Status.FINISHED
