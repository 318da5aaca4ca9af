"""A real server on 127.0.0.1 (uvicorn in a background thread) serving a tiny random-weight Qwen3 ("tiny",
official Qwen3 template) and the embedded SmolLM2-135M-Instruct ("smollm2:135m")."""
import socket
import threading
import time

import httpx
import pytest

KV_BYTES = 128 << 20


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LiveServer:
    def __init__(self, app):
        import uvicorn

        from qwenkit.server.shutdown import DrainingServer
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.app = app
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning",
                                timeout_graceful_shutdown=5)
        self.server = DrainingServer(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self):
        self.thread.start()
        deadline = time.monotonic() + 120
        while not self.server.started:
            assert self.thread.is_alive(), "the server thread died while starting"
            assert time.monotonic() < deadline, "the server did not start in 120 s"
            time.sleep(0.05)
        return self

    def __exit__(self, *exc):
        self.server.should_exit = True
        self.thread.join(timeout=30)

    @property
    def pool(self):
        return self.app.state.pool


def make_pool(tiny_folder, smollm2: bool = True, **engine):
    from qwenkit.server.pool import ModelPool
    specs = [f"tiny={tiny_folder}"] + (["smollm2:135m"] if smollm2 else [])
    pool = ModelPool(specs, load_options=dict(quant="none", max_model_len=1024),
                     engine_options=dict(kv_cache_memory=KV_BYTES) | engine)
    return pool


@pytest.fixture(scope="session")
def tiny_folder(tiny_models):
    return tiny_models("qwen3")[0]


@pytest.fixture(scope="session")
def server(tiny_folder, smollm2_gguf):
    from qwenkit.server.app import create_app
    with LiveServer(create_app(make_pool(tiny_folder))) as live:
        yield live


@pytest.fixture()
def http(server):
    with httpx.Client(base_url=server.url, timeout=120) as client:
        yield client
