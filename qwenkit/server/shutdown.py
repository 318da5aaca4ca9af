"""Graceful shutdown. On SIGTERM or SIGINT the server drains: new requests get 503 while the ones in flight
(streams included) run to their end, for up to the drain timeout; then whatever still runs is ended with
finish_reason "abort" (streams close properly), and the process exits 0. A second signal ends the drain
at once. uvicorn's own handling would stop listening at once and exit by the signal."""
import logging
import time
from dataclasses import dataclass

import uvicorn

log = logging.getLogger("uvicorn.error")   # printed with uvicorn's own lines


@dataclass(slots=True)
class Drain:
    timeout: float = 30.0
    active: int = 0                 # HTTP requests being answered (streams until their last byte)
    deadline: float | None = None   # monotonic time the drain ends; None: not draining

    @property
    def draining(self) -> bool:
        return self.deadline is not None

    def begin(self) -> bool:
        """Start draining; False when it already is."""
        if self.draining:
            return False
        self.deadline = time.monotonic() + self.timeout
        return True

    def expired(self) -> bool:
        return self.draining and time.monotonic() >= self.deadline


class DrainingServer(uvicorn.Server):
    """uvicorn with the drain above; the app is create_app's (its state holds the pool and the Drain)."""

    def __init__(self, config: uvicorn.Config):
        super().__init__(config)
        self.drain: Drain = config.app.state.drain
        self.pool = config.app.state.pool

    def handle_exit(self, sig: int, frame) -> None:
        if self.drain.begin():
            log.info("draining: %d request(s) in flight may finish within %.0f s; new requests get 503",
                     self.drain.active, self.drain.timeout)
        else:
            self.drain.deadline = time.monotonic()

    async def on_tick(self, counter: int) -> bool:
        if await super().on_tick(counter):
            return True
        if not self.drain.draining:
            return False
        if self.drain.active and self.drain.expired():
            log.warning("drain timeout: ending %d request(s) still in flight", self.drain.active)
            for served in self.pool.loaded():
                served.worker.end_all()
            return True
        return not self.drain.active
