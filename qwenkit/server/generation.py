"""What both APIs share: a chat or text prompt turned into engine input (ids, sampling, grammar), and the
engine's deltas turned back into reasoning, content, tool calls, logprobs and counts per choice."""
import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from fastapi import Request

from qwenkit.engine.grammar import Grammars, Thinking
from qwenkit.errors import InvalidRequestError
from qwenkit.outputs import StreamDelta, TokenLogprob
from qwenkit.sampling_params import SamplingParams
from qwenkit.server.parsing import THINK_CLOSE, Delta, OutputParser, ToolCall, prompt_opens_thinking
from qwenkit.server.worker import EngineWorker

DISCONNECT_POLL = 0.25


@dataclass(slots=True)
class Prompt:
    ids: list[int]
    in_reasoning: bool = False        # the prompt left a <think> open
    thinking: bool = False            # the model is expected to think first (grammars leave it free)
    parse_tools: bool = False


def chat_prompt(worker: EngineWorker, messages: list[dict], tools: list[dict] | None,
                template_kwargs: dict | None) -> Prompt:
    llm, kwargs = worker.llm, dict(template_kwargs or {})
    ids = llm.chat_prompt_ids(messages, tools, kwargs)
    text = llm.tokenizer.decode(ids[-64:], skip_special_tokens=False)
    template = llm.tokenizer.chat_template or ""
    opened = prompt_opens_thinking(text)
    thinking = opened or ("enable_thinking" in template and kwargs.get("enable_thinking", True) is not False
                          and not text.rstrip().endswith(THINK_CLOSE))
    return Prompt(ids, opened, thinking, bool(tools))


def sampling(worker: EngineWorker, *, max_tokens: int | None = None, logit_bias: dict | None = None,
             **fields) -> SamplingParams:
    vocab = worker.llm.model.config.vocab_size
    bias = None
    if logit_bias:
        try:
            bias = {int(k): float(v) for k, v in logit_bias.items()}
        except ValueError:
            raise InvalidRequestError("logit_bias", "keys must be token ids (integers as strings)") from None
        if any(not 0 <= k < vocab or not -100 <= v <= 100 for k, v in bias.items()):
            raise InvalidRequestError("logit_bias", f"token ids must be in [0, {vocab}) and biases in [-100, 100]")
    if fields.get("stop_token_ids") and any(not 0 <= t < vocab for t in fields["stop_token_ids"]):
        raise InvalidRequestError("stop_token_ids", f"token ids must be in [0, {vocab})")
    params = worker.llm.get_default_sampling_params()
    return params.updated(max_tokens=max_tokens, logit_bias=bias, **fields)


def grammar_for(worker: EngineWorker, prompt: Prompt, answer: dict | None, max_tokens: int | None = None,
                thinking_budget: int | None = None):
    """A constraint factory for LLMEngine.add_request, or None when `answer` (a grammar.json_format or
    tool_calls_format) is None. When the model thinks first, the reasoning stays free for at most
    `thinking_budget` tokens (by default half of max_tokens, so that the constrained answer has room)."""
    if answer is None:
        return None
    thinking = None
    if prompt.thinking:
        budget = thinking_budget if thinking_budget is not None else max_tokens // 2 if max_tokens else None
        thinking = Thinking(prompt.in_reasoning, budget)
    grammars = grammars_of(worker)
    return grammars.factory(grammars.compile(answer, thinking))


def grammars_of(worker: EngineWorker) -> Grammars:
    if getattr(worker, "grammars", None) is None:
        llm = worker.llm
        worker.grammars = Grammars(llm.tokenizer, llm.model.config.vocab_size, worker.engine.eos_token_ids,
                                   worker.engine.device)
    return worker.grammars


def deltas(request: Request, worker: EngineWorker, ids: list[int], params: SamplingParams,
           constraint=None, streaming: bool = False, adapter: str | None = None) -> AsyncIterator[StreamDelta]:
    """The engine's deltas for one request. It is queued now, so a bad prompt or a full queue is an error
    response before any stream starts. A client that goes away aborts it (its cache is freed at once): a
    streaming response is cancelled by Starlette when its client hangs up; otherwise we poll for it."""
    ticket = worker.submit(ids, params, constraint, adapter)
    return _follow(request if not streaming else None, worker, ticket, len(ids))


async def _follow(request: Request | None, worker: EngineWorker, ticket, num_prompt: int
                  ) -> AsyncIterator[StreamDelta]:
    metrics = worker.metrics
    checked, generated = time.monotonic(), 0
    try:
        while True:
            try:
                item = await asyncio.wait_for(ticket.out.get(), timeout=DISCONNECT_POLL)
            except TimeoutError:
                item = False
            if request is not None and (time.monotonic() - checked > DISCONNECT_POLL or item is False):
                checked = time.monotonic()
                if await request.is_disconnected():
                    return
            if item is False:
                continue
            if item is None:
                return
            if isinstance(item, Exception):
                raise item
            generated += 1
            yield item
    finally:
        worker.abort(ticket)
        if metrics is not None:
            metrics.finished(ticket, num_prompt, generated)


@dataclass(slots=True)
class Choice:
    """One of the n answers, accumulated as it streams."""
    index: int
    parser: OutputParser
    text: str = ""
    reasoning: str = ""
    content: str = ""
    tokens: int = 0
    logprobs: list[TokenLogprob] = field(default_factory=list)
    finish_reason: str | None = None

    @classmethod
    def make(cls, index: int, prompt: Prompt | None) -> "Choice":
        p = prompt or Prompt([])
        return cls(index, OutputParser(p.in_reasoning, p.parse_tools) if prompt else OutputParser())

    def add(self, delta: StreamDelta) -> Delta:
        self.tokens += delta.token_id is not None
        self.text += delta.text
        if delta.logprob is not None:
            self.logprobs.append(delta.logprob)
        parsed = self.parser.feed(delta.text)
        if delta.finish_reason:
            end = self.parser.finish()
            parsed.reasoning += end.reasoning
            parsed.content += end.content
            parsed.tool_calls += end.tool_calls
            self.finish_reason = delta.finish_reason
            if self.finish_reason == "stop" and self.parser.calls:
                self.finish_reason = "tool_calls"
        self.reasoning += parsed.reasoning
        self.content += parsed.content
        return parsed

    @property
    def tool_calls(self) -> list[ToolCall]:
        return self.parser.calls
