"""Continuous batching: every step, running sequences decode and waiting ones prefill in chunks within a
token budget; when blocks run out the newest running sequence is preempted and later recomputed."""
from collections import deque
from dataclasses import dataclass

from qwenkit.engine.block_manager import BlockManager
from qwenkit.engine.sequence import Sequence, Status


@dataclass(slots=True)
class Chunk:
    """Tokens [start, start + length) of `seq` to run this step; it samples when it reaches the end."""
    seq: Sequence
    start: int
    length: int

    @property
    def samples(self) -> bool:
        return self.start + self.length == len(self.seq)


class Scheduler:
    def __init__(self, blocks: BlockManager, max_num_seqs: int = 64, max_num_batched_tokens: int = 512):
        self.blocks = blocks
        self.max_num_seqs, self.max_num_batched_tokens = max_num_seqs, max_num_batched_tokens
        self.waiting: deque[Sequence] = deque()
        self.running: list[Sequence] = []
        self.num_preemptions = 0

    def add(self, seq: Sequence) -> None:
        self.waiting.append(seq)

    def has_work(self) -> bool:
        return bool(self.waiting or self.running)

    def schedule(self) -> list[Chunk]:
        budget, chunks = self.max_num_batched_tokens, []
        for seq in list(self.running):
            if budget == 0:
                break
            if seq.status != Status.RUNNING:
                continue  # preempted below while making room for an older sequence
            length = min(len(seq) - seq.num_computed_tokens, budget)
            while not self.blocks.ensure_slots(seq, seq.num_computed_tokens + length):
                victim = self.running[-1]
                self.preempt(victim)
                if victim is seq:
                    break
            else:
                chunks.append(Chunk(seq, seq.num_computed_tokens, length))
                budget -= length
        while self.waiting and budget > 0 and len(self.running) < self.max_num_seqs:
            seq = self.waiting[0]
            if not self.blocks.allocate(seq, budget):
                if not self.running:
                    raise MemoryError(f"a request of {len(seq)} tokens does not fit in the KV cache; "
                                      "raise the KV cache memory or lower max_model_len")
                break
            self.waiting.popleft()
            seq.status = Status.RUNNING
            self.running.append(seq)
            length = min(len(seq) - seq.num_computed_tokens, budget)
            chunks.append(Chunk(seq, seq.num_computed_tokens, length))
            budget -= length
        return chunks

    def preempt(self, seq: Sequence) -> None:
        """Drop the sequence's cache; it re-enters the queue first and recomputes prompt plus output."""
        self.running.remove(seq)
        self.blocks.release(seq)
        seq.status, seq.num_computed_tokens = Status.WAITING, 0
        seq.num_preemptions += 1
        self.num_preemptions += 1
        self.waiting.appendleft(seq)

    def finish(self, seq: Sequence, reason: str) -> None:
        seq.status, seq.finish_reason = Status.FINISHED, reason
        if seq in self.running:
            self.running.remove(seq)
            self.blocks.release(seq)
        elif seq in self.waiting:
            self.waiting.remove(seq)
