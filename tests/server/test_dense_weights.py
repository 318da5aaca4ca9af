"""`qwenkit serve --dense-weights`: the served engine keeps bf16 copies of the packed weights for batched steps,
and a request still gets an answer through the worker."""
import asyncio

from typer.testing import CliRunner

from qwenkit.cli.main import app


def test_serve_offers_the_flag():
    out = CliRunner().invoke(app, ["serve", "--help"], env={"COLUMNS": "200"}).output
    assert "--dense-weights" in out


def test_worker_with_dense_weights_answers(smollm2_gguf):
    from qwenkit import SamplingParams
    from qwenkit.llm import LLM
    from qwenkit.server.worker import EngineWorker
    llm = LLM(str(smollm2_gguf), threads=1)
    assert llm.quant == "int4"
    worker = EngineWorker("smollm2", llm, kv_cache_memory=64 << 20, dense_weights=True)
    try:
        assert worker.engine.dense_weight_bytes > 100 << 20   # 2 bytes for each of the 135M weights

        async def ask() -> str:
            ticket = worker.submit(llm.encode("The capital of France is"), SamplingParams(temperature=0, max_tokens=4))
            text = ""
            while True:
                item = await asyncio.wait_for(ticket.out.get(), 120)
                if item is None:
                    return text
                assert not isinstance(item, Exception), item
                text += item.text
        assert asyncio.run(ask()).strip()
    finally:
        worker.stop()
