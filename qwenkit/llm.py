"""The Python API in vLLM's shape: LLM(model).generate(prompts, params) and .chat(messages, params)."""
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import torch

from qwenkit.engine.adapters import AdapterRegistry
from qwenkit.engine.generator import Generator
from qwenkit.engine.speculative import SpeculativeDecoder, SpeculativeStats, check_same_tokenizer
from qwenkit.errors import InvalidRequestError
from qwenkit.loading import Checkpoint, load_checkpoint
from qwenkit.models import load_model
from qwenkit.outputs import CompletionOutput, RequestOutput, StreamDelta
from qwenkit.sampling_params import SamplingParams

DTYPES = {"float32": torch.float32, "fp32": torch.float32, "bfloat16": torch.bfloat16, "bf16": torch.bfloat16,
          "float16": torch.float16, "fp16": torch.float16}
DEFAULT_MODEL = "smollm2:135m"


def pick_device(device: str) -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        chosen = torch.device(device)
    except RuntimeError:
        raise InvalidRequestError("device", f"unknown device {device!r}; choose auto, cpu, cuda or cuda:N") from None
    if chosen.type == "cuda" and not torch.cuda.is_available():
        raise InvalidRequestError("device", "CUDA was asked for but torch sees no GPU; use --device cpu")
    if chosen.type not in ("cpu", "cuda"):
        raise InvalidRequestError("device", f"{device!r} is not supported; choose auto, cpu or cuda")
    return chosen


def pick_dtype(dtype: str, device: torch.device) -> torch.dtype:
    if dtype == "auto":
        return torch.bfloat16 if device.type == "cuda" else torch.float32
    if dtype not in DTYPES:
        raise InvalidRequestError("dtype", f"unknown dtype {dtype!r}; choose auto, {', '.join(DTYPES)}")
    return DTYPES[dtype]


def pick_quant(quant: str, checkpoint, device: torch.device) -> str:
    """auto: on CPU, int4 for 4-bit GGUF files (mapped exactly) and int8 otherwise; nothing on GPU."""
    if quant != "auto":
        return quant
    if device.type != "cpu":
        return "none"
    primary = checkpoint.dtype.removeprefix("mixed (").split(",")[0].strip(" )")  # most common type first
    return "int4" if checkpoint.format == "gguf" and primary.startswith("Q4") else "int8"


def pick_draft_quant(quant: str, device: torch.device) -> str:
    """auto: int4 on CPU, the fastest weights; a draft's worse guesses cost speed, never output."""
    if quant != "auto":
        return quant
    return "int4" if device.type == "cpu" else "none"


