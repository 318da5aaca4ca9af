"""Fixed-size KV blocks with reference counts and automatic prefix caching.

A full block is identified by a chained hash of its tokens and every token before it, rooted in the
LoRA adapter the sequence runs (keys and values differ per adapter). Freed blocks keep their contents
and stay findable until they are reused, least recently freed first.
"""
from collections import OrderedDict
from dataclasses import dataclass

from qwenkit.engine.sequence import Sequence


@dataclass(slots=True)
class Block:
    block_id: int
    ref_count: int = 0
    hash: int | None = None
    tokens: tuple[int, ...] = ()   # kept to rule out hash collisions


def chain_hash(prev: int | None, tokens: tuple[int, ...]) -> int:
    return hash((prev, tokens))


def root_hash(adapter: int) -> int | None:
    return hash(("lora", adapter)) if adapter else None


class BlockManager:
    def __init__(self, num_blocks: int, block_size: int):
        self.block_size = block_size
        self.blocks = [Block(i) for i in range(num_blocks)]
        self.free: OrderedDict[int, None] = OrderedDict((i, None) for i in range(num_blocks))
        self.cached: dict[int, int] = {}     # chain hash -> block id
        self.hits = self.lookups = 0

    @property
    def num_free_blocks(self) -> int:
        return len(self.free)

    def blocks_needed(self, num_tokens: int) -> int:
        return -(-num_tokens // self.block_size)

    # -- prefix cache ------------------------------------------------------------------------------------
    def _full_block_hashes(self, seq: Sequence, limit: int) -> list[tuple[int, tuple[int, ...]]]:
        out, prev = [], root_hash(seq.adapter)
        for start in range(0, limit - limit % self.block_size, self.block_size):
            tokens = tuple(seq.token_ids[start:start + self.block_size])
            prev = chain_hash(prev, tokens)
            out.append((prev, tokens))
        return out

    def _lookup(self, h: int, tokens: tuple[int, ...]) -> Block | None:
        block_id = self.cached.get(h)
        if block_id is None:
            return None
        block = self.blocks[block_id]
        return block if block.hash == h and block.tokens == tokens else None

    # -- allocation --------------------------------------------------------------------------------------
    def allocate(self, seq: Sequence, budget: int) -> bool:
        """Blocks for a new sequence's cached prefix plus up to `budget` tokens to compute, reusing cached
        full blocks of its prefix. The last token is always recomputed so the step yields its logits."""
        assert not seq.block_table
        reusable = []
        for h, tokens in self._full_block_hashes(seq, len(seq) - 1):
            self.lookups += 1
            block = self._lookup(h, tokens)
            if block is None:
                break
            self.hits += 1
            reusable.append(block)
        num_tokens = min(len(seq), len(reusable) * self.block_size + budget)
        fresh = self.blocks_needed(num_tokens) - len(reusable)
        if fresh > self.num_free_blocks - sum(1 for b in reusable if b.ref_count == 0):
            return False
        for block in reusable:
            if block.ref_count == 0:
                del self.free[block.block_id]
            block.ref_count += 1
            seq.block_table.append(block.block_id)
        seq.num_computed_tokens = len(reusable) * self.block_size
        seq.block_hashes = [b.hash for b in reusable]
        for _ in range(max(fresh, 0)):
            seq.block_table.append(self._take().block_id)
        return True

    def ensure_slots(self, seq: Sequence, num_tokens: int) -> bool:
        """Grow the block table to hold `num_tokens` tokens; False when the pool is exhausted."""
        missing = self.blocks_needed(num_tokens) - len(seq.block_table)
        if missing > self.num_free_blocks:
            return False
        for _ in range(missing):
            seq.block_table.append(self._take().block_id)
        return True

    def commit_full_blocks(self, seq: Sequence) -> None:
        """Register blocks whose tokens are all computed so later requests can share them."""
        bs = self.block_size
        for i in range(len(seq.block_hashes), seq.num_computed_tokens // bs):
            tokens = tuple(seq.token_ids[i * bs:(i + 1) * bs])
            h = chain_hash(seq.block_hashes[-1] if seq.block_hashes else root_hash(seq.adapter), tokens)
            seq.block_hashes.append(h)
            block = self.blocks[seq.block_table[i]]
            if block.hash is None:
                block.hash, block.tokens = h, tokens
                self.cached.setdefault(h, block.block_id)

    def release(self, seq: Sequence) -> None:
        for block_id in reversed(seq.block_table):  # the tail is the least likely to be shared: evict it first
            block = self.blocks[block_id]
            block.ref_count -= 1
            if block.ref_count == 0:
                self.free[block_id] = None
        seq.block_table.clear()
        seq.block_hashes.clear()

    def _take(self) -> Block:
        block_id, _ = self.free.popitem(last=False)
        block = self.blocks[block_id]
        if block.hash is not None and self.cached.get(block.hash) == block_id:
            del self.cached[block.hash]
        block.hash, block.tokens, block.ref_count = None, (), 1
        return block
