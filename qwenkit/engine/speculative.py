"""Speculative decoding with a small draft model that shares the tokenizer; greedy-exact.

The draft proposes k tokens one at a time; the target scores all of them in one forward and keeps the
longest prefix it agrees with, plus its own token where they first differ. Output equals the target's
plain greedy decode; the speed-up is (accepted + 1) tokens per target forward.
"""
from collections.abc import Iterator
from dataclasses import dataclass

import torch

from qwenkit.engine.kv_cache import allocate_kv_cache
from qwenkit.engine.output_state import OutputState
from qwenkit.errors import InvalidRequestError, ModelLoadError
from qwenkit.models import CausalLM
from qwenkit.outputs import StreamDelta
from qwenkit.sampling_params import SamplingParams
from qwenkit.tokenizer import Tokenizer

PROBE = "Hello, world! 12345 naïve café 北京 <|im_start|>user\n  def f(x):\n\treturn x<|im_end|>"


@dataclass(slots=True)
class SpeculativeStats:
    proposed: int = 0
    accepted: int = 0
    target_forwards: int = 0

    @property
    def acceptance_rate(self) -> float:
        return self.accepted / self.proposed if self.proposed else 0.0

    @property
    def tokens_per_forward(self) -> float:
        """Tokens each verifying target forward gave (its accepted proposals plus its own): the speed-up's
        ceiling, before the draft's cost."""
        return (self.accepted + self.target_forwards) / self.target_forwards if self.target_forwards else 0.0


def check_same_tokenizer(target: Tokenizer, draft: Tokenizer, source: str) -> None:
    """The draft's ids must mean the target's tokens, or its proposals are noise: same size, same tokens at
    ids spread over the vocabulary, same ids for a probe text."""
    if len(draft) != len(target):
        problem = f"its tokenizer has {len(draft)} tokens and the target's {len(target)}"
    elif (any(draft.id_to_token(i) != target.id_to_token(i) for i in [*range(0, len(target), 251), len(target) - 1])
          or draft.encode(PROBE, allow_special=True) != target.encode(PROBE, allow_special=True)):
        problem = "its tokenizer gives other ids than the target's"
    else:
        return
    raise ModelLoadError(source, f"cannot be a draft for this model: {problem}",
                         "a draft must share the target's tokenizer; pick a smaller model of the same family")


class SpeculativeDecoder:
    def __init__(self, target: CausalLM, draft: CausalLM, tokenizer: Tokenizer, eos_token_ids: list[int],
                 max_model_len: int, num_draft_tokens: int = 4):
        if draft.config.vocab_size < len(tokenizer) or target.config.vocab_size < len(tokenizer):
            raise InvalidRequestError("draft", "the draft and target models must share the tokenizer")
        self.target, self.draft, self.tokenizer = target, draft, tokenizer
        self.eos_token_ids, self.max_model_len, self.k = eos_token_ids, max_model_len, num_draft_tokens
        self.stats = SpeculativeStats()

    @torch.inference_mode()
    def stream(self, prompt_ids: list[int], params: SamplingParams) -> Iterator[StreamDelta]:
        if not params.greedy or params.n != 1 or params.penalized:
            raise InvalidRequestError("sampling_params", "speculative decoding is greedy-exact: use temperature 0, "
                                      "n=1 and no penalties")
        budget = self.max_model_len - len(prompt_ids)
        if budget <= 0:
            raise InvalidRequestError("prompt", f"has {len(prompt_ids)} tokens but the context limit is "
                                      f"{self.max_model_len}")
        max_new = min(params.max_tokens or budget, budget)
        length = len(prompt_ids) + max_new + self.k + 1
        device = self.target.inv_freq.device
        t_cache = allocate_kv_cache(self.target.config, 1, length, self.target.dtype, device)
        d_cache = allocate_kv_cache(self.draft.config, 1, length, self.draft.dtype, device)
        prompt = torch.tensor([prompt_ids], device=device)
        positions = torch.arange(len(prompt_ids), device=device)
        next_token = int(self.target(prompt, positions, t_cache, last_only=True)[0, -1].argmax())
        self.draft(prompt, positions, d_cache, last_only=True)
        output = OutputState(0, self.tokenizer, params, self.eos_token_ids, max_new)
        position = len(prompt_ids)   # where next_token goes
        while True:
            yield output.advance(next_token)
            if output.finish_reason:
                return
            proposal = self._propose(next_token, position, d_cache)
            block = torch.tensor([[next_token, *proposal]], device=device)
            span = torch.arange(position, position + len(proposal) + 1, device=device)
            choices = self.target(block, span, t_cache, start=position)[0].argmax(-1).tolist()
            self.stats.target_forwards += 1
            self.stats.proposed += len(proposal)
            accepted = 0
            while accepted < len(proposal) and proposal[accepted] == choices[accepted]:
                accepted += 1
            self.stats.accepted += accepted
            for token in proposal[:accepted]:
                yield output.advance(token)
                if output.finish_reason:
                    return
            next_token = choices[accepted]
            position += accepted + 1
            if accepted == len(proposal):  # the draft never saw its last proposal: cache it now
                last = torch.tensor([[proposal[-1]]], device=device)
                self.draft(last, torch.tensor([position - 1], device=device), d_cache, start=position - 1)

    def _propose(self, token: int, position: int, cache) -> list[int]:
        device = self.draft.inv_freq.device
        proposal = []
        for i in range(self.k):
            logits = self.draft(torch.tensor([[token]], device=device), torch.tensor([position + i], device=device),
                                cache, start=position + i)
            token = int(logits[0, -1].argmax())
            proposal.append(token)
        return proposal
