"""One decode step: a token per row through the model into its KV cache, returning fp32 logits.

Eager by default. With `compile=True` inductor fuses the small ops between the weight matmuls (norms,
rope, cache writes, residual adds, casts), which at one token per step cost about as much as the
matmuls themselves; the packed int4/int8 kernels and attention stay library calls. The graph is traced
with dynamic shapes, so one compile serves every position and cache length; a batch of more than one
row compiles once more. A step that fills the cache to its last slot runs eagerly, since the graph
specializes on a free slot remaining: callers grow the cache one step early. Compiling takes from
seconds (inductor's on-disk cache) to about a minute, so it pays off in long-running processes. If
compiling fails, the step warns once and stays eager.
"""
import logging
import warnings

import torch

from qwenkit.models import CausalLM

log = logging.getLogger(__name__)

INDUCTOR_OPTIONS = {"cpp_wrapper": True, "size_asserts": False}  # less Python per kernel launch


def decode(model: CausalLM, tokens: torch.Tensor, position: int,
           cache: list[tuple[torch.Tensor, torch.Tensor]]) -> torch.Tensor:
    """tokens [B] at `position` -> logits [B, vocab] fp32."""
    positions = torch.arange(position, position + 1, device=tokens.device)
    return model(tokens[:, None], positions, cache, start=position)[:, -1].float()


class DecodeStep:
    def __init__(self, model: CausalLM, compile: bool = False):
        self.model = model
        self.compiled = None
        if compile:
            self.compiled = torch.compile(decode, dynamic=True, fullgraph=True, options=INDUCTOR_OPTIONS)

    def __call__(self, tokens: torch.Tensor, position: int,
                 cache: list[tuple[torch.Tensor, torch.Tensor]]) -> torch.Tensor:
        if self.compiled is not None and position + 1 < cache[0][0].shape[2]:
            try:
                return self.compiled(self.model, tokens, position, cache)
            except Exception as error:  # a missing compiler, an op inductor cannot lower: stay usable
                warnings.warn(f"torch.compile of the decode step failed, decoding eagerly: {error}", stacklevel=2)
                log.debug("decode step compile failure", exc_info=True)
                self.compiled = None
        return decode(self.model, tokens, position, cache)
