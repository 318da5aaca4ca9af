"""Cross-entropy through the output head without the batch's full logits.

Only supervised positions go through the head, and they go a chunk of rows at a time: the forward keeps one
logsumexp per row, the backward recomputes each chunk's logits. Peak extra memory is one chunk of fp32 logits
(at most LOGITS_BUDGET elements) instead of [B, T, vocab].
"""
import torch

IGNORE = -100
LOGITS_BUDGET = 1 << 22  # fp32 elements per chunk of logits: 16 MiB, under glibc's mmap threshold (reused pages)
# exp() of anything below this gives a float32 subnormal, and x86 CPUs compute and use subnormals 30-100x more
# slowly: exp over a chunk with 13% of them took 46 ms instead of 1.4. exp(-87) = 1.6e-38 is below float32's
# resolution next to the largest term (exp(0) = 1), so clamping there changes no sum, and no gradient by more
# than 1.6e-38 per logit.
EXP_FLOOR = -87.0


def supervised_rows(hidden: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """hidden [B, T, H] and labels [B, T] (the token each position predicts, IGNORE elsewhere) -> [N, H], [N]."""
    keep = labels != IGNORE
    return hidden[keep], labels[keep]


def chunk_rows(chunk: int, vocab_size: int) -> int:
    return max(1, min(chunk, LOGITS_BUDGET // vocab_size))


def head_cross_entropy(hidden: torch.Tensor, weight: torch.Tensor, targets: torch.Tensor, chunk: int = 1024,
                       dtype: torch.dtype | None = None) -> torch.Tensor:
    """Summed cross-entropy of `targets` [N] under logits hidden [N, H] @ weight [V, H].T, as a scalar.
    The matmuls run in `dtype` (default: hidden's); softmax and the sum in fp32 (fp64 for fp64 inputs).
    Gradients reach hidden and, when it requires them, the head weight."""
    dtype = dtype or hidden.dtype
    if hidden.shape[0] == 0:
        return (hidden.sum() * 0).float() + (weight.sum() * 0).float()  # zero, still connected to the graph
    return _HeadCrossEntropy.apply(hidden.to(dtype), weight.to(dtype), targets,
                                   chunk_rows(chunk, weight.shape[0]))


class _HeadCrossEntropy(torch.autograd.Function):
    @staticmethod
    def forward(ctx, hidden, weight, targets, rows):
        acc = torch.promote_types(hidden.dtype, torch.float32)
        with torch.autocast(hidden.device.type, enabled=False):
            lse = torch.empty(hidden.shape[0], dtype=acc, device=hidden.device)
            total = torch.zeros((), dtype=acc, device=hidden.device)
            for s in range(0, hidden.shape[0], rows):
                logits = (hidden[s:s + rows] @ weight.T).to(acc)
                lse[s:s + rows] = logsumexp(logits)
                total += (lse[s:s + rows] - logits.gather(1, targets[s:s + rows, None])[:, 0]).sum()
        ctx.save_for_backward(hidden, weight, targets, lse)
        ctx.rows = rows
        return total

    @staticmethod
    def backward(ctx, grad):
        hidden, weight, targets, lse = ctx.saved_tensors
        want_h, want_w = ctx.needs_input_grad[:2]
        grad_h = torch.empty_like(hidden) if want_h else None
        grad_w = torch.zeros(weight.shape, dtype=lse.dtype, device=weight.device) if want_w else None
        with torch.autocast(hidden.device.type, enabled=False):
            for s in range(0, hidden.shape[0], ctx.rows):
                h, t = hidden[s:s + ctx.rows], targets[s:s + ctx.rows]
                logits = (h @ weight.T).to(lse.dtype)
                p = (logits - lse[s:s + ctx.rows, None]).clamp_(min=EXP_FLOOR).exp_()  # softmax, minus one-hot:
                p[torch.arange(t.shape[0], device=t.device), t] -= 1
                p *= grad
                if want_h:
                    grad_h[s:s + ctx.rows] = p.to(weight.dtype) @ weight
                if want_w:
                    grad_w += p.T @ h.to(lse.dtype)
        return grad_h, grad_w.to(weight.dtype) if want_w else None, None, None


def logsumexp(logits: torch.Tensor) -> torch.Tensor:
    """torch.logsumexp over the last dim, without subnormal intermediates (see EXP_FLOOR)."""
    top = logits.amax(dim=-1, keepdim=True)
    return (logits - top).clamp_(min=EXP_FLOOR).exp_().sum(dim=-1).log_() + top[..., 0]
