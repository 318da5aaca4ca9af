"""The batching engine: many requests share every forward pass (continuous batching over a paged KV cache)."""
import itertools
from dataclasses import dataclass

import torch

from qwenkit.engine.adapters import AdapterRegistry
from qwenkit.engine.block_manager import BlockManager
from qwenkit.engine.limits import check_prompt
from qwenkit.engine.output_state import OutputState, make_logprob
from qwenkit.engine.paged_attention import PagedBatch
from qwenkit.engine.sampler import Sampler, token_logprobs
from qwenkit.engine.scheduler import Scheduler
from qwenkit.engine.sequence import Sequence
from qwenkit.errors import InvalidRequestError
from qwenkit.layers.quant import densify
from qwenkit.models import CausalLM
from qwenkit.outputs import StreamDelta
from qwenkit.sampling_params import SamplingParams
from qwenkit.tokenizer import Tokenizer

DEFAULT_KV_MEMORY = 1 << 30


@dataclass(slots=True)
class Request:
    request_id: str
    prompt_ids: list[int]
    params: SamplingParams
    seqs: list[Sequence]
    outputs: list[OutputState]
    samplers: list[Sampler]
    constraints: list | None = None   # per sequence: .allowed(vocab) -> bool mask | None, .accept(token),
                                      # optionally .forced() -> the token ids the constraint leaves no choice about
    adapter: int = 0                  # the LoRA slot its sequences run

    @property
    def finished(self) -> bool:
        return all(o.finish_reason for o in self.outputs)


