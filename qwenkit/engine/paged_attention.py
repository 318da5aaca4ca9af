"""Attention over a paged KV cache for a step of mixed prefill chunks and decodes.

Each layer's cache is a pair of [num_blocks * block_size, kv_heads, head_dim] tensors; a token at
position p of a sequence lives in slot block_table[p // block_size] * block_size + p % block_size.
Decodes are gathered into one padded batch; prefill chunks attend one by one.
"""
import torch
import torch.nn.functional as F

from qwenkit.engine.scheduler import Chunk


class PagedBatch:
    """Per-step layout shared by every layer: where new keys go and which slots each query reads."""

    def __init__(self, chunks: list[Chunk], block_size: int, device: torch.device):
        self.device = device
        offsets = torch.arange(block_size, device=device)
        positions, slots, self.prefills = [], [], []
        decode_rows, decode_slots, decode_lens = [], [], []
        row = 0
        for chunk in chunks:
            end = chunk.start + chunk.length
            table = torch.tensor(chunk.seq.block_table, device=device)
            seq_slots = (table[:, None] * block_size + offsets).flatten()[:end]
            positions.append(torch.arange(chunk.start, end, device=device))
            slots.append(seq_slots[chunk.start:])
            if chunk.length == 1:
                decode_rows.append(row)
                decode_slots.append(seq_slots)
                decode_lens.append(end)
            else:
                self.prefills.append((row, chunk.length, chunk.start, seq_slots))
            row += chunk.length
        self.num_tokens = row
        self.positions = torch.cat(positions)
        self.slot_mapping = torch.cat(slots)
        self.decode_rows = torch.tensor(decode_rows, dtype=torch.long, device=device)
        self.decode_gather = self.decode_attend = None
        if decode_rows:
            width = max(decode_lens)
            self.decode_gather = torch.stack([F.pad(s, (0, width - len(s)), value=int(s[-1])) for s in decode_slots])
            lens = torch.tensor(decode_lens, device=device)
            self.decode_attend = (torch.arange(width, device=device)[None, :] < lens[:, None])[:, None, None, :]

    def attend(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
               kv: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        """q [1, N, heads, d], k/v [1, N, kv_heads, d] -> [1, N, heads * d]; writes k/v into the cache."""
        k_cache, v_cache = kv
        k_cache.index_copy_(0, self.slot_mapping, k[0].to(k_cache.dtype))
        v_cache.index_copy_(0, self.slot_mapping, v[0].to(v_cache.dtype))
        q = q[0]
        heads, d = q.shape[1], q.shape[2]
        out = q.new_empty(self.num_tokens, heads * d)
        if self.decode_gather is not None:
            out[self.decode_rows] = self._decode(q[self.decode_rows], k_cache, v_cache)
        for row, length, start, slots in self.prefills:
            keys, values = k_cache[slots].transpose(0, 1), v_cache[slots].transpose(0, 1)   # [kvh, ctx, d]
            qc = q[row:row + length].transpose(0, 1)                                        # [h, T, d]
            mask = None
            if start:
                query_pos = torch.arange(start, start + length, device=q.device)
                mask = torch.arange(slots.shape[0], device=q.device)[None, :] <= query_pos[:, None]
            o = F.scaled_dot_product_attention(qc, keys.to(qc.dtype), values.to(qc.dtype), attn_mask=mask,
                                               is_causal=mask is None, enable_gqa=True)
            out[row:row + length] = o.transpose(0, 1).reshape(length, -1)
        return out[None]

    def _decode(self, q: torch.Tensor, k_cache: torch.Tensor, v_cache: torch.Tensor) -> torch.Tensor:
        """q [B, heads, d] against each row's gathered context -> [B, heads * d]. One fused SDPA call over the
        padded batch: 2-3x faster at 16 rows than einsum + masked softmax, which copied the context twice."""
        b, heads, d = q.shape
        keys = k_cache[self.decode_gather].transpose(1, 2)     # [B, kvh, W, d]
        values = v_cache[self.decode_gather].transpose(1, 2)
        o = F.scaled_dot_product_attention(q[:, :, None].to(keys.dtype), keys, values, attn_mask=self.decode_attend,
                                           enable_gqa=True)
        return o.reshape(b, heads * d).to(q.dtype)
