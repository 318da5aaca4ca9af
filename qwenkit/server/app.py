"""The FastAPI application: routers, bearer auth, body size limit, request metrics, idle unloading, and
the 503 answer while the server drains before it stops."""
import asyncio
import contextlib
import secrets
import time
from dataclasses import dataclass

from fastapi import FastAPI
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse

from qwenkit.server import errors
from qwenkit.server.metrics import Metrics
from qwenkit.server.pool import ModelPool
from qwenkit.server.shutdown import Drain

OPEN_PATHS = {"/health", "/"}          # the page is static; everything it fetches needs the key
PROBE_PATHS = {"/health", "/metrics"}  # still answered while draining, and not counted as work in flight
IDLE_CHECK_SECONDS = 5.0


@dataclass(slots=True)
class Settings:
    api_key: str | None = None
    max_body_bytes: int = 8 << 20
    preload: bool = True
    adapter_loading: bool = True   # POST /v1/load_lora_adapter reads a folder the client names
    drain_timeout: float = 30.0    # seconds in-flight requests may run on after SIGTERM


def create_app(pool: ModelPool, settings: Settings | None = None) -> FastAPI:
    from qwenkit.server import adapter_api, ollama_api, openai_api, page
    settings = settings or Settings()
    metrics = pool.metrics = pool.metrics or Metrics()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI):
        if settings.preload:
            for name in pool.names:
                await pool.get(name)
        unloader = asyncio.create_task(_unload_idle(pool))
        yield
        unloader.cancel()
        await asyncio.to_thread(pool.close)

    app = FastAPI(title="qwenkit server", version="0.1.0", lifespan=lifespan,
                  description="OpenAI- and Ollama-compatible API for local Qwen-family models.")
    app.state.pool, app.state.settings, app.state.started = pool, settings, time.time()
    app.state.drain = drain = Drain(settings.drain_timeout)
    errors.install(app)
    app.include_router(openai_api.router)
    app.include_router(ollama_api.router)
    app.include_router(adapter_api.router)

    @app.get("/health", tags=["server"])
    async def health():
        models = [m.name for m in pool.loaded()]
        if drain.draining:
            return JSONResponse({"status": "draining", "models": models}, status_code=503)
        return {"status": "ok", "models": models}

    @app.get("/metrics", tags=["server"], response_class=PlainTextResponse)
    async def prometheus():
        return PlainTextResponse(metrics.render(pool), media_type="text/plain; version=0.0.4")

    @app.get("/", include_in_schema=False, response_class=HTMLResponse)
    async def chat_page():
        return HTMLResponse(page.HTML)

    return Guard(app, settings, metrics)


async def _unload_idle(pool: ModelPool) -> None:
    while True:
        await asyncio.sleep(IDLE_CHECK_SECONDS)
        for m in pool.loaded():
            if m.keep_alive is not None and not m.worker.in_flight and \
                    time.monotonic() - m.worker.last_used >= m.keep_alive:
                await asyncio.to_thread(pool.unload, m)


class Guard:
    """ASGI wrapper in front of the app: bearer auth, the body size limit, per-request metrics, and the count
    of requests in flight (503 for new ones while draining)."""

    def __init__(self, app: FastAPI, settings: Settings, metrics: Metrics):
        self.app, self.settings, self.metrics = app, settings, metrics
        self.state, self.drain = app.state, app.state.drain

    def __getattr__(self, name):
        return getattr(self.app, name)

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        path, started, status = scope["path"], time.perf_counter(), [0]
        problem = self._refuse(scope)
        if problem is not None:
            response = errors.error_response(path, *problem)
            status[0] = response.status_code
            await response(scope, receive, send)
        else:
            async def counting_send(message):
                if message["type"] == "http.response.start":
                    status[0] = message["status"]
                await send(message)
            counted = path not in PROBE_PATHS
            self.drain.active += counted
            try:
                await self.app(scope, self._limited(receive, path), counting_send)
            finally:
                self.drain.active -= counted
        self.metrics.request_done(_route(path), status[0], time.perf_counter() - started)

    def _refuse(self, scope) -> tuple | None:
        if self.drain.draining and scope["path"] not in PROBE_PATHS:
            return (503, "the server is shutting down and takes no new requests; retry on another instance or "
                    "once it is back", None, "server_shutting_down", {"Connection": "close"})
        headers = dict(scope.get("headers") or [])
        key = self.settings.api_key
        if key and scope["path"] not in OPEN_PATHS:
            given = headers.get(b"authorization", b"").decode("latin-1")
            if not secrets.compare_digest(given.encode(), f"Bearer {key}".encode()):
                return 401, "missing or wrong API key: send `Authorization: Bearer <key>`", None, "invalid_api_key"
        length = headers.get(b"content-length")
        if length and length.isdigit() and int(length) > self.settings.max_body_bytes:
            return 413, f"the request body is over the {self.settings.max_body_bytes} byte limit", "body", None
        return None

    def _limited(self, receive, path: str):
        limit, seen = self.settings.max_body_bytes, [0]

        async def limited_receive():
            message = await receive()
            if message["type"] == "http.request":
                seen[0] += len(message.get("body", b""))
                if seen[0] > limit:
                    raise errors.BodyTooLarge(limit)
            return message
        return limited_receive


def _route(path: str) -> str:
    return path if path.startswith(("/v1/", "/api/", "/health", "/metrics")) or path == "/" else "other"
