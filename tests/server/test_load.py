"""Under load: 32 concurrent streaming clients for 30 s, some hanging up midway. Every finished stream is
well formed, every request is answered 200, and afterwards no request is left in the engine and no cache
block is held. Latency percentiles of the finished streams are printed."""
import json
import os
import random
import statistics
import threading
import time

import httpx
import pytest

DURATION_S = int(os.environ.get("QWENKIT_LOAD_SECONDS", "30"))
CLIENTS = 32


def one_stream(url: str, rng: random.Random, hang_up: bool) -> tuple[int, bool]:
    body = {"model": "tiny", "stream": True, "max_tokens": rng.randint(4, 24), "temperature": 0.9,
            "messages": [{"role": "user", "content": "word " * rng.randint(1, 60)}],
            "stream_options": {"include_usage": True}}
    with httpx.Client(timeout=60) as client, client.stream("POST", f"{url}/v1/chat/completions", json=body) as r:
        if r.status_code != 200:
            return r.status_code, False
        events = []
        for line in r.iter_lines():
            if line:
                events.append(line)
            if hang_up and len(events) >= 3:
                return 200, False          # closing the connection mid-stream
    assert events[-1] == "data: [DONE]", events[-3:]
    chunks = [json.loads(e.removeprefix("data: ")) for e in events[:-1]]
    assert all(e.startswith("data: ") for e in events)
    finishes = [c["choices"][0]["finish_reason"] for c in chunks if c["choices"]]
    assert finishes[-1] in ("stop", "length") and finishes.count(None) == len(finishes) - 1
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    usage = chunks[-1]["usage"]
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
    assert usage["completion_tokens"] == body["max_tokens"] if finishes[-1] == "length" else \
        usage["completion_tokens"] <= body["max_tokens"]
    return 200, True


@pytest.mark.slow
def test_concurrent_streams_with_disconnects(server, capsys):
    statuses, completed, errors, seconds = [], [], [], []
    stop_at = time.monotonic() + DURATION_S

    def client_loop(seed: int):
        rng = random.Random(seed)
        while time.monotonic() < stop_at:
            started = time.perf_counter()
            try:
                status, done = one_stream(server.url, rng, hang_up=rng.random() < 0.25)
                statuses.append(status)
                completed.append(done)
                if done:
                    seconds.append(time.perf_counter() - started)
            except Exception as e:  # noqa: BLE001 - reported below
                errors.append(repr(e))

    threads = [threading.Thread(target=client_loop, args=(i,)) for i in range(CLIENTS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=DURATION_S + 120)
    cuts = statistics.quantiles(seconds, n=100) if len(seconds) > 1 else seconds * 99
    with capsys.disabled():
        print(f"\nload: {CLIENTS} clients, {DURATION_S} s: {len(statuses)} streams, {sum(completed)} finished, "
              f"{len(statuses) - sum(completed)} hung up; whole-stream latency p50 {cuts[49]:.2f} s, "
              f"p99 {cuts[98]:.2f} s")
    assert not errors, errors[:3]
    assert statuses and all(s == 200 for s in statuses), sorted(set(statuses))
    assert sum(completed) >= CLIENTS and not all(completed)
    worker = server.pool.models["tiny"].worker
    deadline = time.monotonic() + 10
    while (worker.in_flight or worker.engine.has_unfinished()) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert worker.in_flight == 0 and not worker.engine.has_unfinished() and not worker.engine.requests
    assert worker.engine.blocks.num_free_blocks == len(worker.engine.blocks.blocks)


def test_disconnect_aborts_at_once(server):
    worker = server.pool.models["tiny"].worker
    body = {"model": "tiny", "stream": True, "max_tokens": 900, "ignore_eos": True,
            "messages": [{"role": "user", "content": "go"}]}
    with httpx.Client(timeout=60) as client, client.stream("POST", f"{server.url}/v1/chat/completions",
                                                           json=body) as r:
        assert r.status_code == 200, r.read()
        lines = r.iter_lines()
        content = [line for line, _ in zip(lines, range(12)) if line.startswith("data: ")]
        assert len(content) == 6 and worker.in_flight == 1 and worker.engine.has_unfinished()
    deadline = time.monotonic() + 3
    while worker.engine.has_unfinished() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not worker.engine.has_unfinished() and worker.in_flight == 0
    assert worker.engine.blocks.num_free_blocks == len(worker.engine.blocks.blocks)
