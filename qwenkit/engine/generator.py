"""Single-request generation: chunked prefill into a preallocated KV cache, then decode n rows at once."""
from collections.abc import Iterator
from dataclasses import dataclass, field

import torch

from qwenkit.engine.decode_step import DecodeStep
from qwenkit.engine.kv_cache import allocate_kv_cache, grow_kv_cache
from qwenkit.engine.limits import check_prompt
from qwenkit.engine.sampler import Sampler, token_logprobs
from qwenkit.engine.stop import StopStrings
from qwenkit.models import CausalLM
from qwenkit.outputs import StreamDelta, TokenLogprob
from qwenkit.sampling_params import SamplingParams
from qwenkit.tokenizer import IncrementalDetokenizer, Tokenizer

PREFILL_CHUNK = 512
CACHE_STEP = 256


@dataclass(slots=True)
class _Row:
    detokenizer: IncrementalDetokenizer
    text: str = ""            # decoded so far, held-back tail included
    emitted: int = 0          # characters of `text` already yielded
    count: int = 0
    finish_reason: str | None = None
    stop_reason: int | str | None = None
    token_ids: list[int] = field(default_factory=list)


class Generator:
    def __init__(self, model: CausalLM, tokenizer: Tokenizer, eos_token_ids: list[int], max_model_len: int,
                 *, compile: bool = False):
        self.model, self.tokenizer = model, tokenizer
        self.decode = DecodeStep(model, compile)
        self.eos_token_ids = eos_token_ids
        self.max_model_len = max_model_len
        self.device = model.inv_freq.device
        self.dtype = model.dtype

    def check_prompt(self, prompt_ids: list[int]) -> None:
        check_prompt(prompt_ids, self.max_model_len, self.model.config.vocab_size)

    @torch.inference_mode()
    def stream(self, prompt_ids: list[int], params: SamplingParams) -> Iterator[StreamDelta]:
        self.check_prompt(prompt_ids)
        budget = self.max_model_len - len(prompt_ids)
        max_new = min(params.max_tokens or budget, budget)
        n = params.n
        total = len(prompt_ids) + max_new
        cache = allocate_kv_cache(self.model.config, n, min(total, len(prompt_ids) + CACHE_STEP), self.dtype,
                                  self.device)
        logits = self._prefill(prompt_ids, cache).expand(n, -1).clone()
        for k, v in cache:
            k[1:], v[1:] = k[:1], v[:1]
        sampler = Sampler(params, logits.shape[-1], prompt_ids, n, self.device)
        rows = [_Row(self.tokenizer.detokenizer(params.skip_special_tokens)) for _ in range(n)]
        stops = StopStrings(params.stop)
        ends = set(params.stop_token_ids) | (set() if params.ignore_eos else set(self.eos_token_ids))
        position = len(prompt_ids)
        for step in range(max_new):
            banned = sorted(ends) if step < params.min_tokens else None
            tokens = sampler(logits, banned)
            sampler.record(tokens)
            scored = token_logprobs(logits, tokens, params.logprobs) if params.logprobs is not None else None
            for i, token in enumerate(tokens.tolist()):
                row = rows[i]
                if row.finish_reason is None:
                    yield self._advance(row, i, token, ends, stops, scored[i] if scored else None,
                                        last=step == max_new - 1)
            if all(r.finish_reason for r in rows):
                return
            if position + 1 >= cache[0][0].shape[2]:  # keep a free slot: a compiled step specializes on a full cache
                cache = grow_kv_cache(cache, min(total, 2 * position))
            logits = self.decode(tokens, position, cache)
            position += 1

    def _prefill(self, prompt_ids: list[int], cache) -> torch.Tensor:
        ids = torch.tensor(prompt_ids, device=self.device)
        for start in range(0, len(prompt_ids), PREFILL_CHUNK):
            chunk = ids[start:start + PREFILL_CHUNK]
            positions = torch.arange(start, start + chunk.shape[0], device=self.device)
            logits = self.model(chunk[None], positions, cache, last_only=True, start=start)
        return logits[:, -1].float()

    def _advance(self, row: _Row, index: int, token: int, ends: set[int], stops: StopStrings,
                 scored, last: bool) -> StreamDelta:
        row.token_ids.append(token)
        logprob = self._logprob(token, scored) if scored else None
        if token in ends:
            row.finish_reason, row.stop_reason = "stop", (None if token in self.eos_token_ids else token)
            return StreamDelta(index, token, self._flush(row), row.finish_reason, row.stop_reason, logprob)
        before = len(row.text)
        row.text += row.detokenizer.add(token)
        cut = stops.find(row.text, before)
        if cut is not None:
            stop = next(s for s in stops.stops if row.text.startswith(s, cut))
            row.text = row.text[:cut]
            row.finish_reason, row.stop_reason = "stop", stop
            return StreamDelta(index, token, self._take(row, len(row.text)), "stop", stop, logprob)
        if last:
            row.finish_reason = "length"
            return StreamDelta(index, token, self._flush(row), "length", None, logprob)
        return StreamDelta(index, token, self._take(row, len(row.text) - stops.holdback(row.text)), None, None, logprob)

    def _flush(self, row: _Row) -> str:
        row.text += row.detokenizer.flush()
        return self._take(row, len(row.text))

    @staticmethod
    def _take(row: _Row, upto: int) -> str:
        piece = row.text[row.emitted:upto] if upto > row.emitted else ""
        row.emitted = max(row.emitted, upto)
        return piece

    def _logprob(self, token: int, scored) -> TokenLogprob:
        chosen, top = scored
        piece = lambda t: self.tokenizer.decode([t], skip_special_tokens=False)  # noqa: E731
        return TokenLogprob(token, piece(token), chosen, [(t, piece(t), lp) for t, lp in top])
