"""LoRA adapters on a live server with the real openai and ollama clients: chosen per request, batched
together, loaded and unloaded while it runs (also mid-stream), and clear 4xx errors."""
import threading

import httpx
import ollama
import openai
import pytest
import torch

from qwenkit import LLM, SamplingParams
from qwenkit.tune.peft_format import AdapterFiles, write_adapter
from tests.engine.test_adapters import random_adapter
from tests.server.conftest import KV_BYTES, LiveServer

PROMPT = "Once upon a time"
GREEDY = dict(temperature=0, max_tokens=8, extra_body={"ignore_eos": True})


@pytest.fixture(scope="module")
def folders(tiny_models, tmp_path_factory):
    root, hf = tmp_path_factory.mktemp("server-adapters"), tiny_models("qwen3")[1]
    return {"a": random_adapter(root / "a", hf, seed=11),
            "b": random_adapter(root / "b", hf, targets=("q_proj", "v_proj", "down_proj"), seed=12)}


@pytest.fixture(scope="module")
def reference(tiny_models, folders):
    llm = LLM(str(tiny_models("qwen3")[0]), quant="none", max_model_len=1024,
              adapters={"a": folders["a"], "b": folders["b"]})

    def answer(adapter: str | None, max_tokens: int = 8, ignore_eos: bool = True) -> str:
        params = SamplingParams(temperature=0, max_tokens=max_tokens, ignore_eos=ignore_eos)
        return llm.generate(PROMPT, params, adapter=adapter)[0].outputs[0].text
    return answer


@pytest.fixture(scope="module")
def live(tiny_models, folders):
    from qwenkit.server.app import create_app
    from qwenkit.server.pool import ModelPool
    pool = ModelPool([f"tiny={tiny_models('qwen3')[0]}"], load_options=dict(quant="none", max_model_len=1024),
                     engine_options=dict(kv_cache_memory=KV_BYTES), adapters={"a": str(folders["a"])})
    with LiveServer(create_app(pool)) as server:
        yield server


@pytest.fixture()
def client(live):
    with openai.OpenAI(base_url=f"{live.url}/v1", api_key="unused", max_retries=0, timeout=120) as c:
        yield c


def complete(client, model: str, **kw) -> str:
    return client.completions.create(model=model, prompt=PROMPT, **(GREEDY | kw)).choices[0].text


def post(live, path: str, body: dict) -> httpx.Response:
    return httpx.post(f"{live.url}/v1/{path}", json=body, timeout=120)


def test_adapter_is_chosen_per_request(client, reference):
    base, tuned = complete(client, "tiny"), complete(client, "tiny:a")
    assert base == reference(None) and tuned == reference("a") and base != tuned
    assert complete(client, "a") == tuned
    chat = client.chat.completions.create(model="tiny:a", messages=[{"role": "user", "content": "Hi"}],
                                          **GREEDY)
    assert chat.model == "tiny:a" and chat.choices[0].message.content is not None


def test_models_and_tags_list_the_adapters(client, live, folders):
    models = {m.id: m for m in client.models.list().data}
    assert set(models) == {"tiny", "tiny:a"}
    assert models["tiny:a"].model_extra["parent"] == "tiny"
    assert models["tiny:a"].model_extra["root"] == str(folders["a"])
    tags = {m["name"]: m for m in httpx.get(f"{live.url}/api/tags").json()["models"]}
    assert tags["tiny:a"]["details"]["parent_model"] == "tiny"


def test_ollama_generate_with_an_adapter(live, reference):
    out = ollama.Client(host=live.url).generate(model="tiny:a", prompt=PROMPT, raw=True, stream=False,
                                                options={"temperature": 0, "num_predict": 8})
    assert out.response == reference("a", 8, ignore_eos=False)
    assert out.response != reference(None, 8, ignore_eos=False)


def test_requests_for_different_adapters_run_together(client, reference):
    results: dict[str, str] = {}

    def ask(model: str) -> None:
        results[model] = complete(client, model, max_tokens=24)
    threads = [threading.Thread(target=ask, args=(m,)) for m in ("tiny", "tiny:a", "a")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == {"tiny": reference(None, 24), "tiny:a": reference("a", 24), "a": reference("a", 24)}


def test_hot_load_then_use_then_unload(client, live, folders, reference):
    r = post(live, "load_lora_adapter", {"lora_name": "b", "lora_path": str(folders["b"])})
    assert r.status_code == 200, r.text
    assert "tiny:b" in {m.id for m in client.models.list().data}
    assert complete(client, "tiny:b") == reference("b")
    assert post(live, "unload_lora_adapter", {"lora_name": "b"}).status_code == 200
    with pytest.raises(openai.NotFoundError, match="loaded adapters: a"):
        complete(client, "tiny:b")
    with pytest.raises(openai.NotFoundError, match="tiny:a"):
        complete(client, "b")
    assert post(live, "unload_lora_adapter", {"lora_name": "b"}).status_code == 404
    assert complete(client, "tiny:a") == reference("a")


def test_unload_while_streaming_lets_the_stream_finish(client, live, folders, reference):
    assert post(live, "load_lora_adapter", {"lora_name": "c", "lora_path": str(folders["a"])}).status_code == 200
    adapters = live.pool.models["tiny"].worker.llm.adapters
    stream = client.completions.create(model="tiny:c", prompt=PROMPT, stream=True, **(GREEDY | {"max_tokens": 300}))
    text, retired = "", None
    for i, chunk in enumerate(stream):
        text += chunk.choices[0].text if chunk.choices else ""
        if i == 2:
            assert post(live, "unload_lora_adapter", {"lora_name": "c"}).status_code == 200
            retired = set(adapters.retired)
    assert retired, "the stream ended before the unload: nothing was tested"
    assert text == reference("a", 300)
    with pytest.raises(openai.NotFoundError):
        complete(client, "tiny:c")
    assert not adapters.users and not adapters.retired


def test_bad_loads_are_refused(live, folders, tmp_path):
    write_adapter(tmp_path, AdapterFiles(r=2, alpha=2, target_modules=["o_proj"], weights={
        "model.layers.0.self_attn.o_proj": (torch.ones(2, 100), torch.ones(64, 2))}))
    r = post(live, "load_lora_adapter", {"lora_name": "odd", "lora_path": str(tmp_path)})
    assert r.status_code == 400 and "model.layers.0.self_attn.o_proj has A [2, 100]" in r.json()["error"]["message"]
    r = post(live, "load_lora_adapter", {"lora_name": "a", "lora_path": str(folders["b"])})
    assert r.status_code == 400 and "already" in r.text
    r = post(live, "load_lora_adapter", {"lora_name": "x", "lora_path": str(tmp_path / "missing")})
    assert r.status_code == 400 and "no such adapter folder" in r.text
    assert {m["id"] for m in httpx.get(f"{live.url}/v1/models").json()["data"]} == {"tiny", "tiny:a"}


def test_runtime_loading_can_be_off(tiny_folder):
    from qwenkit.server.app import Settings, create_app
    from qwenkit.server.pool import ModelPool
    pool = ModelPool([f"tiny={tiny_folder}"], load_options=dict(quant="none"))
    with LiveServer(create_app(pool, Settings(preload=False, adapter_loading=False))) as server:
        r = httpx.post(f"{server.url}/v1/load_lora_adapter", json={"lora_name": "x", "lora_path": "/tmp"})
    assert r.status_code == 403 and "--api-key" in r.text
