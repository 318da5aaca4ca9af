"""Packing examples into rows: every example once, shifted labels, restarting positions, seeded order, and a
packed row's logits equal to each example's own (no attention across examples)."""
import json

import pytest
import torch

from qwenkit.loading import load_checkpoint
from qwenkit.models import load_model
from qwenkit.tune.packing import collate, pack
from qwenkit.tune.problems import DataError
from qwenkit.tune.records import load_examples
from qwenkit.tune.render import TokenizedExample, tokenize_examples


def item(length: int, line: int, first: int = 1) -> TokenizedExample:
    """Ids first, first+1, ...; the second half trained on (never the first token, as in real examples)."""
    mask = [i >= max(1, length // 2) for i in range(length)]
    return TokenizedExample(list(range(first, first + length)), mask, line)


LENGTHS = [7, 3, 5, 5, 2, 8, 4, 6, 10, 1, 9]   # 60 tokens: 6 full rows of 10 exist


def test_rows_hold_every_example_once_with_shifted_labels():
    items = [item(n, line, first=100 * line) for line, n in enumerate(LENGTHS, 1)]
    rows = pack(items, 10, seed=3)
    assert len(rows) == 6 and all(len(row) == 10 for row in rows)
    assert sorted(i for row in rows for i in row.examples) == list(range(len(items)))
    for row in rows:
        at = 0
        for segment, i in enumerate(row.examples):
            ex, n = items[i], len(items[i].ids)
            assert row.input_ids[at:at + n] == ex.ids
            assert row.positions[at:at + n] == list(range(n))
            assert row.segments[at:at + n] == [segment] * n
            expected = [ex.ids[k + 1] if ex.labels_mask[k + 1] else -100 for k in range(n - 1)] + [-100]
            assert row.labels[at:at + n] == expected
            at += n
    assert sum(row.targets for row in rows) == sum(sum(x.labels_mask) for x in items)


def test_order_is_seeded_and_packing_can_be_off():
    items = [item(n, line) for line, n in enumerate(LENGTHS * 3, 1)]
    first = [row.examples for row in pack(items, 16, seed=1)]
    assert first == [row.examples for row in pack(items, 16, seed=1)]
    assert first != [row.examples for row in pack(items, 16, seed=2)]
    single = pack(items, 16, seed=1, enabled=False)
    assert sorted(row.examples[0] for row in single) == list(range(len(items)))
    assert all(len(row.examples) == 1 and row.input_ids == items[row.examples[0]].ids for row in single)
    assert [row.examples for row in single] != [[i] for i in range(len(items))]
    with pytest.raises(DataError, match="longer than max_length 8"):
        pack(items, 8)


def test_collate_pads_with_a_segment_of_its_own():
    rows = pack([item(3, 1), item(2, 2), item(4, 3)], 5, seed=0)
    batch = collate(rows, pad_id=7, length=6)
    assert {k: tuple(v.shape) for k, v in batch.items()} == {k: (2, 6) for k in
                                                             ("input_ids", "labels", "positions", "segments")}
    assert all(v.dtype == torch.int64 for v in batch.values())
    for b, row in enumerate(rows):
        n = len(row)
        assert batch["input_ids"][b].tolist() == row.input_ids + [7] * (6 - n)
        assert batch["labels"][b].tolist() == row.labels + [-100] * (6 - n)
        assert batch["positions"][b].tolist() == row.positions + list(range(6 - n))
        assert batch["segments"][b, n:].tolist() == [2] * (6 - n)   # rows use segments 0 and 1


def test_collate_rounds_the_width_up_to_a_multiple():
    rows = pack([item(3, 1), item(2, 2), item(4, 3)], 5, seed=0)
    assert collate(rows, multiple_of=4)["input_ids"].shape == (2, 8)
    assert collate(rows, multiple_of=5)["input_ids"].shape == (2, 5)   # already a multiple: no padding added
    assert collate(rows, multiple_of=1)["input_ids"].shape == (2, 5)


def test_packed_rows_match_each_example_alone(tiny_models, tmp_path):
    folder, _ = tiny_models("qwen3")
    checkpoint = load_checkpoint(folder)
    model = load_model(checkpoint)
    chats = [[{"role": "user", "content": "Hi!"}, {"role": "assistant", "content": "Hello there."}],
             [{"role": "user", "content": "Name three primes."}, {"role": "assistant", "content": "2, 3 and 5."}],
             [{"role": "user", "content": "Count to five in German, please."},
              {"role": "assistant", "content": "eins zwei drei vier fünf"}],
             [{"role": "user", "content": "Bye"}, {"role": "assistant", "content": "Goodbye!"}]]
    path = tmp_path / "data.jsonl"
    path.write_text("".join(json.dumps({"messages": m}) + "\n" for m in chats))
    items = tokenize_examples(checkpoint.tokenizer, load_examples(path), 48).items
    rows = pack(items, 48, seed=0)
    assert [len(row.examples) for row in rows] == [2, 2] and len(rows[0]) != len(rows[1])
    batch = collate(rows)
    with torch.no_grad():
        hidden = model.packed_hidden_states(batch["input_ids"], batch["positions"], batch["segments"])
        logits = model.lm_head(hidden).float()
    for b, row in enumerate(rows):
        at = 0
        for i in row.examples:
            ids = items[i].ids
            alone = model.logits(torch.tensor(ids))
            torch.testing.assert_close(logits[b, at:at + len(ids)], alone, atol=1e-4, rtol=1e-4)
            at += len(ids)
