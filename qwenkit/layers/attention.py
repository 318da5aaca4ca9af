from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from qwenkit.config import ModelConfig
from qwenkit.layers.norm import RMSNorm
from qwenkit.layers.rotary import rotate


@dataclass(slots=True)
class Context:
    """What every layer of one forward shares: rope tables for the new tokens, their first position
    (positions are consecutive), and the mask when a chunk attends to an earlier cached prefix."""
    cos: torch.Tensor
    sin: torch.Tensor
    start: int
    mask: torch.Tensor | None = None
    paged: "PagedBatch | None" = None  # the batching engine's paged cache layout  # noqa: F821
    spans: list[tuple[int, int]] | None = None  # a packed training row's examples: each attends causally alone


class Attention(nn.Module):
    """GQA self-attention; q/k/v bias (Qwen2) and per-head q/k RMSNorm (Qwen3) switched by config."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        h, d = config.hidden_size, config.head_dim
        self.num_heads, self.num_kv_heads, self.head_dim = config.num_attention_heads, config.num_key_value_heads, d
        self.q_proj = nn.Linear(h, self.num_heads * d, bias=config.attention_bias)
        self.k_proj = nn.Linear(h, self.num_kv_heads * d, bias=config.attention_bias)
        self.v_proj = nn.Linear(h, self.num_kv_heads * d, bias=config.attention_bias)
        self.o_proj = nn.Linear(self.num_heads * d, h, bias=False)
        self.qkv_proj: nn.Module | None = None  # set by fuse_projections for inference
        self.q_norm = RMSNorm(d, config.rms_norm_eps) if config.qk_norm else None
        self.k_norm = RMSNorm(d, config.rms_norm_eps) if config.qk_norm else None

    def forward(self, x: torch.Tensor, ctx: Context, kv: tuple[torch.Tensor, torch.Tensor] | None) -> torch.Tensor:
        b, t, _ = x.shape
        q, k, v = self.rotated_qkv(x, ctx)
        if ctx.paged is not None:  # it takes [1, N, heads, d]
            return self.o_proj(ctx.paged.attend(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2), kv))
        if ctx.spans is not None:
            return self.o_proj(packed_attention(q, k, v, ctx.spans).transpose(1, 2).reshape(b, t, -1))
        if kv is not None:
            k, v = self.append(kv, k, v, ctx.start)
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=ctx.mask, is_causal=t > 1 and ctx.mask is None,
                                             enable_gqa=True)
        return self.o_proj(out.view(b, 1, -1) if t == 1 else out.transpose(1, 2).reshape(b, t, -1))

    @staticmethod
    def append(kv: tuple[torch.Tensor, torch.Tensor], k: torch.Tensor, v: torch.Tensor,
               start: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Write k, v [B, kv_heads, T, d] at `start`; return the cache up to and including them."""
        k_cache, v_cache = kv
        b, _, t, _ = k.shape
        if b != k_cache.shape[0]:
            k_cache, v_cache = k_cache[:b], v_cache[:b]
        k_cache.narrow(2, start, t).copy_(k)
        v_cache.narrow(2, start, t).copy_(v)
        return k_cache.narrow(2, 0, start + t), v_cache.narrow(2, 0, start + t)

    def rotated_qkv(self, x: torch.Tensor, ctx: Context) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """q [B, heads, T, d] and k, v [B, kv_heads, T, d], rope applied to q and k."""
        h, kvh, d = self.num_heads, self.num_kv_heads, self.head_dim
        if self.qkv_proj is None:
            q, k, v = self.q_proj(x), self.k_proj(x), self.v_proj(x)
        else:
            qkv = self.qkv_proj(x)
            v = qkv[..., (h + kvh) * d:]
            if self.q_norm is None:  # q and k sit side by side: one rope call for both
                qk = rotate(split_heads(qkv[..., :(h + kvh) * d], h + kvh), ctx.cos, ctx.sin)
                return qk[:, :h], qk[:, h:], split_heads(v, kvh)
            q, k = qkv[..., :h * d], qkv[..., h * d:(h + kvh) * d]
        q, k, v = split_heads(q, h), split_heads(k, kvh), split_heads(v, kvh)
        if self.q_norm is not None:
            q, k = self.q_norm(q), self.k_norm(k)
        return rotate(q, ctx.cos, ctx.sin), rotate(k, ctx.cos, ctx.sin), v


def packed_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, spans: list[tuple[int, int]]) -> torch.Tensor:
    """Causal attention within each example of a packed row: one causal kernel call per example skips every
    masked block, where a block-diagonal mask would make the kernel visit the whole row."""
    return torch.cat([F.scaled_dot_product_attention(q[:, :, a:b], k[:, :, a:b], v[:, :, a:b], is_causal=True,
                                                     enable_gqa=True) for a, b in spans], dim=2)


def split_heads(x: torch.Tensor, heads: int) -> torch.Tensor:
    """[B, T, heads * d] -> [B, heads, T, d]; a plain view for the single token of a decode step."""
    b, t, _ = x.shape
    return x.view(b, heads, 1, -1) if t == 1 else x.view(b, t, heads, -1).transpose(1, 2)
