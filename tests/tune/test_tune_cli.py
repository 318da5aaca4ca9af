"""`qwenkit tune`: a short run writes the adapter, report and chart; mistakes are one `error:` line."""
import json

import pytest
from typer.testing import CliRunner

from qwenkit.cli.main import app
from tests.tune.tune_helpers import EXACT, overrides_args, write_chat

QUICK = overrides_args({**EXACT, "max_steps": 2, "eval_every": 1})


@pytest.fixture
def setup(tiny_models, tmp_path, monkeypatch):
    monkeypatch.setenv("QWENKIT_HOME", str(tmp_path / "store"))
    return str(tiny_models("qwen3")[0]), write_chat(tmp_path / "train.jsonl"), tmp_path


def qwenkit(*args):
    return CliRunner().invoke(app, [str(a) for a in args])


def test_a_short_run_writes_the_adapter_report_and_chart(setup):
    model, data, tmp = setup
    (tmp / "tune.yaml").write_text("lora_r: 8\nweight_decay: 0.01\n")
    done = qwenkit("tune", model, "--data", data, "--out", tmp / "out", "--config", tmp / "tune.yaml", *QUICK,
                   "lora_r=2")
    assert done.exit_code == 0, done.output
    assert "training data" in done.output and "supervised tokens" in done.output  # the data summary
    assert "What is the codeword?" in done.output  # one example shown before training
    assert "2 steps, final loss" in done.output
    out = tmp / "out"
    assert (out / "adapter_config.json").is_file() and (out / "adapter_model.safetensors").is_file()
    assert json.loads((out / "adapter_config.json").read_text())["r"] == 2  # the override beats the file
    report = json.loads((out / "report.json").read_text())
    assert report["status"] == "finished" and report["steps"] == 2 and len(report["eval_losses"]) == 2
    assert report["config"]["weight_decay"] == 0.01
    assert report["data"]["examples"] + report["data"]["eval_examples"] == 10
    assert report["tokens_per_second"] > 0 and report["peak_rss_mb"] > 0 and report["wall_seconds"] > 0
    assert (out / "loss.png").read_bytes()[:4] == b"\x89PNG"
    assert (out / "best" / "best.json").is_file()


@pytest.mark.parametrize("args, words", [
    (["learning_rate=1e-4"], "learning_rate: unknown setting; did you mean lr?"),
    (["lora_r=big"], "lora_r: 'big' is not a valid whole number"),
    (["--resume"], "holds no checkpoint to resume"),
])
def test_setting_mistakes_are_one_line(setup, args, words):
    model, data, tmp = setup
    done = qwenkit("tune", model, "--data", data, "--out", tmp / "out", *args)
    assert done.exit_code == 1
    assert done.output.startswith("error:") and words in done.output and "Traceback" not in done.output


def test_refuses_a_folder_of_other_files_unless_forced(setup):
    model, data, tmp = setup
    mine = tmp / "mine"
    mine.mkdir()
    (mine / "thesis.txt").write_text("precious")
    done = qwenkit("tune", model, "--data", data, "--out", mine, *QUICK)
    assert done.exit_code == 1 and "not a qwenkit run" in done.output
    done = qwenkit("tune", model, "--data", data, "--out", mine, "--force", "--quiet", *QUICK)
    assert done.exit_code == 0, done.output
    assert (mine / "thesis.txt").read_text() == "precious" and (mine / "adapter_model.safetensors").is_file()
    again = qwenkit("tune", model, "--data", data, "--out", mine, "--quiet", *QUICK)
    assert again.exit_code == 1 and "already holds a qwenkit run" in again.output


def test_bad_data_and_missing_model_are_errors(setup):
    model, _, tmp = setup
    bad = tmp / "bad.jsonl"
    bad.write_text('{"messages": [{"role": "user", "content": "hi"}]}\nnot json\n')
    done = qwenkit("tune", model, "--data", bad, "--out", tmp / "out", *QUICK)
    assert done.exit_code == 1 and "error:" in done.output and "bad.jsonl:2" in done.output
    done = qwenkit("tune", tmp / "no-such-model", "--data", bad, "--out", tmp / "out2", *QUICK)
    assert done.exit_code == 1 and "no-such-model" in done.output


def test_help_lists_tune():
    done = qwenkit("tune", "--help")
    assert done.exit_code == 0 and "--resume" in done.output and "key=value" in done.output