class LLMEngine:
    def __init__(self, model: CausalLM, tokenizer: Tokenizer, eos_token_ids: list[int], max_model_len: int,
                 kv_cache_memory: int | None = None, block_size: int = 16, max_num_seqs: int = 32,
                 max_num_batched_tokens: int = 512, adapters: AdapterRegistry | None = None,
                 dense_weights: bool = False, jump_forward: bool = True):
        """`dense_weights`: keep a bf16 copy of each quantized weight for steps of 8 or more rows, which the packed
        int4/int8 kernels run slowly (2 bytes per weight more; see docs/performance.md, W2).

        `jump_forward`: when a constraint leaves no choice about the next tokens (the `", "arguments": {"` of a tool
        call), append them at once and run them in the next step's forward pass with the sampled token, instead of
        one forward pass each. The text is what the grammar forces either way; the tokens may be cut differently
        (xgrammar takes the longest vocabulary tokens). Requests that ask for logprobs never jump."""
        self.jump_forward = jump_forward
        self.dense_weight_bytes = densify(model) if dense_weights else 0
        self.model, self.tokenizer, self.eos_token_ids = model, tokenizer, eos_token_ids
        self.adapters = adapters or AdapterRegistry(model)
        self.max_model_len, self.block_size = max_model_len, block_size
        self.device = model.inv_freq.device
        cfg = model.config
        dtype = model.dtype
        per_token = 2 * cfg.num_hidden_layers * cfg.num_key_value_heads * cfg.head_dim * dtype.itemsize
        num_blocks = max((kv_cache_memory or DEFAULT_KV_MEMORY) // (per_token * block_size), 1)
        if num_blocks < 2:
            raise InvalidRequestError("kv_cache_memory", f"holds {num_blocks * block_size} tokens; give the KV cache "
                                      "more memory")
        self.max_model_len = min(max_model_len, num_blocks * block_size)  # one sequence must fit in the pool
        shape = (num_blocks * block_size, cfg.num_key_value_heads, cfg.head_dim)
        # empty, not zeros: every slot is written before it is read, and untouched pages cost no memory
        self.kv_cache = [(torch.empty(shape, dtype=dtype, device=self.device),
                          torch.empty(shape, dtype=dtype, device=self.device)) for _ in range(cfg.num_hidden_layers)]
        self.capacity_tokens = num_blocks * block_size
        self.blocks = BlockManager(num_blocks, block_size)
        self.scheduler = Scheduler(self.blocks, max_num_seqs, max(max_num_batched_tokens, block_size))
        self.requests: dict[str, Request] = {}
        self.owners: dict[int, tuple[Request, int]] = {}   # seq_id -> (request, index in it)
        self._ids = itertools.count()

    # -- requests ----------------------------------------------------------------------------------------
    def check_prompt(self, prompt_ids: list[int]) -> None:
        check_prompt(prompt_ids, self.max_model_len, self.model.config.vocab_size)

    def add_request(self, prompt_ids: list[int], params: SamplingParams, request_id: str | None = None,
                    constraint=None, adapter: str | None = None) -> str:
        """`constraint`: a factory called once per sequence for a token-mask object (see Request.constraints);
        `adapter`: the name of a loaded LoRA adapter (None: the model's default, normally the base)."""
        self.check_prompt(prompt_ids)
        self.adapters.slot(adapter)
        request_id = request_id or f"req-{next(self._ids)}"
        budget = self.max_model_len - len(prompt_ids)
        max_new = min(params.max_tokens or budget, budget)
        vocab = self.model.config.vocab_size
        seqs, outputs, samplers = [], [], []
        for i in range(params.n):
            seed = None if params.seed is None else params.seed + i
            seqs.append(Sequence(list(prompt_ids), params))
            outputs.append(OutputState(i, self.tokenizer, params, self.eos_token_ids, max_new))
            samplers.append(Sampler(params.updated(seed=seed), vocab, prompt_ids, 1, self.device))
        constraints = [constraint() for _ in range(params.n)] if constraint else None
        slot = self.adapters.acquire(adapter)
        for seq in seqs:
            seq.adapter = slot
        request = Request(request_id, list(prompt_ids), params, seqs, outputs, samplers, constraints, slot)
        self.requests[request_id] = request
        for k, seq in enumerate(seqs):
            self.owners[seq.seq_id] = (request, k)
            self.scheduler.add(seq)
        return request_id

    def abort(self, request_id: str) -> None:
        request = self.requests.pop(request_id, None)
        if request is None:
            return
        self.adapters.release(request.adapter)
        for seq in request.seqs:
            self.owners.pop(seq.seq_id, None)
            if not seq.is_finished:
                self.scheduler.finish(seq, "abort")

    def has_unfinished(self) -> bool:
        return self.scheduler.has_work()

    # -- one step ----------------------------------------------------------------------------------------
    @torch.inference_mode()
    def step(self) -> list[tuple[str, StreamDelta]]:
        chunks = self.scheduler.schedule()
        if not chunks:
            return []
        batch = PagedBatch(chunks, self.block_size, self.device)
        ids = torch.tensor([t for c in chunks for t in c.seq.token_ids[c.start:c.start + c.length]],
                           device=self.device)
        with self.adapters.apply([c.seq.adapter for c in chunks], [c.length for c in chunks]):
            hidden = self.model.paged_hidden_states(ids, batch, self.kv_cache)
        ends = list(itertools.accumulate(c.length for c in chunks))
        sampling = [i for i, c in enumerate(chunks) if c.samples]
        logits = self.model.lm_head(hidden[[ends[i] - 1 for i in sampling]]).float() if sampling else None
        for c in chunks:
            c.seq.num_computed_tokens += c.length
            self.blocks.commit_full_blocks(c.seq)
        deltas = []
        for row, i in enumerate(sampling):
            seq = chunks[i].seq
            request, k = self.owners[seq.seq_id]
            deltas += [(request.request_id, d) for d in self._sample(request, k, seq, logits[row:row + 1])]
            if output_done := request.outputs[k].finish_reason:
                del self.owners[seq.seq_id]
            if output_done and request.finished:
                del self.requests[request.request_id]
                self.adapters.release(request.adapter)
        return deltas

    def _sample(self, request: Request, k: int, seq: Sequence, logits: torch.Tensor) -> list[StreamDelta]:
        """The sampled token's delta, then one per token the constraint forces after it (see `jump_forward`)."""
        output, sampler = request.outputs[k], request.samplers[k]
        constraint = request.constraints[k] if request.constraints else None
        token = sampler(logits, output.banned(), constraint.allowed(logits.shape[-1]) if constraint else None)
        logprob = None
        if request.params.logprobs is not None:
            scored = token_logprobs(logits, token, request.params.logprobs)[0]
            logprob = make_logprob(self.tokenizer, int(token), scored)
        deltas = [self._append(request, k, seq, int(token), logprob)]
        jump = self.jump_forward and logprob is None and hasattr(constraint, "forced")
        if jump and not output.finish_reason:
            for forced in constraint.forced():
                deltas.append(self._append(request, k, seq, forced))
                if output.finish_reason:
                    break
        return deltas

    def _append(self, request: Request, k: int, seq: Sequence, token: int, logprob=None) -> StreamDelta:
        output, sampler = request.outputs[k], request.samplers[k]
        if sampler.output_counts is not None:   # only penalties keep counts: no tensor per token otherwise
            sampler.record(torch.tensor([token], device=self.device))
        if request.constraints:
            request.constraints[k].accept(token)
        delta = output.advance(token, logprob)
        seq.token_ids.append(token)
        if output.finish_reason:
            self.scheduler.finish(seq, output.finish_reason)
        return delta
