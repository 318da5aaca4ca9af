"""The local model store: pull, import, create, list, rm, verify, prune; and `resolve` for every command
that takes a model (a store name, a folder or a .gguf path)."""
from qwenkit.store.offline import enforce_offline
from qwenkit.store.resolve import ResolvedModel, describe, resolve

__all__ = ["ResolvedModel", "describe", "enforce_offline", "resolve"]
