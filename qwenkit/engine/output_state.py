"""Per-sequence output bookkeeping shared by both engines: detokenize, stop on ids and strings, limits."""
from qwenkit.engine.stop import StopStrings
from qwenkit.outputs import StreamDelta, TokenLogprob
from qwenkit.sampling_params import SamplingParams
from qwenkit.tokenizer import Tokenizer


class OutputState:
    def __init__(self, index: int, tokenizer: Tokenizer, params: SamplingParams, eos_token_ids: list[int],
                 max_new_tokens: int):
        self.index, self.max_new_tokens = index, max_new_tokens
        self.detokenizer = tokenizer.detokenizer(params.skip_special_tokens)
        self.stops = StopStrings(params.stop)
        self.eos = set(eos_token_ids)
        self.ends = set(params.stop_token_ids) | (set() if params.ignore_eos else self.eos)
        self.min_tokens = params.min_tokens
        self.text = ""           # decoded so far, held-back tail included
        self.emitted = 0         # characters of `text` already yielded
        self.token_ids: list[int] = []
        self.finish_reason: str | None = None
        self.stop_reason: int | str | None = None

    def banned(self) -> list[int] | None:
        """Ids that may not be sampled yet (end tokens before min_tokens)."""
        return sorted(self.ends) if len(self.token_ids) < self.min_tokens else None

    def advance(self, token: int, logprob: TokenLogprob | None = None) -> StreamDelta:
        self.token_ids.append(token)
        if token in self.ends:
            self.finish_reason, self.stop_reason = "stop", (None if token in self.eos else token)
            return self._delta(token, self._flush(), logprob)
        before = len(self.text)
        self.text += self.detokenizer.add(token)
        cut = self.stops.find(self.text, before)
        if cut is not None:
            stop = next(s for s in self.stops.stops if self.text.startswith(s, cut))
            self.text = self.text[:cut]
            self.finish_reason, self.stop_reason = "stop", stop
            return self._delta(token, self._take(len(self.text)), logprob)
        if len(self.token_ids) >= self.max_new_tokens:
            self.finish_reason = "length"
            return self._delta(token, self._flush(), logprob)
        return self._delta(token, self._take(len(self.text) - self.stops.holdback(self.text)), logprob)

    def _delta(self, token: int, text: str, logprob: TokenLogprob | None) -> StreamDelta:
        return StreamDelta(self.index, token, text, self.finish_reason, self.stop_reason, logprob)

    def _flush(self) -> str:
        self.text += self.detokenizer.flush()
        return self._take(len(self.text))

    def _take(self, upto: int) -> str:
        piece = self.text[self.emitted:upto] if upto > self.emitted else ""
        self.emitted = max(self.emitted, upto)
        return piece


def make_logprob(tokenizer: Tokenizer, token: int, scored: tuple[float, list[tuple[int, float]]]) -> TokenLogprob:
    chosen, top = scored
    def piece(t: int) -> str:
        return tokenizer.decode([t], skip_special_tokens=False)
    return TokenLogprob(token, piece(token), chosen, [(t, piece(t), lp) for t, lp in top])
