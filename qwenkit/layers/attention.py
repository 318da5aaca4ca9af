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
        self.split_sizes = [self.num_heads * d, self.num_kv_heads * d, self.num_kv_heads * d]
        self.qkv_proj: nn.Module | None = None  # set by fuse_projections for inference
        self.q_norm = RMSNorm(d, config.rms_norm_eps) if config.qk_norm else None
        self.k_norm = RMSNorm(d, config.rms_norm_eps) if config.qk_norm else None

    def forward(self, x: torch.Tensor, ctx: Context, kv: tuple[torch.Tensor, torch.Tensor] | None) -> torch.Tensor:
        b, t, _ = x.shape
        q, k, v = self.rotated_qkv(x, ctx)
        if kv is None:
            out = F.scaled_dot_product_attention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2),
                                                 is_causal=t > 1, enable_gqa=True)
            return self.o_proj(out.transpose(1, 2).reshape(b, t, -1))
        k_cache, v_cache = kv
        if b != k_cache.shape[0]:
            k_cache, v_cache = k_cache[:b], v_cache[:b]
        end = ctx.start + t
        k_cache.narrow(2, ctx.start, t).copy_(k.transpose(1, 2))
        v_cache.narrow(2, ctx.start, t).copy_(v.transpose(1, 2))
        keys, values = k_cache.narrow(2, 0, end), v_cache.narrow(2, 0, end)
        if t == 1:
            return self.o_proj(self.decode_attention(q, keys, values))
        out = F.scaled_dot_product_attention(q.transpose(1, 2), keys, values, attn_mask=ctx.mask,
                                             is_causal=ctx.mask is None, enable_gqa=True)
        return self.o_proj(out.transpose(1, 2).reshape(b, t, -1))

    def rotated_qkv(self, x: torch.Tensor, ctx: Context) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """q [B, T, heads, d] and k, v [B, T, kv_heads, d], rope applied to q and k."""
        b, t, _ = x.shape
        h, kvh, d = self.num_heads, self.num_kv_heads, self.head_dim
        if self.qkv_proj is None:
            q, k, v = self.q_proj(x), self.k_proj(x), self.v_proj(x)
        else:
            qkv = self.qkv_proj(x)
            v = qkv[..., (h + kvh) * d:]
            if self.q_norm is None:  # q and k sit side by side: one rope call for both
                qk = rotate(qkv[..., :(h + kvh) * d].view(b, t, h + kvh, d), ctx.cos, ctx.sin)
                return qk[:, :, :h], qk[:, :, h:], v.view(b, t, kvh, d)
            q, k = qkv[..., :h * d], qkv[..., h * d:(h + kvh) * d]
        q, k, v = q.view(b, t, h, d), k.view(b, t, kvh, d), v.view(b, t, kvh, d)
        if self.q_norm is not None:
            q, k = self.q_norm(q), self.k_norm(k)
        return rotate(q, ctx.cos, ctx.sin), rotate(k, ctx.cos, ctx.sin), v

    def decode_attention(self, q: torch.Tensor, keys: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
        """One new token per row: the query heads that share a kv head form one small matmul,
        cheaper at T=1 than the flash kernel's tiling. q [B, 1, heads, d] -> [B, 1, heads * d]."""
        b, kvh, _, d = keys.shape
        q = q.reshape(b, kvh, self.num_heads // kvh, d)
        scores = torch.matmul(q, keys.transpose(-1, -2)).mul_(d ** -0.5)
        weights = scores.softmax(-1, dtype=torch.float32).to(values.dtype)
        return torch.matmul(weights, values).view(b, 1, -1)
