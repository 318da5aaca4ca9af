"""Customize a model on your own data: LoRA fine-tuning, PEFT-format adapters, merge and export."""


def __getattr__(name: str):
    """`qwenkit.tune.tune` and `TuneConfig`, imported on first use so the data and adapter modules stay light."""
    if name == "tune":
        from qwenkit.tune.api import tune
        return tune
    if name == "TuneConfig":
        from qwenkit.tune.config import TuneConfig
        return TuneConfig
    raise AttributeError(f"module 'qwenkit.tune' has no attribute {name!r}")
