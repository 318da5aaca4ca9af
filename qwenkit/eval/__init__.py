"""Evaluation of the in-car assistant: tool-call accuracy, answer checks and latency, one report per run."""
