"""Which packed rows each optimizer step trains on: a reproducible stream over epochs.

The stream is every row in a seeded random order, then again in a new order for the next epoch, and so on.
Step s takes stream positions [s * batch, (s + 1) * batch), so a run resumed at step s sees the same rows in
the same order as one that never stopped, and every step has a full batch even when the data is small.
"""
import math
import random


class DataOrder:
    def __init__(self, num_rows: int, batch_size: int, seed: int):
        self.num_rows, self.batch_size, self.seed = num_rows, batch_size, seed
        self._epoch, self._order = -1, []

    def epoch_order(self, epoch: int) -> list[int]:
        if epoch != self._epoch:
            self._order = list(range(self.num_rows))
            random.Random(self.seed * 1_000_003 + epoch).shuffle(self._order)
            self._epoch = epoch
        return self._order

    def batch(self, step: int) -> list[int]:
        """Row indices of the global batch of optimizer step `step` (0-based)."""
        out = []
        for position in range(step * self.batch_size, (step + 1) * self.batch_size):
            epoch, i = divmod(position, self.num_rows)
            out.append(self.epoch_order(epoch)[i])
        return out

    def epoch_at(self, step: int) -> float:
        return step * self.batch_size / self.num_rows


def total_steps(num_rows: int, batch_size: int, epochs: float, max_steps: int | None) -> int:
    return max_steps or max(1, math.ceil(epochs * num_rows / batch_size))


def shard(indices: list[int], rank: int, world_size: int) -> list[int]:
    """This rank's contiguous share of a global batch."""
    per_rank = len(indices) // world_size
    return indices[rank * per_rank:(rank + 1) * per_rank]
