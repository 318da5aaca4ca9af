"""Two processes under torchrun (gloo) each train a disjoint half of every global batch; the loss trajectory and
the adapter match one process training the same global batch."""
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from qwenkit.tune.api import tune
from tests.tune.tune_helpers import EXACT, adapter_tensors, overrides_args, write_chat

ROOT = Path(__file__).resolve().parents[2]
SETTINGS = {**EXACT, "batch_size": 4, "max_steps": 3, "eval_every": 1, "eval_split": 0.2}


@pytest.mark.skipif(shutil.which("torchrun", path=str(Path(sys.executable).parent)) is None,
                    reason="torchrun is not installed next to this Python")
def test_two_processes_match_one(tiny_models, tmp_path):
    model = str(tiny_models("qwen2")[0])
    data = write_chat(tmp_path / "train.jsonl")
    torchrun = str(Path(sys.executable).parent / "torchrun")
    command = [torchrun, "--nproc_per_node", "2", "--standalone", "-m", "qwenkit.cli.main", "tune", model,
               "--data", str(data), "--out", str(tmp_path / "two"), "--quiet", *overrides_args(SETTINGS)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    two = json.loads((tmp_path / "two" / "report.json").read_text())
    one = tune(model, data, tmp_path / "one", quiet=True, **SETTINGS)
    assert two["world_size"] == 2 and one.world_size == 1
    assert two["tokens"] == one.tokens  # the halves cover the whole global batch, each row once
    for (step_a, a), (step_b, b) in zip(two["losses"], one.losses, strict=True):
        assert step_a == step_b and abs(a - b) < 1e-5
    for (_, a), (_, b) in zip(two["eval_losses"], one.eval_losses, strict=True):
        assert abs(a - b) < 1e-5
    ta, tb = adapter_tensors(tmp_path / "two"), adapter_tensors(tmp_path / "one")
    for key in tb:
        torch.testing.assert_close(ta[key], tb[key], rtol=1e-4, atol=1e-6)
    assert any(tb[key].abs().sum() > 0 for key in tb if "lora_B" in key)  # it trained
