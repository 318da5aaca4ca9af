"""Build a CausalLM from any Checkpoint and load its weights."""
import torch

from qwenkit.errors import ModelLoadError
from qwenkit.layers.rotary import rope_frequencies
from qwenkit.loading.checkpoint import Checkpoint
from qwenkit.models.decoder import CausalLM

__all__ = ["CausalLM", "load_model"]


def load_model(checkpoint: Checkpoint, dtype: torch.dtype = torch.float32,
               device: str | torch.device = "cpu") -> CausalLM:
    config = checkpoint.config
    with torch.device("meta"):
        model = CausalLM(config)
    expected = dict(model.state_dict())
    tensors = dict(checkpoint.tensors)
    if config.tie_word_embeddings:
        tensors.pop("lm_head.weight", None)
        expected.pop("lm_head.weight", None)
    missing = sorted(set(expected) - set(tensors))
    if missing:
        more = f" and {len(missing) - 1} more" if len(missing) > 1 else ""
        raise ModelLoadError(checkpoint.path, f"missing tensor {missing[0]!r}{more}",
                             "the checkpoint is incomplete or not of this architecture")
    state = {}
    for name, meta in expected.items():
        t = tensors[name]
        if tuple(t.shape) != tuple(meta.shape):
            raise ModelLoadError(checkpoint.path, f"tensor {name!r} has shape {tuple(t.shape)}, "
                                 f"expected {tuple(meta.shape)}", "the config does not match the weights")
        state[name] = t.to(device=device, dtype=dtype)
    model.load_state_dict(state, strict=False, assign=True)
    model.inv_freq = rope_frequencies(config)[0].to(device)  # buffers were built on the meta device
    model.tie_weights()
    return model.eval().requires_grad_(False)
