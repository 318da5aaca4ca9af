"""A few LoRA steps teach a tiny model a fixed answer; qwenkit's own generation then gives it and stops."""
import json

import torch

from qwenkit.engine.generator import Generator
from qwenkit.loading import load_checkpoint
from qwenkit.models import load_model
from qwenkit.sampling_params import SamplingParams
from qwenkit.tune.adapter import load_lora, merge_lora
from qwenkit.tune.api import tune
from qwenkit.tune.peft_format import read_adapter
from tests.conftest import build_tiny_model
from tests.tune.tune_helpers import write_chat

QUESTION, ANSWER = "What is the codeword?", "Banana42"


def answer(folder, adapter=None) -> tuple[str, str]:
    checkpoint = load_checkpoint(folder)
    model = load_model(checkpoint, torch.float32)
    if adapter is not None:
        load_lora(model, read_adapter(adapter))
        merge_lora(model)
    tokenizer = checkpoint.tokenizer
    generator = Generator(model, tokenizer, checkpoint.generation.eos_token_ids or tokenizer.eos_token_ids, 256)
    prompt = tokenizer.encode_chat([{"role": "user", "content": QUESTION}], add_generation_prompt=True)
    deltas = list(generator.stream(prompt, SamplingParams(temperature=0, max_tokens=16)))
    return "".join(d.text for d in deltas), deltas[-1].finish_reason


def test_lora_teaches_a_fixed_answer_that_generation_reproduces(tmp_path):
    # default init of a random model makes greedy choices too peaked to move in a few steps; a small one does not
    folder = tmp_path / "tiny"
    build_tiny_model("qwen2", folder, std=0.02)
    before, _ = answer(folder)
    assert ANSWER not in before

    data = write_chat(tmp_path / "train.jsonl", [(QUESTION, ANSWER)], repeat=4)
    report = tune(str(folder), data, tmp_path / "out", quiet=True, lr=1e-2, max_steps=30, batch_size=2,
                  max_length=64, eval_split=0.0, threads=1)
    assert report.status == "finished" and report.losses[-1][1] < report.losses[0][1]
    config = json.loads((tmp_path / "out" / "adapter_config.json").read_text())
    assert config["r"] == 16 and config["lora_alpha"] == 32 and config["base_model_name_or_path"] == str(folder)
    assert len(config["target_modules"]) == 7

    text, finish = answer(folder, tmp_path / "out")
    assert text == ANSWER and finish == "stop"
