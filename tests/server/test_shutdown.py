"""Graceful shutdown: a real `qwenkit serve` process gets SIGTERM mid-stream; the stream runs to its end,
new requests get 503 meanwhile, and the process exits 0. A drain that times out ends what still runs with
finish_reason "abort", streams closed properly."""
import json
import signal
import subprocess
import sys
import threading
import time

import httpx
import openai
import pytest

from qwenkit.server.app import Settings, create_app
from tests.server.conftest import LiveServer, free_port, make_pool

CHAT = {"model": "tiny", "messages": [{"role": "user", "content": "go"}]}


def wait_for(check, seconds: float, what: str):
    deadline = time.monotonic() + seconds
    while not (result := check()):
        assert time.monotonic() < deadline, f"gave up waiting for {what}"
        time.sleep(0.05)
    return result


def status_of(url: str) -> int | None:
    try:
        return httpx.get(url, timeout=5).status_code
    except httpx.TransportError:
        return None


@pytest.fixture()
def process(tiny_folder):
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "qwenkit.cli.main", "serve", f"tiny={tiny_folder}", "--port", str(port),
         "--quant", "none", "--max-model-len", "2048", "--kv-cache-memory", str(64 << 20), "--drain-timeout", "120"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: proc.poll() is not None or status_of(f"{url}/health") == 200, 180, "the server to start")
        assert proc.poll() is None, proc.communicate()[0][-3000:]
        yield proc, url
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_lets_the_stream_finish_refuses_new_work_and_exits_0(process, sig):
    proc, url = process
    client = openai.OpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0, timeout=120)
    stream = client.chat.completions.create(stream=True, stream_options={"include_usage": True}, max_tokens=400,
                                            extra_body={"ignore_eos": True}, **CHAT)
    chunks = iter(stream)
    first = [next(chunks) for _ in range(4)]
    proc.send_signal(sig)
    wait_for(lambda: status_of(f"{url}/health") == 503, 30, "/health to report draining")
    refused = httpx.post(f"{url}/v1/chat/completions", json={**CHAT, "max_tokens": 2}, timeout=30)
    metrics = httpx.get(f"{url}/metrics", timeout=30).text
    assert refused.status_code == 503 and "shutting down" in refused.json()["error"]["message"]
    assert 'qwenkit_requests_in_flight{model="tiny"} 1' in metrics, "the stream had ended before the refusal"
    rest = list(chunks)
    finishes = [c.choices[0].finish_reason for c in first + rest if c.choices and c.choices[0].finish_reason]
    assert finishes == ["length"] and rest[-1].usage.completion_tokens == 400
    assert proc.wait(timeout=30) == 0
    log = proc.stdout.read()
    assert "draining" in log and "Traceback" not in log


def test_drain_timeout_ends_requests_in_flight_cleanly(tiny_folder):
    pool = make_pool(tiny_folder, smollm2=False)
    with LiveServer(create_app(pool, Settings(drain_timeout=0))) as live:
        worker = live.pool.models["tiny"].worker
        whole: dict = {}
        body = {**CHAT, "max_tokens": 900, "ignore_eos": True}
        waiting = threading.Thread(target=lambda: whole.update(
            httpx.post(f"{live.url}/v1/chat/completions", json=body, timeout=120).json()))
        with httpx.stream("POST", f"{live.url}/v1/chat/completions", json={**body, "stream": True},
                          timeout=120) as r:
            lines = r.iter_lines()
            assert next(lines).startswith("data: ")
            waiting.start()
            wait_for(lambda: worker.in_flight == 2, 30, "both requests to run")
            live.server.handle_exit(signal.SIGTERM, None)
            events = [line.removeprefix("data: ") for line in lines if line]
        waiting.join(timeout=60)
        live.thread.join(timeout=60)
        assert not live.thread.is_alive(), "the server did not stop after the drain"
    assert events[-1] == "[DONE]"
    finishes = [c["choices"][0]["finish_reason"] for c in map(json.loads, events[:-1]) if c["choices"]]
    assert finishes[-1] == "abort" and finishes.count(None) == len(finishes) - 1
    assert whole["choices"][0]["finish_reason"] == "abort" and 0 < whole["usage"]["completion_tokens"] < 900
    assert not pool.loaded() and not worker.thread.is_alive()
