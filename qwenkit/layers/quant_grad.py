"""Backward through frozen quantized linears: the gradient w.r.t. the input only (QLoRA-style training).

The packed kernels have no backward, so grad_x = grad_y @ W is computed from the weights dequantized a
block of rows at a time. The CPU int4 packing interleaves rows in blocks whose size depends on the CPU's
vector width; its layout is learned from the packer itself and checked on a probe before it is trusted.
"""
from functools import cache

import torch

CHUNK_BYTES = 32 << 20
INT4_TILES = 2


class QuantizedMatmul(torch.autograd.Function):
    """y = x @ W^T on a quantized linear's kernel; backward gives x its gradient, W none (it is frozen)."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, linear) -> torch.Tensor:
        ctx.linear, ctx.dtype = linear, x.dtype
        return linear.matmul(x)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        return input_grad(ctx.linear, grad).to(ctx.dtype), None


def input_grad(linear, grad: torch.Tensor) -> torch.Tensor:
    """grad [M, out] @ W [out, in], dequantizing W in row blocks of about CHUNK_BYTES."""
    grad = grad.float()
    if not linear.dequantizable:
        return _input_grad_by_kernel(linear, grad)
    out = grad.new_zeros(grad.shape[0], linear.in_features)
    rows = max(128, CHUNK_BYTES // (4 * linear.in_features) // 128 * 128)  # whole int4 blocks
    for start in range(0, linear.out_features, rows):
        stop = min(start + rows, linear.out_features)
        out.addmm_(grad[:, start:stop], linear.dequantize(start, stop))
    return out


def _input_grad_by_kernel(linear, grad: torch.Tensor) -> torch.Tensor:
    """Slow but layout-free: the kernel applied to rows of the identity reads off columns of W."""
    out = grad.new_empty(grad.shape[0], linear.in_features)
    eye = torch.eye(linear.in_features, dtype=torch.bfloat16, device=grad.device)
    step = max(1, CHUNK_BYTES // (4 * linear.out_features))
    for start in range(0, linear.in_features, step):
        columns = linear.matmul(eye[start:start + step]).float()  # W[:, start:start+step]^T
        out[:, start:start + step] = grad @ columns.T
    return out


def pack_int4(q: torch.Tensor) -> torch.Tensor:
    return torch.ops.aten._convert_weight_to_int4pack_for_cpu(q, INT4_TILES)


@cache
def _slot_rows(rows: int) -> torch.Tensor:
    """Within one packed block of `rows` rows: the row held by each nibble (low of byte j = slot 2j)."""
    n = torch.arange(rows, dtype=torch.int32)
    packed = pack_int4(torch.stack([n % 16, n // 16], dim=1)).flatten()
    nibbles = torch.stack([packed & 15, packed >> 4], dim=-1).reshape(2, rows).long()
    return nibbles[0] + 16 * nibbles[1]


def _unpack(packed: torch.Tensor, n: int, k: int, block: int, start: int, stop: int) -> torch.Tensor:
    """Rows [start, stop) of q [n, k] (0..15) from the kernel's packed bytes; start is a multiple of block.
    Each block of rows is stored k-major: for each k, the block's nibbles in slot order."""
    flat, full, pieces = packed.view(-1), n // block * block, []
    if min(stop, full) > start:
        end = min(stop, full)
        count = (end - start) // block
        nib = flat[start * k // 2:end * k // 2].view(count, k, block // 2)
        nib = torch.stack([nib & 15, nib >> 4], dim=-1).reshape(count, k, block)
        q = torch.empty(count, block, k, dtype=torch.uint8)
        q[:, _slot_rows(block)] = nib.transpose(1, 2)
        pieces.append(q.reshape(-1, k))
    if stop > full:
        tail = n - full
        nib = flat[full * k // 2:].view(k, tail // 2)
        q = torch.empty(tail, k, dtype=torch.uint8)
        q[_slot_rows(tail)] = torch.stack([nib & 15, nib >> 4], dim=-1).reshape(k, tail).T
        pieces.append(q)
    return torch.cat(pieces)


@cache
def int4_block() -> int | None:
    """Rows per packed block on this CPU (64 with AVX-512, 32 otherwise), or None if the layout is unknown."""
    probe = torch.randint(0, 16, (144, 6), dtype=torch.int32, generator=torch.Generator().manual_seed(0))
    packed = pack_int4(probe)
    for block in (64, 32, 16, 128):
        try:
            if torch.equal(_unpack(packed, 144, 6, block, 0, 144).int(), probe):
                return block
        except (IndexError, RuntimeError):
            continue
    return None


def unpack_int4(packed: torch.Tensor, n: int, k: int, start: int, stop: int) -> torch.Tensor:
    """Rows [start, stop) of the 4-bit codes [n, k]; start must be a multiple of int4_block()."""
    block = int4_block()
    if block is None or start % block:
        raise ValueError(f"cannot unpack int4 rows from {start} (block {block})")
    return _unpack(packed, n, k, block, start, stop)
