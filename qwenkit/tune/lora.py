"""LoRA: a frozen linear plus a trainable low-rank update, y = base(x) + dropout(x) @ A^T @ B^T * alpha / r."""
import math
from dataclasses import dataclass, field

import torch
from torch import nn

ALL_LINEARS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


@dataclass(slots=True)
class LoraConfig:
    """PEFT's defaults and names. Module names match by their last part (`q_proj`) or in full
    (`model.layers.0.self_attn.q_proj`). MoE expert projections are never adapted (PEFT cannot address
    them one by one in transformers 5's fused expert tensors either)."""
    r: int = 16
    alpha: float = 32.0
    dropout: float = 0.05
    target_modules: list[str] = field(default_factory=lambda: list(ALL_LINEARS))
    use_rslora: bool = False

    @property
    def scale(self) -> float:
        return self.alpha / (math.sqrt(self.r) if self.use_rslora else self.r)


@dataclass(slots=True)
class Part:
    """One adapted slice of the base's output rows, under its PEFT module name."""
    name: str
    start: int
    stop: int


class LoRALinear(nn.Module):
    """Wraps a frozen nn.Linear, Int8Linear or Int4Linear. A fused base (qkv_proj, gate_up_proj) carries one
    (A, B) pair per adapted part (q, k, v) so the adapter keeps PEFT's per-module keys; the parts' A matrices
    are stacked in `lora_A` [parts * r, in] so the input meets them in one matmul. B starts at zero."""

    def __init__(self, base: nn.Module, parts: list[Part], config: LoraConfig):
        super().__init__()
        self.base, self.parts = base, sorted(parts, key=lambda p: p.start)
        self.in_features, self.out_features = base.in_features, base.out_features
        self.r, self.alpha, self.use_rslora, self.scale = config.r, config.alpha, config.use_rslora, config.scale
        device = next(iter([*base.parameters(), *base.buffers()])).device
        self.lora_A = nn.Parameter(torch.empty(len(parts) * config.r, self.in_features, device=device))
        nn.init.kaiming_uniform_(self.lora_A, a=math.sqrt(5))  # fan_in is `in` per part, as in PEFT
        self.lora_B = nn.ParameterList(nn.Parameter(torch.zeros(p.stop - p.start, config.r, device=device))
                                       for p in self.parts)
        self.dropout = LoraDropout(config.dropout) if config.dropout > 0 else nn.Identity()
        # one part covering every output row (an unfused projection): its B is the whole update, no stacking
        self.single = len(self.parts) == 1 and (self.parts[0].start, self.parts[0].stop) == (0, self.out_features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.base(x)
        scale = self.scale
        if self.training and isinstance(self.dropout, LoraDropout):
            x, scale = self.dropout.mask(x), scale / (1 - self.dropout.p)  # the rescale rides on the small u
        device = x.device.type
        autocast = torch.is_autocast_enabled(device)
        if not autocast:  # under autocast the matmul picks the dtype itself
            x = x.to(self.lora_A.dtype)
        u = (x @ self.lora_A.T) * scale
        b = self.lora_B[0] if self.single else self.stacked_b()
        if autocast and y.dtype != torch.get_autocast_dtype(device):  # a quantized base keeps float32 outputs
            return y + (u @ b.T).to(y.dtype)
        if not autocast:
            u, b = u.to(y.dtype), b.to(y.dtype)
        # y + u B^T in one kernel; for a fused base B is block-diagonal, so each part's rows see only its own r
        return torch.addmm(y.reshape(-1, self.out_features), u.reshape(-1, u.shape[-1]), b.T).view(y.shape)

    def stacked_b(self) -> torch.Tensor:
        """[out_features, parts * r]: part i's B in its output rows and its own r columns, zeros elsewhere."""
        n, r, rows, row = len(self.lora_B), self.r, [], 0
        for i, (part, b) in enumerate(zip(self.parts, self.lora_B)):
            if part.start > row:
                rows.append(b.new_zeros(part.start - row, n * r))
            rows.append(torch.nn.functional.pad(b, (i * r, (n - 1 - i) * r)))
            row = part.stop
        if row < self.out_features:
            rows.append(rows[-1].new_zeros(self.out_features - row, n * r))
        return torch.cat(rows)

    def pair(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Part i's (A [r, in], B [out_i, r])."""
        return self.lora_A[i * self.r:(i + 1) * self.r], self.lora_B[i]

    def delta(self) -> torch.Tensor:
        """The update B @ A * scale for the whole base weight [out, in], in float32."""
        full = torch.zeros(self.out_features, self.in_features, device=self.lora_A.device)
        for i, part in enumerate(self.parts):
            a, b = self.pair(i)
            full[part.start:part.stop] = lora_delta(a, b, self.scale)
        return full

    def extra_repr(self) -> str:
        return f"r={self.r}, alpha={self.alpha:g}, parts={[p.name.rsplit('.', 1)[-1] for p in self.parts]}"


class LoraDropout(nn.Module):
    """Dropout whose mask costs a quarter of a random draw per element: each 64-bit draw gives four 16-bit
    lanes, each compared with p * 65536. torch's bernoulli_ draws one float per element on one thread and
    took a sixth of a bf16 LoRA step on CPU; this keeps p exact to 1/65536 and uses the same seeded RNG."""

    def __init__(self, p: float):
        super().__init__()
        self.p = p
        self.threshold = round(p * 65536) - 32768  # lanes are int16: drop where lane < threshold

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.mask(x) * (1 / (1 - self.p)) if self.training else x

    def mask(self, x: torch.Tensor) -> torch.Tensor:
        """x with the dropped elements zeroed, not rescaled (LoRALinear folds 1 / (1 - p) into its scale)."""
        n = x.numel()
        words = torch.randint(-2**63, 2**63 - 1, ((n + 3) // 4,), dtype=torch.int64, device=x.device)
        keep = words.view(torch.int16)[:n].view(x.shape) >= self.threshold
        return x * keep

    def extra_repr(self) -> str:
        return f"p={self.p}"


def lora_delta(a: torch.Tensor, b: torch.Tensor, scale: float) -> torch.Tensor:
    return (b.detach().float() @ a.detach().float()) * scale
