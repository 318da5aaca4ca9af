"""Single-request generation: chunked prefill into a preallocated KV cache, then decode n rows at once."""
from collections.abc import Iterator

import torch

from qwenkit.engine.adapters import AdapterRegistry
from qwenkit.engine.decode_step import DecodeStep
from qwenkit.engine.kv_cache import allocate_kv_cache, grow_kv_cache
from qwenkit.engine.limits import check_prompt
from qwenkit.engine.output_state import OutputState, make_logprob
from qwenkit.engine.sampler import Sampler, token_logprobs
from qwenkit.models import CausalLM
from qwenkit.outputs import StreamDelta
from qwenkit.sampling_params import SamplingParams
from qwenkit.tokenizer import Tokenizer

PREFILL_CHUNK = 512
CACHE_STEP = 256


class Generator:
    def __init__(self, model: CausalLM, tokenizer: Tokenizer, eos_token_ids: list[int], max_model_len: int,
                 *, compile: bool = False, adapters: AdapterRegistry | None = None):
        self.model, self.tokenizer = model, tokenizer
        self.adapters = adapters or AdapterRegistry(model)
        self.decode = DecodeStep(model, compile)
        self.eos_token_ids = eos_token_ids
        self.max_model_len = max_model_len
        self.device = model.inv_freq.device
        self.dtype = model.dtype

    def check_prompt(self, prompt_ids: list[int]) -> None:
        check_prompt(prompt_ids, self.max_model_len, self.model.config.vocab_size)

    @torch.inference_mode()
    def stream(self, prompt_ids: list[int], params: SamplingParams,
               adapter: str | None = None) -> Iterator[StreamDelta]:
        """`adapter`: the name of a loaded LoRA adapter (None: the model's default, normally the base)."""
        self.check_prompt(prompt_ids)
        slot = self.adapters.acquire(adapter)
        try:
            yield from self._stream(prompt_ids, params, slot)
        finally:
            self.adapters.release(slot)

    def _stream(self, prompt_ids: list[int], params: SamplingParams, slot: int) -> Iterator[StreamDelta]:
        budget = self.max_model_len - len(prompt_ids)
        max_new = min(params.max_tokens or budget, budget)
        n = params.n
        total = len(prompt_ids) + max_new
        cache = allocate_kv_cache(self.model.config, n, min(total, len(prompt_ids) + CACHE_STEP), self.dtype,
                                  self.device)
        with self.adapters.apply([slot]):
            logits = self._prefill(prompt_ids, cache).expand(n, -1).clone()
        for k, v in cache:
            k[1:], v[1:] = k[:1], v[:1]
        sampler = Sampler(params, logits.shape[-1], prompt_ids, n, self.device)
        rows = [OutputState(i, self.tokenizer, params, self.eos_token_ids, max_new) for i in range(n)]
        ends = sorted(rows[0].ends)
        position = len(prompt_ids)
        for step in range(max_new):
            tokens = sampler(logits, ends if step < params.min_tokens else None)  # rows advance in lockstep
            sampler.record(tokens)
            scored = token_logprobs(logits, tokens, params.logprobs) if params.logprobs is not None else None
            for i, token in enumerate(tokens.tolist()):
                if rows[i].finish_reason is None:
                    logprob = make_logprob(self.tokenizer, token, scored[i]) if scored else None
                    yield rows[i].advance(token, logprob)
            if all(r.finish_reason for r in rows):
                return
            if position + 1 >= cache[0][0].shape[2]:  # keep a free slot: a compiled step specializes on a full cache
                cache = grow_kv_cache(cache, min(total, 2 * position))
            with self.adapters.apply([slot]):
                logits = self.decode(tokens, position, cache)
            position += 1

    def _prefill(self, prompt_ids: list[int], cache) -> torch.Tensor:
        ids = torch.tensor(prompt_ids, device=self.device)
        for start in range(0, len(prompt_ids), PREFILL_CHUNK):
            chunk = ids[start:start + PREFILL_CHUNK]
            positions = torch.arange(start, start + chunk.shape[0], device=self.device)
            logits = self.model(chunk[None], positions, cache, last_only=True, start=start)
        return logits[:, -1].float()
