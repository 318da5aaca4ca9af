"""Small chat datasets and settings shared by the training-loop tests."""
import json
from pathlib import Path

from safetensors.torch import load_file

QA = [("What is the codeword?", "Banana42"), ("Name a fruit.", "Apple"), ("Say hi.", "Hi there!"),
      ("Count to three.", "One, two, three."), ("What colour is the sky?", "Blue."),
      ("Capital of France?", "Paris."), ("Two plus two?", "Four."), ("Opposite of hot?", "Cold."),
      ("A large animal?", "An elephant."), ("Spell cat.", "C, A, T.")]

# exact settings: fp32, no dropout, a constant rate (so the schedule does not depend on the step count)
EXACT = dict(precision="fp32", lora_dropout=0.0, warmup_ratio=0.0, min_lr_ratio=1.0, max_length=64, threads=1,
             batch_size=2, micro_batch_size=1, lr=1e-3, lora_r=4, lora_alpha=8)


def write_chat(path: Path, pairs=QA, repeat: int = 1) -> Path:
    with open(path, "w") as f:
        for _ in range(repeat):
            for question, answer in pairs:
                messages = [{"role": "user", "content": question}, {"role": "assistant", "content": answer}]
                f.write(json.dumps({"messages": messages}) + "\n")
    return path


def adapter_tensors(folder: Path) -> dict:
    return load_file(folder / "adapter_model.safetensors")


def overrides_args(settings: dict) -> list[str]:
    return [f"{k}={v}" for k, v in settings.items()]