class LLM:
    """One model, loaded once, for many requests.

    With `draft_model` (a smaller model sharing the tokenizer), speculative decoding serves every request
    it can serve exactly: one prompt, greedy (temperature 0 or top_k 1), n=1, no penalties or logit bias,
    no logprobs, no min_tokens, no adapter. The draft proposes `num_draft_tokens` tokens, the model checks
    them in one forward, and the output is the model's own greedy output. Other requests, and several
    prompts at once, run on the normal engine; `draft_skip_reason(params)` says why. `speculative_stats`
    holds the counts of the latest request the draft served.

    `generate` and `chat` take a `constraint`: a factory that LLMEngine.add_request calls once per sequence
    for a token mask (qwenkit.engine.grammar builds them from JSON schemas and tool lists). Only the batching
    engine applies masks, so a constrained request always runs there.
    """

    def __init__(self, model: str = DEFAULT_MODEL, *, dtype: str = "auto", device: str = "auto",
                 quant: str = "auto", group_size: int = 32, max_model_len: int | None = None,
                 threads: int | None = None, kv_cache_memory: int = 512 << 20, max_num_seqs: int = 32,
                 compile: bool = False, adapters: dict[str, str | Path] | None = None,
                 draft_model: str | None = None, num_draft_tokens: int = 4, draft_quant: str = "auto"):
        from qwenkit.models.load import QUANT_MODES
        from qwenkit.store import resolve
        for field, mode in (("quant", quant), ("draft_quant", draft_quant)):
            if mode != "auto" and mode not in QUANT_MODES:
                raise InvalidRequestError(field, f"unknown mode {mode!r}; choose auto, {', '.join(QUANT_MODES)}")
        if not 1 <= num_draft_tokens <= 16:
            raise InvalidRequestError("num_draft_tokens", f"is {num_draft_tokens}; choose 1 to 16")
        if dtype != "auto" and dtype not in DTYPES:
            raise InvalidRequestError("dtype", f"unknown dtype {dtype!r}; choose auto, {', '.join(DTYPES)}")
        if threads:
            torch.set_num_threads(threads)
        started = time.perf_counter()
        self.resolved = resolve(model)
        self.checkpoint = load_checkpoint(self.resolved.path)
        self.tokenizer = self.checkpoint.tokenizer
        draft = None if draft_model is None else self._draft_checkpoint(draft_model)  # fail before the long loads
        self.device = pick_device(device)
        self.quant = pick_quant(quant, self.checkpoint, self.device)
        floats = pick_dtype(dtype, self.device)
        self.model = load_model(self.checkpoint, floats, self.device, quant=self.quant, group_size=group_size)
        self.draft_quant = None if draft is None else pick_draft_quant(draft_quant, self.device)
        self.draft = None if draft is None else load_model(draft, floats, self.device, quant=self.draft_quant,
                                                           group_size=group_size)
        self.num_draft_tokens = num_draft_tokens
        self.speculative_stats: SpeculativeStats | None = None
        self.adapters = AdapterRegistry(self.model)
        if self.resolved.adapter is not None:  # a model made with `qwenkit create --adapter` runs it always
            self.adapters.set_default(self.resolved.adapter)
        for name, folder in (adapters or {}).items():
            self.adapters.load(name, folder)
        config = self.checkpoint.config
        max_model_len = max_model_len or self.resolved.params.get("context_length")  # a created model's default
        self.max_model_len = min(max_model_len or config.max_position_embeddings, config.max_position_embeddings)
        eos = self.checkpoint.generation.eos_token_ids or self.tokenizer.eos_token_ids
        self.generator = Generator(self.model, self.tokenizer, eos, self.max_model_len, compile=compile,
                                   adapters=self.adapters)
        self.kv_cache_memory, self.max_num_seqs = kv_cache_memory, max_num_seqs
        self._engine = None
        self.load_seconds = time.perf_counter() - started
        self.name = model

    def _draft_checkpoint(self, ref: str) -> Checkpoint:
        from qwenkit.store import resolve
        checkpoint = load_checkpoint(resolve(ref).path)  # only the weights: a stored draft's defaults do not apply
        check_same_tokenizer(self.tokenizer, checkpoint.tokenizer, ref)
        return checkpoint

    def get_default_sampling_params(self) -> SamplingParams:
        """The checkpoint's generation_config.json values; vLLM's defaults for anything it leaves out."""
        g = self.checkpoint.generation
        params = SamplingParams(max_tokens=None).updated(
            temperature=g.temperature, top_p=g.top_p, top_k=g.top_k, min_p=g.min_p,
            repetition_penalty=g.repetition_penalty, presence_penalty=g.presence_penalty)
        return params.updated(**self.resolved.params) if self.resolved.params else params

    # -- adapters -------------------------------------------------------------------------------------------
    def load_adapter(self, name: str, path: str | Path) -> None:
        """Load a PEFT LoRA adapter folder; requests then pick it with `adapter=name`."""
        self.adapters.load(name, path)

    def unload_adapter(self, name: str) -> None:
        """Requests still streaming with it finish with it; new ones may not name it."""
        self.adapters.unload(name)

    # -- completion --------------------------------------------------------------------------------------
    def encode(self, prompt: str | Sequence[int]) -> list[int]:
        if isinstance(prompt, str):
            ids = self.tokenizer.encode(prompt, allow_special=True)
            if self.tokenizer.add_bos and self.tokenizer.bos_token_id is not None:
                ids = [self.tokenizer.bos_token_id, *ids]
            return ids
        return list(prompt)

    def stream(self, prompt: str | Sequence[int], sampling_params: SamplingParams | None = None, *,
               adapter: str | None = None) -> Iterator[StreamDelta]:
        self.adapters.slot(adapter)  # an unknown name fails here, not at the first token
        return self._stream_ids(self.encode(prompt), sampling_params or self.get_default_sampling_params(), adapter)

    def generate(self, prompts: str | Sequence[int] | Sequence[str | Sequence[int]],
                 sampling_params: SamplingParams | Sequence[SamplingParams] | None = None, *,
                 adapter: str | Sequence[str | None] | None = None, constraint=None) -> list[RequestOutput]:
        """`adapter`: a loaded adapter's name for every prompt, or a list with one name (or None) per prompt.
        `constraint`: a constraint factory (see the class docstring) applied to every prompt."""
        if isinstance(prompts, str) or (prompts and isinstance(prompts[0], int)):
            prompts = [prompts]
        params = sampling_params or self.get_default_sampling_params()
        params = list(params) if isinstance(params, Sequence) else [params] * len(prompts)
        if len(params) != len(prompts):
            raise InvalidRequestError("sampling_params", "needs one entry per prompt")
        adapters = self._adapter_list(adapter, len(prompts))
        check_constraint(constraint)
        texts = [p if isinstance(p, str) else None for p in prompts]
        ids = [self.encode(p) for p in prompts]
        if len(prompts) > 1 or constraint is not None:
            return self._run_batch(texts, ids, params, adapters, constraint)
        return [self._collect(texts[0], ids[0], params[0], adapters[0])]

    def _adapter_list(self, adapter: str | Sequence[str | None] | None, count: int) -> list[str | None]:
        names = [adapter] * count if adapter is None or isinstance(adapter, str) else list(adapter)
        if len(names) != count:
            raise InvalidRequestError("adapter", "needs one entry per prompt")
        for name in names:
            self.adapters.slot(name)
        return names

    @property
    def engine(self):
        """The batching engine (continuous batching, paged KV cache), created on first use."""
        if self._engine is None:
            from qwenkit.engine.llm_engine import LLMEngine
            self._engine = LLMEngine(self.model, self.tokenizer, self.generator.eos_token_ids, self.max_model_len,
                                     kv_cache_memory=self.kv_cache_memory, max_num_seqs=self.max_num_seqs,
                                     adapters=self.adapters)
        return self._engine

    def _run_batch(self, prompts: list[str | None], ids: list[list[int]], params: list[SamplingParams],
                   adapters: list[str | None], constraint=None) -> list[RequestOutput]:
        """Several prompts at once (or constrained ones) through the batching engine; results in prompt order."""
        engine = self.engine
        for p in ids:
            engine.check_prompt(p)
        rids = [engine.add_request(p, sp, adapter=a, constraint=constraint) for p, sp, a in zip(ids, params, adapters)]
        outs = {rid: [CompletionOutput(i, "", [], None, logprobs=[] if sp.logprobs is not None else None)
                      for i in range(sp.n)] for rid, sp in zip(rids, params)}
        try:
            while engine.has_unfinished():
                for rid, delta in engine.step():
                    _accumulate(outs[rid][delta.index], delta)
        finally:
            for rid in rids:
                engine.abort(rid)
        return [RequestOutput(p, i, _finalize(outs[rid])) for p, i, rid in zip(prompts, ids, rids)]

    def _collect(self, prompt: str | None, ids: list[int], params: SamplingParams,
                 adapter: str | None) -> RequestOutput:
        outs = [CompletionOutput(i, "", [], None, logprobs=[] if params.logprobs is not None else None)
                for i in range(params.n)]
        for delta in self._stream_ids(ids, params, adapter):
            _accumulate(outs[delta.index], delta)
        return RequestOutput(prompt, ids, _finalize(outs))

    # -- speculative decoding ----------------------------------------------------------------------------
    def draft_skip_reason(self, params: SamplingParams, adapter: str | None = None) -> str | None:
        """Why a request for one prompt would run without the draft model; None when the draft serves it.
        Requests for several prompts always run on the batching engine, without it."""
        if self.draft is None:
            return "no draft model is loaded"
        checks = [(not params.greedy, f"temperature is {params.temperature:g}, not 0"),
                  (params.n != 1, f"n is {params.n}, not 1"),
                  (params.penalized, "a repetition, presence or frequency penalty or a logit bias is set"),
                  (params.logprobs is not None, "logprobs are asked for"),
                  (params.min_tokens > 0, "min_tokens is set"),
                  (self.adapters.slot(adapter) != 0, "a LoRA adapter is applied")]
        return next((reason for failed, reason in checks if failed), None)

    def _stream_ids(self, ids: list[int], params: SamplingParams, adapter: str | None) -> Iterator[StreamDelta]:
        if self.draft_skip_reason(params, adapter) is None:
            return self._speculate(ids, params)
        return self.generator.stream(ids, params, adapter)

    def _speculate(self, ids: list[int], params: SamplingParams) -> Iterator[StreamDelta]:
        self.generator.check_prompt(ids)
        decoder = SpeculativeDecoder(self.model, self.draft, self.tokenizer, self.generator.eos_token_ids,
                                     self.max_model_len, self.num_draft_tokens)
        self.speculative_stats = decoder.stats
        yield from decoder.stream(ids, params)

    # -- chat --------------------------------------------------------------------------------------------
    def chat_prompt_ids(self, messages: list[dict], tools: list[dict] | None = None,
                        chat_template_kwargs: dict | None = None, add_generation_prompt: bool = True) -> list[int]:
        if self.resolved.system and not any(m.get("role") == "system" for m in messages):
            messages = [{"role": "system", "content": self.resolved.system}, *messages]
        if "think" in self.resolved.params:  # `qwenkit create --param think=false`
            think = bool(self.resolved.params["think"])
            chat_template_kwargs = {"enable_thinking": think, **(chat_template_kwargs or {})}
        return self.tokenizer.encode_chat(messages, tools=tools, add_generation_prompt=add_generation_prompt,
                                          **(chat_template_kwargs or {}))

    def stream_chat(self, messages: list[dict], sampling_params: SamplingParams | None = None,
                    tools: list[dict] | None = None, chat_template_kwargs: dict | None = None, *,
                    adapter: str | None = None) -> Iterator[StreamDelta]:
        self.adapters.slot(adapter)
        ids = self.chat_prompt_ids(messages, tools, chat_template_kwargs)
        return self._stream_ids(ids, sampling_params or self.get_default_sampling_params(), adapter)

    def chat(self, messages: list[dict] | list[list[dict]], sampling_params: SamplingParams | None = None,
             tools: list[dict] | None = None, chat_template_kwargs: dict | None = None,
             add_generation_prompt: bool = True, *,
             adapter: str | Sequence[str | None] | None = None, constraint=None) -> list[RequestOutput]:
        conversations = [messages] if messages and isinstance(messages[0], dict) else messages
        params = sampling_params or self.get_default_sampling_params()
        adapters = self._adapter_list(adapter, len(conversations))
        check_constraint(constraint)
        ids = [self.chat_prompt_ids(c, tools, chat_template_kwargs, add_generation_prompt) for c in conversations]
        if len(ids) > 1 or constraint is not None:
            return self._run_batch([None] * len(ids), ids, [params] * len(ids), adapters, constraint)
        return [self._collect(None, ids[0], params, adapters[0])]


def check_constraint(constraint) -> None:
    if constraint is not None and not callable(constraint):
        raise InvalidRequestError("constraint", f"got a {type(constraint).__name__}; pass a factory that makes one "
                                  "constraint per sequence, such as Grammars.factory(compiled) from "
                                  "qwenkit.engine.grammar")


def _accumulate(out: CompletionOutput, delta: StreamDelta) -> None:
    out.text += delta.text
    out.token_ids.append(delta.token_id)
    if delta.logprob is not None:
        out.logprobs.append(delta.logprob)
    if delta.finish_reason:
        out.finish_reason, out.stop_reason = delta.finish_reason, delta.stop_reason


def _finalize(outs: list[CompletionOutput]) -> list[CompletionOutput]:
    for out in outs:
        if out.logprobs:
            out.cumulative_logprob = sum(lp.logprob for lp in out.logprobs)
    return outs
