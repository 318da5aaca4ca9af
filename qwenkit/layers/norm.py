import torch
import torch.nn.functional as F
from torch import nn


class RMSNorm(nn.Module):
    """Computed in fp32, cast back, then scaled by the weight (no 1+w), as Qwen and Llama do."""

    def __init__(self, dim: int, eps: float = 1e-6):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dtype == torch.float32 and self.weight.dtype == torch.float32:
            return F.rms_norm(x, self.weight.shape, self.weight, self.eps)  # same rounding, fewer Python-level ops
        h = F.rms_norm(x.float(), self.weight.shape, None, self.eps)
        return self.weight * h.to(x.dtype)
