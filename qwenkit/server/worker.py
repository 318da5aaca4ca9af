"""One loaded model and the thread that runs its engine: every request to the model shares its continuous
batching; the HTTP event loop only hands requests in and reads deltas out."""
import asyncio
import itertools
import queue
import threading
import time
from dataclasses import dataclass, field

import torch

from qwenkit.engine.llm_engine import LLMEngine
from qwenkit.errors import QwenkitError
from qwenkit.outputs import StreamDelta
from qwenkit.sampling_params import SamplingParams


class QueueFullError(QwenkitError):
    def __init__(self, model: str, retry_after: int):
        self.retry_after = retry_after
        super().__init__(f"{model}: too many requests in flight; retry in {retry_after} s")


@dataclass(slots=True)
class Ticket:
    """A request in flight: the engine thread puts deltas (or an exception, or None at the end) on `out`."""
    request_id: str
    n: int
    out: asyncio.Queue
    loop: asyncio.AbstractEventLoop
    started: float = field(default_factory=time.perf_counter)
    first_token: float | None = None
    finished: set[int] = field(default_factory=set)   # the choices that have ended


class EngineWorker:
    def __init__(self, name: str, llm, *, max_num_seqs: int = 16, max_queue: int = 64,
                 kv_cache_memory: int | None = None, metrics=None, dense_weights: bool = False):
        self.name, self.llm, self.metrics = name, llm, metrics
        self.engine = LLMEngine(llm.model, llm.tokenizer, llm.generator.eos_token_ids, llm.max_model_len,
                                kv_cache_memory=kv_cache_memory, max_num_seqs=max_num_seqs, adapters=llm.adapters,
                                dense_weights=dense_weights)
        self.max_in_flight = max_num_seqs + max_queue
        self.tickets: dict[str, Ticket] = {}
        self.inbox: queue.SimpleQueue = queue.SimpleQueue()
        self.wake = threading.Event()
        self.stopping = False
        self.last_used = time.monotonic()
        self._ids = itertools.count()
        self.thread = threading.Thread(target=self._run, name=f"engine-{name}", daemon=True)
        self.thread.start()

    # -- called on the event loop ------------------------------------------------------------------------
    @property
    def in_flight(self) -> int:
        return len(self.tickets)

    def submit(self, prompt_ids: list[int], params: SamplingParams, constraint=None,
               adapter: str | None = None) -> Ticket:
        self.engine.check_prompt(prompt_ids)
        self.llm.adapters.slot(adapter)
        if self.in_flight >= self.max_in_flight:
            raise QueueFullError(self.name, 1 + self.in_flight // max(self.engine.scheduler.max_num_seqs, 1))
        ticket = Ticket(f"{self.name}-{next(self._ids)}", params.n, asyncio.Queue(), asyncio.get_running_loop())
        self.tickets[ticket.request_id] = ticket
        self.last_used = time.monotonic()
        self._send(("add", ticket.request_id, prompt_ids, params, constraint, adapter))
        return ticket

    def abort(self, ticket: Ticket) -> None:
        if self.tickets.pop(ticket.request_id, None) is not None:
            self._send(("abort", ticket.request_id))
        self.last_used = time.monotonic()

    async def embed(self, ids: list[int], adapter: str | None = None) -> list[float]:
        """Mean of the final (normed) hidden states over the tokens, L2-normalised."""
        self.engine.check_prompt(ids)
        self.llm.adapters.slot(adapter)
        return await self.call(self._embed, ids, adapter)

    async def call(self, fn, *args):
        """Run fn(*args) on the engine thread between two steps (adapter loads, embeddings)."""
        future = asyncio.get_running_loop().create_future()
        self._send(("call", fn, args, future, asyncio.get_running_loop()))
        self.last_used = time.monotonic()
        return await future

    def end_all(self) -> None:
        """End every request in flight now (a server that stops draining): each unfinished choice gets a last
        delta with finish_reason "abort", so streams close properly."""
        self._send(("end",))

    def stop(self) -> None:
        self.stopping = True
        self._send(("stop",))
        self.thread.join(timeout=30)

    def kv_usage(self) -> float:
        blocks = self.engine.blocks
        return 1.0 - blocks.num_free_blocks / max(len(blocks.blocks), 1)

    def _send(self, command: tuple) -> None:
        self.inbox.put(command)
        self.wake.set()

    # -- the engine thread -------------------------------------------------------------------------------
    def _run(self) -> None:
        torch.set_grad_enabled(False)
        while not self.stopping:
            self._drain_inbox()
            if not self.engine.has_unfinished():
                self.wake.wait(timeout=1.0)
                self.wake.clear()
                continue
            try:
                deltas = self.engine.step()
            except Exception as e:  # noqa: BLE001 - every waiting client gets the error, the thread lives on
                self._fail_all(e)
                continue
            for request_id, delta in deltas:
                self._deliver(request_id, delta)

    def _drain_inbox(self) -> None:
        while True:
            try:
                command = self.inbox.get_nowait()
            except queue.Empty:
                return
            kind = command[0]
            if kind == "add":
                _, rid, ids, params, constraint, adapter = command
                if rid not in self.tickets:
                    continue  # aborted before it started
                try:
                    self.engine.add_request(ids, params, rid, constraint=constraint, adapter=adapter)
                except Exception as e:  # noqa: BLE001
                    self._post(self.tickets.get(rid), e)
            elif kind == "abort":
                self.engine.abort(command[1])
            elif kind == "end":
                self._end_all()
            elif kind == "call":
                _, fn, args, future, loop = command
                try:
                    result = fn(*args)
                    loop.call_soon_threadsafe(_resolve, future, result, None)
                except Exception as e:  # noqa: BLE001
                    loop.call_soon_threadsafe(_resolve, future, None, e)

    def _embed(self, ids: list[int], adapter: str | None) -> list[float]:
        model, adapters = self.llm.model, self.llm.adapters
        tokens = torch.tensor(ids, device=self.engine.device)
        with adapters.apply([adapters.slot(adapter)]):
            hidden = model.hidden_states(tokens[None], torch.arange(len(ids), device=tokens.device))[0].float()
        return torch.nn.functional.normalize(hidden.mean(dim=0), dim=-1).tolist()

    def _deliver(self, request_id: str, delta: StreamDelta) -> None:
        ticket = self.tickets.get(request_id)
        if ticket is None:
            return
        if ticket.first_token is None:
            ticket.first_token = time.perf_counter()
        self._post(ticket, delta)
        if delta.finish_reason:
            ticket.finished.add(delta.index)
            if len(ticket.finished) == ticket.n:
                self._post(ticket, None)

    def _post(self, ticket: Ticket | None, item) -> None:
        if ticket is not None:
            ticket.loop.call_soon_threadsafe(ticket.out.put_nowait, item)

    def _end_all(self) -> None:
        for rid, ticket in list(self.tickets.items()):
            self.engine.abort(rid)
            for index in sorted(set(range(ticket.n)) - ticket.finished):
                self._deliver(rid, StreamDelta(index, None, "", finish_reason="abort"))

    def _fail_all(self, error: Exception) -> None:
        for rid, ticket in list(self.tickets.items()):
            self.engine.abort(rid)
            self._post(ticket, error)


def _resolve(future: asyncio.Future, result, error) -> None:
    if future.done():
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)
