"""The frozen base model of a LoRA run: float weights, or QLoRA-style int8/int4 decoder projections.

Quantized projections keep one (int8) or half a (int4) byte per weight and are dequantized to the activation
dtype on every call, forward and backward, so no float copy of a weight outlives its matmul. Embeddings, norms,
the MoE router and the output head stay in float: the loss head needs float rows anyway, and they are a small
share of a model's bytes. int4 groups of 32 match GGUF Q4_0/Q4_1 blocks, so a 4-bit GGUF base requantizes
(almost) exactly. Loading reads the float base first, then quantizes layer by layer. As for inference, q/k/v and
gate/up are fused into one matmul each; LoRA keeps one (A, B) pair per original projection inside the fused layer,
so adapters keep the Hugging Face module names that PEFT uses, and the parts sharing an input share its dropout.
"""
import torch
from torch import nn

from qwenkit.errors import InvalidRequestError
from qwenkit.layers.quant import int4_group_size, quantize_int4, quantize_int8
from qwenkit.loading import load_checkpoint
from qwenkit.models.decoder import CausalLM
from qwenkit.models.fuse import fuse_projections
from qwenkit.models.load import load_model


def load_base(ref: str, dtype: torch.dtype, device: torch.device):
    """A store name, folder or .gguf -> (frozen float CausalLM, Checkpoint). Quantize after adding LoRA."""
    from qwenkit.store import resolve
    resolved = resolve(ref)
    if resolved.adapter is not None:
        raise InvalidRequestError("model", f"{ref} already applies the adapter {resolved.adapter}; tune its base "
                                  "model instead")
    checkpoint = load_checkpoint(resolved.path)
    model = load_model(checkpoint, dtype, device, quant="none")
    fuse_projections(model)
    return model, checkpoint


def quantize_base(model: CausalLM, bits: int, group_size: int = 32) -> None:
    """Swap each decoder projection (inside LoRA layers too) for a FrozenQuantLinear, one at a time, so each
    float copy is freed as we go."""
    for layer in model.model.layers:
        for parent in list(layer.modules()):
            for name, child in list(parent.named_children()):
                if isinstance(child, nn.Linear) and name != "gate":
                    setattr(parent, name, FrozenQuantLinear(child.weight, child.bias, bits, group_size))


class FrozenQuantLinear(nn.Module):
    def __init__(self, weight: torch.Tensor, bias: torch.Tensor | None, bits: int, group_size: int = 32):
        super().__init__()
        self.out_features, self.in_features = weight.shape
        self.bits = bits
        self.group_size = int4_group_size(self.in_features, group_size) if bits == 4 else None
        if bits == 4 and self.group_size is None:
            bits = self.bits = 8  # no group size divides the width: int8 rows instead
        if bits == 8:
            q, scale = quantize_int8(weight)
            self.register_buffer("qweight", q)
            self.register_buffer("scale", scale)
            self.register_buffer("zero", None)
        else:
            q, scale, zero = quantize_int4(weight, self.group_size)
            self.register_buffer("qweight", (q[:, 0::2] | (q[:, 1::2] << 4)).to(torch.uint8))
            self.register_buffer("scale", scale)
            self.register_buffer("zero", zero)
        self.register_buffer("bias", None if bias is None else bias.detach().clone())

    @property
    def weight(self) -> torch.Tensor:
        """The dequantized weight (fp32), for code that reads `.weight` of a linear (shape, dtype, merging)."""
        return self.dequantize(torch.float32)

    def dequantize(self, dtype: torch.dtype) -> torch.Tensor:
        if self.bits == 8:
            return (self.qweight.to(dtype) * self.scale[:, None].to(dtype))
        q = torch.stack([self.qweight & 15, self.qweight >> 4], dim=-1).reshape(self.out_features, -1)
        groups = (q.to(torch.float32) - 8).view(self.out_features, -1, self.group_size)
        w = groups * self.scale[..., None] + self.zero[..., None]
        return w.reshape(self.out_features, self.in_features).to(dtype)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = _DequantMatmul.apply(x, self)
        return y if self.bias is None else y + self.bias.to(y.dtype)


class _DequantMatmul(torch.autograd.Function):
    """x @ W.T with a frozen W: backward needs only W, so it dequantizes again rather than save it."""

    @staticmethod
    def forward(ctx, x, layer):
        device = x.device.type
        dtype = torch.get_autocast_dtype(device) if torch.is_autocast_enabled(device) else x.dtype
        ctx.layer, ctx.dtype = layer, dtype
        with torch.autocast(device, enabled=False):
            return x.to(dtype) @ layer.dequantize(dtype).T

    @staticmethod
    def backward(ctx, grad):
        with torch.autocast(grad.device.type, enabled=False):
            return grad.to(ctx.dtype) @ ctx.layer.dequantize(ctx.dtype), None
