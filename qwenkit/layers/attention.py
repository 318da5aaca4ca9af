import torch
import torch.nn.functional as F
from torch import nn

from qwenkit.config import ModelConfig
from qwenkit.layers.norm import RMSNorm
from qwenkit.layers.rotary import apply_rotary


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

    def forward(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor,
                positions: torch.Tensor, kv: tuple[torch.Tensor, torch.Tensor] | None) -> torch.Tensor:
        b, t, _ = x.shape
        if self.qkv_proj is not None:
            q, k, v = self.qkv_proj(x).split(self.split_sizes, dim=-1)
        else:
            q, k, v = self.q_proj(x), self.k_proj(x), self.v_proj(x)
        q = q.view(b, t, self.num_heads, self.head_dim)
        k = k.view(b, t, self.num_kv_heads, self.head_dim)
        v = v.view(b, t, self.num_kv_heads, self.head_dim).transpose(1, 2)
        if self.q_norm is not None:
            q, k = self.q_norm(q), self.k_norm(k)
        q = apply_rotary(q.transpose(1, 2), cos, sin)
        k = apply_rotary(k.transpose(1, 2), cos, sin)
        causal = True
        if kv is not None:
            k_cache, v_cache = kv
            k_cache[:b, :, positions] = k
            v_cache[:b, :, positions] = v
            end = int(positions[-1]) + 1
            k, v = k_cache[:b, :, :end], v_cache[:b, :, :end]
            causal = end == t
        mask = None
        if not causal and t > 1:
            mask = torch.arange(k.shape[2], device=x.device)[None, :] <= positions[:, None]
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, is_causal=causal and t > 1, enable_gqa=True)
        return self.o_proj(out.transpose(1, 2).reshape(b, t, -1))
