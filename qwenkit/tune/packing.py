"""Short examples packed into rows of at most max_length tokens, kept apart by per-example positions and
segment ids (CausalLM.packed_hidden_states masks attention across segments), and rows collated into tensors.

`labels` are already shifted: labels[i] is the target of position i (the next token when that token is
trained on), -100 where there is none, including each example's last position. Compute the loss as
cross_entropy(logits.flatten(0, 1), labels.flatten(), ignore_index=-100) with no further shift."""
import random
from bisect import bisect_left, insort
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from qwenkit.tune.problems import DataError
from qwenkit.tune.render import TokenizedExample

IGNORE = -100


@dataclass(slots=True)
class PackedRow:
    input_ids: list[int]
    labels: list[int]       # shifted targets: labels[i] is what position i predicts, IGNORE for none
    positions: list[int]    # restart at 0 for each example
    segments: list[int]     # which example of the row a token belongs to: 0, 1, 2, ...
    examples: list[int]     # indices of the packed examples in `items`

    def __len__(self) -> int:
        return len(self.input_ids)

    @property
    def targets(self) -> int:
        return sum(label != IGNORE for label in self.labels)


def pack(items: Sequence[TokenizedExample], max_length: int, seed: int = 0, enabled: bool = True) -> list[PackedRow]:
    """Rows in a seeded random order. Packing shuffles the examples, then places them longest first, each in
    the fullest row it fits (best-fit decreasing); with enabled=False each example is a row of its own."""
    too_long = [f"{item.source}:{item.line}" for item in items if len(item.ids) > max_length]
    if too_long:
        raise DataError([f"{place}: longer than max_length {max_length}" for place in too_long],
                        "tokenize with the same max_length as you pack with")
    rng = random.Random(seed)
    order = list(range(len(items)))
    rng.shuffle(order)
    if not enabled:
        return [build_row(items, [i]) for i in order]
    groups = best_fit(order, [len(item.ids) for item in items], max_length)
    rng.shuffle(groups)
    return [build_row(items, group) for group in groups]


def best_fit(order: list[int], lengths: list[int], max_length: int) -> list[list[int]]:
    groups: list[list[int]] = []
    free: list[tuple[int, int]] = []   # (space left, group), sorted
    for i in sorted(order, key=lambda i: -lengths[i]):  # stable: equal lengths keep the shuffled order
        at = bisect_left(free, (lengths[i], -1))
        if at < len(free):
            space, g = free.pop(at)
        else:
            space, g = max_length, len(groups)
            groups.append([])
        groups[g].append(i)
        if space > lengths[i]:
            insort(free, (space - lengths[i], g))
    return groups


def build_row(items: Sequence[TokenizedExample], group: list[int]) -> PackedRow:
    row = PackedRow([], [], [], [], group)
    for segment, i in enumerate(group):
        item = items[i]
        row.input_ids += item.ids
        row.labels += item.labels()
        row.positions += range(len(item.ids))
        row.segments += [segment] * len(item.ids)
    return row


def collate(rows: Sequence[PackedRow], pad_id: int = 0, length: int | None = None,
            multiple_of: int = 1) -> dict[str, torch.Tensor]:
    """Rows padded to the longest (or to `length`), rounded up to `multiple_of`: int64 input_ids, labels,
    positions, segments [B, T]. Padding is a segment of its own with IGNORE labels, so it neither attends to
    nor disturbs real tokens. Rounding keeps the set of shapes small: on CPU every new sequence length makes
    oneDNN build (JIT) new kernels, which cost more than the few padded tokens."""
    width = max([len(row) for row in rows] + [length or 0])
    width = -(-width // multiple_of) * multiple_of
    pad_segment = max(max(row.segments, default=0) for row in rows) + 1

    def padded(values: list[int], fill: int) -> list[int]:
        return values + [fill] * (width - len(values))

    return {"input_ids": torch.tensor([padded(r.input_ids, pad_id) for r in rows]),
            "labels": torch.tensor([padded(r.labels, IGNORE) for r in rows]),
            "positions": torch.tensor([r.positions + list(range(width - len(r))) for r in rows]),
            "segments": torch.tensor([padded(r.segments, pad_segment) for r in rows])}
