"""API key, body limit, the bounded queue (429), loopback-only binding, /health and /metrics, keep_alive."""
import time

import httpx
import pytest
from typer.testing import CliRunner

from qwenkit.server.app import Settings, create_app
from tests.server.conftest import LiveServer, make_pool

HI = {"model": "tiny", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 2}


@pytest.fixture(scope="module")
def locked(tiny_folder):
    app = create_app(make_pool(tiny_folder, smollm2=False, max_num_seqs=1, max_queue=0),
                     Settings(api_key="s3cret", max_body_bytes=4096))
    with LiveServer(app) as live:
        yield live


def test_api_key_required_except_health(locked):
    with httpx.Client(base_url=locked.url, timeout=60) as c:
        assert c.get("/health").status_code == 200
        r = c.get("/v1/models")
        assert r.status_code == 401 and r.json()["error"]["code"] == "invalid_api_key"
        assert c.get("/api/tags").json() == {"error": "missing or wrong API key: send `Authorization: Bearer <key>`"}
        assert c.get("/v1/models", headers={"Authorization": "Bearer wrong"}).status_code == 401
        ok = c.post("/v1/chat/completions", json=HI, headers={"Authorization": "Bearer s3cret"})
        assert ok.status_code == 200


def test_body_limit_and_malformed_json(locked):
    auth = {"Authorization": "Bearer s3cret"}
    with httpx.Client(base_url=locked.url, timeout=60, headers=auth) as c:
        big = {**HI, "messages": [{"role": "user", "content": "x" * 5000}]}
        assert c.post("/v1/chat/completions", json=big).status_code == 413
        r = c.post("/v1/chat/completions", content=b"{not json", headers={"Content-Type": "application/json"})
        assert r.status_code == 400 and r.json()["error"]["param"] == "body"
        r = c.post("/v1/chat/completions", json={"model": "tiny"})
        assert r.status_code == 400 and r.json()["error"]["param"] == "messages"


def test_full_queue_answers_429_with_retry_after(locked):
    auth = {"Authorization": "Bearer s3cret"}
    long = {**HI, "max_tokens": 1000, "ignore_eos": True, "stream": True, "n": 16}
    with httpx.Client(base_url=locked.url, timeout=60, headers=auth) as c:
        with c.stream("POST", "/v1/chat/completions", json=long) as first:
            lines = first.iter_lines()   # kept: a dropped iterator closes the stream
            next(lines)
            r = c.post("/v1/chat/completions", json=HI)
            assert r.status_code == 429 and int(r.headers["Retry-After"]) >= 1
            assert r.json()["error"]["type"] == "rate_limit_exceeded"
        time.sleep(0.5)   # the hang-up above aborted the first request
        assert c.post("/v1/chat/completions", json=HI).status_code == 200


def test_metrics_are_prometheus_text(locked):
    text = httpx.get(f"{locked.url}/metrics", headers={"Authorization": "Bearer s3cret"}).text
    for name in ("qwenkit_requests_total", "qwenkit_generation_tokens_total", "qwenkit_queue_depth",
                 "qwenkit_kv_cache_usage_ratio", "qwenkit_request_latency_seconds_bucket",
                 "qwenkit_time_to_first_token_seconds_count"):
        assert name in text
    assert 'status="429"' in text or 'status="200"' in text


def test_non_loopback_bind_needs_a_key():
    from qwenkit.cli.main import app
    from qwenkit.cli.serve import register
    if "serve" not in {c.name or c.callback.__name__ for c in app.registered_commands}:
        register(app)
    out = CliRunner().invoke(app, ["serve", "tiny=/nonexistent", "--host", "0.0.0.0"])
    assert out.exit_code == 1 and "--api-key" in out.output


def test_keep_alive_zero_unloads(tiny_folder):
    pool = make_pool(tiny_folder, smollm2=False)
    with LiveServer(create_app(pool, Settings(preload=False))) as live, httpx.Client(base_url=live.url) as c:
        assert c.get("/api/ps").json()["models"] == []
        r = c.post("/api/generate", json={"model": "tiny", "prompt": "hi", "stream": False, "keep_alive": 0,
                                          "options": {"num_predict": 2}}, timeout=60)
        assert r.status_code == 200
        assert pool.unload_idle() == ["tiny"]
        assert c.get("/api/ps").json()["models"] == []
