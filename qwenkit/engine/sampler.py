"""Logits -> next tokens: penalties, temperature, top-k, top-p, min-p, seeded sampling, logprobs."""
import torch

from qwenkit.sampling_params import SamplingParams


class Sampler:
    """Per-request state: token counts for penalties (kept on device, updated incrementally) and the RNG."""

    def __init__(self, params: SamplingParams, vocab_size: int, prompt_ids: list[int], rows: int, device):
        self.params = params
        self.generator = None
        if not params.greedy:
            self.generator = torch.Generator(device=device)
            self.generator.manual_seed(params.seed if params.seed is not None
                                       else int(torch.randint(2**62, (1,)).item()))
        self.output_counts = self.seen = self.bias = None
        if params.penalized:
            self.output_counts = torch.zeros(rows, vocab_size, device=device)
            self.seen = torch.zeros(rows, vocab_size, dtype=torch.bool, device=device)
            self.seen[:, torch.tensor(prompt_ids, dtype=torch.long, device=device)] = True
            if params.logit_bias:
                self.bias = torch.zeros(vocab_size, device=device)
                ids = torch.tensor(list(params.logit_bias), dtype=torch.long, device=device)
                self.bias[ids] = torch.tensor(list(params.logit_bias.values()), device=device)

    def __call__(self, logits: torch.Tensor, banned: list[int] | None = None,
                 allowed: torch.Tensor | None = None) -> torch.Tensor:
        """logits [rows, vocab] fp32 -> token ids [rows]; `allowed` [vocab] bool masks the rest (grammars)."""
        logits = self.penalize(logits)
        if banned:
            logits[:, banned] = float("-inf")
        if allowed is not None:
            logits = logits.masked_fill(~allowed, float("-inf"))
        p = self.params
        if p.greedy:
            return logits.argmax(dim=-1)
        logits = logits / p.temperature
        if p.top_k > 0 and p.top_k < logits.shape[-1]:
            kth = logits.topk(p.top_k, dim=-1).values[:, -1:]
            logits = logits.masked_fill(logits < kth, float("-inf"))
        probs = logits.softmax(dim=-1)
        if p.top_p < 1.0:
            probs = _top_p(probs, p.top_p)
        if p.min_p > 0:
            probs = probs.masked_fill(probs < p.min_p * probs.max(dim=-1, keepdim=True).values, 0.0)
        return torch.multinomial(probs, 1, generator=self.generator).squeeze(-1)

    def penalize(self, logits: torch.Tensor) -> torch.Tensor:
        p = self.params
        if self.output_counts is None:
            return logits
        if p.repetition_penalty != 1.0:
            scaled = torch.where(logits > 0, logits / p.repetition_penalty, logits * p.repetition_penalty)
            logits = torch.where(self.seen, scaled, logits)
        if p.frequency_penalty:
            logits = logits - p.frequency_penalty * self.output_counts
        if p.presence_penalty:
            logits = logits - p.presence_penalty * (self.output_counts > 0).float()
        if self.bias is not None:
            logits = logits + self.bias
        return logits

    def record(self, tokens: torch.Tensor) -> None:
        if self.output_counts is not None:
            rows = torch.arange(tokens.shape[0], device=tokens.device)
            self.output_counts[rows, tokens] += 1
            self.seen[rows, tokens] = True


def _top_p(probs: torch.Tensor, top_p: float) -> torch.Tensor:
    sorted_probs, order = probs.sort(dim=-1, descending=True)
    cumulative = sorted_probs.cumsum(dim=-1)
    drop = cumulative - sorted_probs > top_p  # keep the smallest set whose mass reaches top_p
    sorted_probs = sorted_probs.masked_fill(drop, 0.0)
    return torch.zeros_like(probs).scatter_(-1, order, sorted_probs)


def token_logprobs(logits: torch.Tensor, tokens: torch.Tensor, top: int) -> list[tuple[float, list[tuple[int, float]]]]:
    """Raw model logprobs of the chosen tokens and the `top` most likely alternatives, per row."""
    logp = logits.float().log_softmax(dim=-1)
    chosen = logp.gather(-1, tokens[:, None]).squeeze(-1).tolist()
    if top <= 0:
        return [(c, []) for c in chosen]
    values, ids = logp.topk(top, dim=-1)
    return [(c, list(zip(i, v))) for c, i, v in zip(chosen, ids.tolist(), values.tolist())]
