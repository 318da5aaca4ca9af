"""Paged KV bookkeeping: allocation, prefix reuse with collision checks, LRU eviction, no leaks."""
import random

import qwenkit.engine.block_manager as bm
from qwenkit.engine.block_manager import BlockManager
from qwenkit.engine.scheduler import Scheduler
from qwenkit.engine.sequence import Sequence, Status
from qwenkit.sampling_params import SamplingParams

P = SamplingParams(max_tokens=4)


def _computed(blocks: BlockManager, seq: Sequence) -> None:
    seq.num_computed_tokens = len(seq)
    blocks.commit_full_blocks(seq)


def test_allocate_and_release_return_every_block():
    blocks = BlockManager(num_blocks=8, block_size=4)
    seq = Sequence(list(range(10)), P)
    assert blocks.allocate(seq, budget=100) and len(seq.block_table) == 3
    assert blocks.num_free_blocks == 5
    blocks.release(seq)
    assert blocks.num_free_blocks == 8 and not seq.block_table


def test_shared_prefix_reuses_full_blocks_only():
    blocks = BlockManager(num_blocks=16, block_size=4)
    first = Sequence(list(range(10)), P)
    blocks.allocate(first, 100)
    _computed(blocks, first)
    second = Sequence(list(range(9)) + [99, 98], P)
    blocks.allocate(second, 100)
    assert second.block_table[:2] == first.block_table[:2] and second.block_table[2] != first.block_table[2]
    assert second.num_computed_tokens == 8
    assert blocks.blocks[first.block_table[0]].ref_count == 2


def test_whole_prompt_cached_still_recomputes_last_token():
    blocks = BlockManager(num_blocks=16, block_size=4)
    first = Sequence(list(range(8)), P)
    blocks.allocate(first, 100)
    _computed(blocks, first)
    again = Sequence(list(range(8)), P)
    blocks.allocate(again, 100)
    assert again.num_computed_tokens == 4  # the block holding the last token is computed again


def test_hash_collision_is_not_a_hit(monkeypatch):
    monkeypatch.setattr(bm, "chain_hash", lambda prev, tokens: 42)
    blocks = BlockManager(num_blocks=16, block_size=4)
    first = Sequence([1, 2, 3, 4, 5], P)
    blocks.allocate(first, 100)
    _computed(blocks, first)
    other = Sequence([7, 7, 7, 7, 5], P)
    blocks.allocate(other, 100)
    assert other.num_computed_tokens == 0 and other.block_table[0] != first.block_table[0]


def test_freed_blocks_stay_cached_until_evicted_least_recent_first():
    blocks = BlockManager(num_blocks=4, block_size=4)
    old = Sequence(list(range(5)), P)
    blocks.allocate(old, 100)
    _computed(blocks, old)
    blocks.release(old)
    reuse = Sequence(list(range(4)) + [50, 51], P)
    blocks.allocate(reuse, 100)
    assert reuse.num_computed_tokens == 4  # found after release
    blocks.release(reuse)
    filler = Sequence(list(range(100, 116)), P)
    blocks.allocate(filler, 100)  # takes all 4 blocks: every cached one is evicted
    assert not blocks.cached or all(blocks.blocks[b].ref_count for b in blocks.cached.values())
    blocks.release(filler)
    late = Sequence(list(range(6)), P)
    blocks.allocate(late, 100)
    assert late.num_computed_tokens == 0


def test_thousand_random_operations_leak_nothing():
    rng = random.Random(0)
    blocks = BlockManager(num_blocks=32, block_size=4)
    scheduler = Scheduler(blocks, max_num_seqs=6, max_num_batched_tokens=24)
    prefixes = [[rng.randrange(50) for _ in range(rng.randrange(1, 12))] for _ in range(4)]
    for _ in range(1000):
        op = rng.random()
        if op < 0.3:
            prompt = rng.choice(prefixes) + [rng.randrange(50) for _ in range(rng.randrange(1, 20))]
            scheduler.add(Sequence(prompt, P))
        elif op < 0.45 and (scheduler.running or scheduler.waiting):
            seq = rng.choice(scheduler.running + list(scheduler.waiting))
            scheduler.finish(seq, "abort")
        else:
            for chunk in scheduler.schedule():
                seq = chunk.seq
                seq.num_computed_tokens += chunk.length
                blocks.commit_full_blocks(seq)
                if chunk.samples:
                    seq.token_ids.append(rng.randrange(50))
                    if seq.num_output_tokens >= 6:
                        scheduler.finish(seq, "length")
        in_use = sum(len(s.block_table) for s in scheduler.running)
        assert sum(b.ref_count > 0 for b in blocks.blocks) <= in_use
        assert all(s.status == Status.RUNNING for s in scheduler.running)
    for seq in list(scheduler.running) + list(scheduler.waiting):
        scheduler.finish(seq, "abort")
    assert blocks.num_free_blocks == 32 and all(b.ref_count == 0 for b in blocks.blocks)


def test_scheduler_respects_budget_chunks_prefill_and_preempts():
    blocks = BlockManager(num_blocks=6, block_size=4)
    scheduler = Scheduler(blocks, max_num_seqs=4, max_num_batched_tokens=8)
    a, b = Sequence(list(range(10)), P), Sequence(list(range(20, 30)), P)
    scheduler.add(a)
    scheduler.add(b)
    chunks = scheduler.schedule()
    assert [(c.seq, c.start, c.length) for c in chunks] == [(a, 0, 8)]
    a.num_computed_tokens = 8
    chunks = scheduler.schedule()
    assert [(c.seq, c.start, c.length) for c in chunks] == [(a, 8, 2), (b, 0, 6)]
    assert chunks[0].samples and not chunks[1].samples
    a.num_computed_tokens, b.num_computed_tokens = 10, 6
    a.token_ids += [1, 2, 3, 4, 5, 6, 7]  # a grows past the pool: the newest sequence (b) is preempted
    chunks = scheduler.schedule()
    assert b.num_preemptions == 1 and b.num_computed_tokens == 0
    assert [(c.seq, c.start, c.length) for c in chunks] == [(a, 10, 7), (b, 0, 1)]  # b restarts in the leftovers
