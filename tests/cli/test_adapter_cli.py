"""`qwenkit run --adapter DIR` answers with the adapter; `qwenkit serve --adapter NAME=DIR` serves it; bad
adapter folders are one-line errors."""
import pytest
import torch
from typer.testing import CliRunner

from qwenkit import LLM, SamplingParams
from qwenkit.cli.main import app
from tests.engine.test_adapters import random_adapter

PROMPT = "The weather today is"
FLAGS = ["--raw", "--temperature", "0", "--max-tokens", "8", "--quant", "none", "--max-model-len", "256"]


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch):
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    monkeypatch.setenv("QWENKIT_HOME", str(tmp_path / "store"))
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def tiny(tiny_models, tmp_path_factory):
    folder, hf = tiny_models("qwen3")
    return folder, random_adapter(tmp_path_factory.mktemp("cli-adapter") / "mine", hf, seed=21)


def qwenkit(*args):
    return CliRunner().invoke(app, [str(a) for a in args])


def test_run_with_an_adapter(tiny):
    folder, adapter = tiny
    llm = LLM(str(folder), quant="none", max_model_len=256, adapters={"mine": adapter})
    params = SamplingParams(temperature=0, max_tokens=8)
    tuned = qwenkit("run", folder, PROMPT, *FLAGS, "--adapter", adapter)
    base = qwenkit("run", folder, PROMPT, *FLAGS)
    assert tuned.exit_code == 0 and base.exit_code == 0, tuned.output + base.output
    assert tuned.stdout == llm.generate(PROMPT, params, adapter="mine")[0].outputs[0].text + "\n"
    assert base.stdout == llm.generate(PROMPT, params)[0].outputs[0].text + "\n"
    assert tuned.stdout != base.stdout


def assert_one_line_error(result, needle: str) -> None:
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit), result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and needle in lines[0], result.stderr


def test_run_with_a_missing_adapter_folder(tiny, tmp_path):
    assert_one_line_error(qwenkit("run", tiny[0], PROMPT, *FLAGS, "--adapter", tmp_path / "none"),
                          "no such adapter folder")


def test_serve_puts_adapters_on_the_first_model(tiny, monkeypatch):
    started = {}
    monkeypatch.setattr("qwenkit.server.shutdown.DrainingServer.run",
                        lambda server, sockets=None: started.update(app=server.config.app))
    result = qwenkit("serve", f"tiny={tiny[0]}", "--adapter", f"tuned={tiny[1]}", "--adapter", tiny[1], "--lazy")
    assert result.exit_code == 0, result.output
    pool = started["app"].state.pool
    assert pool.ids == ["tiny", "tiny:tuned", "tiny:mine"]
    assert pool.models["tiny"].adapters["mine"] == str(tiny[1])
    assert started["app"].state.settings.adapter_loading
    result = qwenkit("serve", f"tiny={tiny[0]}", "--lazy", "--host", "0.0.0.0", "--insecure")
    assert result.exit_code == 0 and not started["app"].state.settings.adapter_loading   # nobody to trust


def test_serve_refuses_bad_adapter_specs(tiny, tmp_path):
    assert_one_line_error(qwenkit("serve", f"tiny={tiny[0]}", "--adapter", f"x={tmp_path}"), "not a PEFT adapter")
    assert_one_line_error(qwenkit("serve", f"tiny={tiny[0]}", "--adapter", f"bad:name={tiny[1]}"), "adapter name")
    assert_one_line_error(qwenkit("serve", f"tiny={tiny[0]}", "--adapter", f"tiny={tiny[1]}"), "already the name")
