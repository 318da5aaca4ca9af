"""Customize a model on your own data: LoRA fine-tuning, PEFT-format adapters, merge and export."""
