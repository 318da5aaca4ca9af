"""One decoder serves Qwen2/2.5, Qwen3, Qwen3-MoE and Llama, switched by ModelConfig."""
import torch
from torch import nn
from torch.utils.checkpoint import checkpoint

from qwenkit.config import ModelConfig
from qwenkit.layers.attention import Attention, Context
from qwenkit.layers.mlp import MLP
from qwenkit.layers.moe import SparseMoE
from qwenkit.layers.norm import RMSNorm
from qwenkit.layers.rotary import rope_cos_sin, rope_frequencies


class DecoderLayer(nn.Module):
    def __init__(self, config: ModelConfig, index: int):
        super().__init__()
        self.input_layernorm = RMSNorm(config.hidden_size, config.rms_norm_eps)
        self.self_attn = Attention(config)
        self.post_attention_layernorm = RMSNorm(config.hidden_size, config.rms_norm_eps)
        if config.is_moe_layer(index):
            self.mlp = SparseMoE(config.hidden_size, config.moe_intermediate_size, config.num_experts,
                                 config.num_experts_per_tok, config.norm_topk_prob)
        else:
            self.mlp = MLP(config.hidden_size, config.intermediate_size)

    def forward(self, x: torch.Tensor, ctx: Context, kv: tuple[torch.Tensor, torch.Tensor] | None) -> torch.Tensor:
        h = x + self.self_attn(self.input_layernorm(x), ctx, kv)
        return h + self.mlp(self.post_attention_layernorm(h))


class DecoderModel(nn.Module):
    def __init__(self, config: ModelConfig):
        super().__init__()
        # no init: the weights come from a checkpoint, and normal_ on the meta device runs a Python kernel
        # whose first use imports dynamo and sympy (145 MB resident for the life of the process)
        table = torch.empty(config.vocab_size, config.hidden_size)
        self.embed_tokens = nn.Embedding(config.vocab_size, config.hidden_size, _weight=table, _freeze=False)
        self.layers = nn.ModuleList(DecoderLayer(config, i) for i in range(config.num_hidden_layers))
        self.norm = RMSNorm(config.hidden_size, config.rms_norm_eps)


def packed_layout(segments: torch.Tensor) -> tuple[torch.Tensor | None, None, list[tuple[int, int]] | None]:
    """(mask, paged, spans) for a Context over packed rows. One row is cut into its examples' spans (each runs
    the causal kernel alone); several rows need a block-diagonal causal mask [B, 1, T, T]."""
    if segments.shape[0] == 1:
        counts = torch.unique_consecutive(segments[0], return_counts=True)[1].tolist()
        ends = torch.tensor(counts).cumsum(0).tolist()
        return None, None, [(end - n, end) for n, end in zip(counts, ends)]
    t = segments.shape[1]
    causal = torch.ones(t, t, dtype=torch.bool, device=segments.device).tril()
    return (segments[:, None, :, None] == segments[:, None, None, :]) & causal, None, None


class CausalLM(nn.Module):
    """Parameter names follow Hugging Face (`model.layers.N.self_attn.q_proj.weight`, `lm_head.weight`)."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        self.model = DecoderModel(config)
        self.lm_head = nn.Linear(config.hidden_size, config.vocab_size, bias=False)
        with torch.device("cpu"):  # 64 floats; arange on the meta device would import sympy (see above)
            inv_freq, scale = rope_frequencies(config)
        self.register_buffer("inv_freq", inv_freq, persistent=False)
        self.rope_scale = scale

    @property
    def dtype(self) -> torch.dtype:
        """The activation dtype (weights may be stored quantized)."""
        return self.model.norm.weight.dtype

    def tie_weights(self) -> None:
        if self.config.tie_word_embeddings:
            self.lm_head.weight = self.model.embed_tokens.weight

    def context(self, positions: torch.Tensor, start: int, cached: bool, dtype: torch.dtype) -> Context:
        cos, sin = rope_cos_sin(positions, self.inv_freq, self.rope_scale, dtype)
        mask = None
        if cached and start > 0 and positions.shape[0] > 1:  # a later prefill chunk: causal past an offset
            mask = torch.arange(start + positions.shape[0], device=positions.device) <= positions[:, None]
        return Context(cos, sin, start, mask)

    def hidden_states(self, input_ids: torch.Tensor, positions: torch.Tensor,
                      kv_cache: list[tuple[torch.Tensor, torch.Tensor]] | None = None,
                      start: int | None = None) -> torch.Tensor:
        """input_ids [B, T], positions [T] consecutive and shared by the batch; returns normed hidden
        states [B, T, H]. `start` (= positions[0]) saves reading it back from the device."""
        x = self.model.embed_tokens(input_ids).to(self.dtype)  # an int8 table dequantizes to fp32
        if start is None:
            start = int(positions[0]) if kv_cache is not None else 0
        ctx = self.context(positions, start, kv_cache is not None, x.dtype)
        for i, layer in enumerate(self.model.layers):
            x = layer(x, ctx, kv_cache[i] if kv_cache is not None else None)
        return self.model.norm(x)

    def paged_hidden_states(self, input_ids: torch.Tensor, batch, kv_cache) -> torch.Tensor:
        """The batching engine's forward: input_ids [N] of many sequences laid out by `batch` (a PagedBatch);
        returns normed hidden states [N, H]."""
        x = self.model.embed_tokens(input_ids[None]).to(self.dtype)
        cos, sin = rope_cos_sin(batch.positions, self.inv_freq, self.rope_scale, x.dtype)
        ctx = Context(cos, sin, 0, paged=batch)
        for i, layer in enumerate(self.model.layers):
            x = layer(x, ctx, kv_cache[i])
        return self.model.norm(x)[0]

    def packed_hidden_states(self, input_ids: torch.Tensor, positions: torch.Tensor, segments: torch.Tensor,
                             checkpointing: bool = False) -> torch.Tensor:
        """The training forward: rows [B, T] that pack several examples. `positions` [B, T] restart at 0 for
        each example and `segments` [B, T] number them, so no token attends across an example boundary.
        With `checkpointing`, each layer's activations are recomputed in backward instead of kept."""
        x = self.model.embed_tokens(input_ids).to(self.dtype)
        cos, sin = rope_cos_sin(positions, self.inv_freq, self.rope_scale, x.dtype)
        ctx = Context(cos, sin, 0, *packed_layout(segments))
        for layer in self.model.layers:
            if checkpointing and torch.is_grad_enabled():
                x = checkpoint(layer, x, ctx, None, use_reentrant=False)
            else:
                x = layer(x, ctx, None)
        return self.model.norm(x)

    def forward(self, input_ids: torch.Tensor, positions: torch.Tensor,
                kv_cache: list[tuple[torch.Tensor, torch.Tensor]] | None = None,
                last_only: bool = False, start: int | None = None) -> torch.Tensor:
        h = self.hidden_states(input_ids, positions, kv_cache, start)
        if last_only:
            h = h[:, -1:]
        return self.lm_head(h)

    @torch.inference_mode()
    def logits(self, input_ids: torch.Tensor) -> torch.Tensor:
        """Full forward of one sequence without a cache: [T] -> fp32 logits [T, vocab]."""
        ids = input_ids.to(self.inv_freq.device)
        return self(ids[None], torch.arange(ids.shape[0], device=ids.device))[0].float()
