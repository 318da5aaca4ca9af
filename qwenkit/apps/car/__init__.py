"""The in-car assistant: offline voice and maps on a small model customized by qwenkit."""
from pathlib import Path

# The LoRA adapter `qwenkit tune` made for SmolLM2-135M-Instruct on `qwenkit car data` (see docs/car.md for the
# exact commands); the car assistant's default.
SHIPPED_ADAPTER = Path(__file__).parent / "adapter"
