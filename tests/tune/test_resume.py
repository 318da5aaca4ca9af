"""Stopping and resuming a run changes nothing: same rows in the same order, same optimizer and RNG state,
so the losses and the adapter are bit-for-bit those of a run that never stopped."""
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from qwenkit.tune import checkpoint as ckpt
from qwenkit.tune.api import tune
from qwenkit.tune.trainer import Interrupted, Trainer
from tests.tune.tune_helpers import EXACT, adapter_tensors, overrides_args, write_chat

ROOT = Path(__file__).resolve().parents[2]
# the real schedule (warm-up, cosine) and dropout: resuming must restore the scheduler and the RNG too
SCHEDULED = {**EXACT, "lora_dropout": 0.1, "warmup_ratio": 0.3, "min_lr_ratio": 0.0, "max_steps": 6,
             "eval_every": 2, "save_every": 0}


@pytest.fixture(scope="module")
def setup(tiny_models, tmp_path_factory):
    folder = tmp_path_factory.mktemp("resume")
    data = write_chat(folder / "train.jsonl")
    straight = tune(str(tiny_models("qwen2")[0]), data, folder / "straight", quiet=True, **SCHEDULED)
    return str(tiny_models("qwen2")[0]), data, folder, straight


def assert_same_run(a: Path, b: Path, report_a, report_b) -> None:
    assert report_a.losses == report_b.losses
    assert report_a.eval_losses == report_b.eval_losses and report_a.best == report_b.best
    for name in ("", "best"):
        ta, tb = adapter_tensors(a / name), adapter_tensors(b / name)
        assert ta.keys() == tb.keys() and ta
        for key in ta:
            assert torch.equal(ta[key], tb[key]), key


def test_stop_between_steps_then_resume_is_bit_for_bit(setup, monkeypatch):
    model, data, folder, straight = setup
    record = Trainer.record

    def stop_after_three(self, *args):
        record(self, *args)
        if self.step == 3:
            self.stop_requested = True  # what Ctrl-C does
    monkeypatch.setattr(Trainer, "record", stop_after_three)
    out = folder / "between"
    with pytest.raises(Interrupted, match="interrupted at step 3/6"):
        tune(model, data, out, quiet=True, **SCHEDULED)
    assert ckpt.latest_checkpoint(out).name == "step-000003"
    assert not (out / "adapter_model.safetensors").exists()  # no final adapter from a stopped run
    monkeypatch.setattr(Trainer, "record", record)
    resumed = tune(model, data, out, resume=True, quiet=True, **SCHEDULED)
    assert resumed.steps == 6 and resumed.status == "finished"
    assert_same_run(folder / "straight", out, straight, resumed)


def test_stop_inside_a_step_rolls_back_to_its_start(setup, monkeypatch):
    model, data, folder, straight = setup
    micro_loss = Trainer.micro_loss
    calls = []

    def stop_mid_step(self, batch):
        calls.append(1)
        if self.model.training and len(calls) == 2 * 4 + 2 + 1:  # 4 steps, 2 evals, then inside step 5
            self.stop_requested = True
        return micro_loss(self, batch)
    monkeypatch.setattr(Trainer, "micro_loss", stop_mid_step)
    out = folder / "inside"
    with pytest.raises(Interrupted, match="interrupted at step 4/6"):
        tune(model, data, out, quiet=True, **SCHEDULED)
    monkeypatch.setattr(Trainer, "micro_loss", micro_loss)
    resumed = tune(model, data, out, resume=True, quiet=True, **SCHEDULED)
    assert_same_run(folder / "straight", out, straight, resumed)


def test_resume_refuses_changed_settings_or_data(setup, tmp_path):
    model, data, folder, _ = setup
    with pytest.raises(Exception, match="lora_r: the run in .* used 4, not 8"):
        tune(model, data, folder / "straight", resume=True, quiet=True, **{**SCHEDULED, "lora_r": 8})
    other = write_chat(tmp_path / "other.jsonl", repeat=2)
    with pytest.raises(Exception, match="training data differs"):
        tune(model, other, folder / "straight", resume=True, quiet=True, **SCHEDULED)
    with pytest.raises(Exception, match="already holds a qwenkit run"):
        tune(model, data, folder / "straight", quiet=True, **SCHEDULED)


def test_ctrl_c_saves_and_resume_completes(setup, tmp_path):
    """SIGINT to a real `qwenkit tune` process: it saves, says how to resume, and the resumed run matches a
    run that never stopped."""
    model, data, _, _ = setup
    constant = {**EXACT, "max_steps": 2000, "save_every": 1, "eval_split": 0.0, "keep_checkpoints": 2}
    out = tmp_path / "run"
    command = [sys.executable, "-m", "qwenkit.cli.main", "tune", model, "--data", str(data), "--out", str(out),
               "--quiet", *overrides_args(constant)]
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               env={**os.environ, "PYTHONUNBUFFERED": "1"})
    deadline = time.monotonic() + 120
    while ckpt.latest_checkpoint(out) is None and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.1)
    process.send_signal(signal.SIGINT)
    stdout, stderr = process.communicate(timeout=120)
    assert process.returncode == 130, stderr
    assert "interrupted at step" in stderr and "resume with: qwenkit tune" in stderr and "--resume" in stderr
    stopped = int(ckpt.latest_checkpoint(out).name.removeprefix("step-"))
    assert 1 <= stopped < 2000
    # a constant rate makes the schedule independent of max_steps, so the run can be finished early
    finish = {**constant, "max_steps": stopped + 2}
    resumed = tune(model, data, out, resume=True, quiet=True, **finish)
    straight = tune(model, data, tmp_path / "straight", quiet=True, **finish)
    assert resumed.losses == straight.losses and len(resumed.losses) == stopped + 2
    a, b = adapter_tensors(out), adapter_tensors(tmp_path / "straight")
    assert all(torch.equal(a[k], b[k]) for k in a)
