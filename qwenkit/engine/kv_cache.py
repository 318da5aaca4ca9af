import torch

from qwenkit.config import ModelConfig


def allocate_kv_cache(config: ModelConfig, rows: int, length: int, dtype: torch.dtype,
                      device: torch.device) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """A preallocated (key, value) pair per layer, each [rows, kv_heads, length, head_dim]."""
    shape = (rows, config.num_key_value_heads, length, config.head_dim)
    return [(torch.zeros(shape, dtype=dtype, device=device), torch.zeros(shape, dtype=dtype, device=device))
            for _ in range(config.num_hidden_layers)]


KVCache = list[tuple[torch.Tensor, torch.Tensor]]


def grow_kv_cache(cache: KVCache, length: int) -> KVCache:
    """Reallocate to `length` positions, keeping what is cached."""
    grown = []
    for k, v in cache:
        shape = (*k.shape[:2], length, k.shape[3])
        k2, v2 = k.new_zeros(shape), v.new_zeros(shape)
        k2[:, :, : k.shape[2]], v2[:, :, : v.shape[2]] = k, v
        grown.append((k2, v2))
    return grown
