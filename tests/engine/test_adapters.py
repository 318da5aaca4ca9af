"""LoRA adapters served on a loaded model: the same logits as merging the adapter into the weights, on float
and on int8 (fused) bases; mixed batches; no prefix-cache sharing across adapters; load and unload."""
import pytest
import torch
import torch.nn.functional as F

from qwenkit import LLM, SamplingParams
from qwenkit.engine.adapters import AdapterNotFoundError
from qwenkit.errors import InvalidRequestError, ModelLoadError
from qwenkit.layers.multi_lora import MultiLoRA
from qwenkit.loading import load_checkpoint
from qwenkit.models import load_model
from qwenkit.tune.peft_format import AdapterFiles, read_adapter, write_adapter

ALL = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
GREEDY = SamplingParams(temperature=0, max_tokens=10, ignore_eos=True)
IDS = torch.randint(1000, 150000, (40,), generator=torch.Generator().manual_seed(5))


def random_adapter(folder, hf_model, targets=ALL, r: int = 4, alpha: float = 8, seed: int = 0, std: float = 0.1):
    """A PEFT adapter with random nonzero A and B on every linear of `hf_model` named in `targets`."""
    g = torch.Generator().manual_seed(seed)
    weights = {name: (torch.randn(r, m.in_features, generator=g) * std,
                      torch.randn(m.out_features, r, generator=g) * std)
               for name, m in hf_model.named_modules()
               if isinstance(m, torch.nn.Linear) and name.rsplit(".", 1)[-1] in targets}
    return write_adapter(folder, AdapterFiles(r=r, alpha=alpha, target_modules=list(targets), weights=weights))


@pytest.fixture(scope="module")
def tiny(tiny_models):
    return tiny_models("qwen3")


@pytest.fixture(scope="module")
def adapters(tiny, tmp_path_factory):
    root = tmp_path_factory.mktemp("adapters")
    return {"a": random_adapter(root / "a", tiny[1], seed=1),
            "b": random_adapter(root / "b", tiny[1], targets=("q_proj", "v_proj", "up_proj"), seed=2)}


@pytest.fixture(scope="module")
def llm(tiny, adapters):
    return LLM(str(tiny[0]), quant="none", max_model_len=256, adapters=adapters)


def logits(llm, adapter: str | None) -> torch.Tensor:
    with llm.adapters.apply([llm.adapters.slot(adapter)]):
        return llm.model.logits(IDS)


def test_adapter_equals_merging_it_into_a_float_model(llm, tiny, adapters):
    merged = load_model(load_checkpoint(tiny[0]))
    files = read_adapter(adapters["a"])
    for name, (a, b) in files.weights.items():
        merged.get_submodule(name).weight.data += files.scale * b @ a
    expected = merged.logits(IDS)
    assert torch.allclose(logits(llm, "a"), expected, atol=1e-4)
    assert not torch.allclose(logits(llm, None), expected, atol=1e-1)


class NaiveLoRA(torch.nn.Module):
    """Reference: base(x) plus, per Hugging Face module of a fused projection, its own scaled x A^T B^T."""

    def __init__(self, base, parts: list[tuple[int, torch.Tensor, torch.Tensor] | int], scale: float):
        super().__init__()
        self.base, self.parts, self.scale = base, parts, scale

    def forward(self, x):
        pieces = [x.new_zeros(*x.shape[:-1], p) if isinstance(p, int) else self.scale * F.linear(F.linear(x, p[1]),
                  p[2]) for p in self.parts]
        return self.base(x) + torch.cat(pieces, dim=-1)


def test_adapter_on_an_int8_fused_base_equals_naive_lora(tiny, adapters):
    served = LLM(str(tiny[0]), quant="int8", adapters={"b": adapters["b"]})
    naive = LLM(str(tiny[0]), quant="int8")
    files = read_adapter(adapters["b"])
    cfg = naive.model.config
    q, kv, inter = cfg.num_attention_heads * cfg.head_dim, cfg.num_key_value_heads * cfg.head_dim, \
        cfg.intermediate_size
    for i, layer in enumerate(naive.model.model.layers):
        w = {k.rsplit(".", 1)[-1]: v for k, v in files.weights.items() if f".layers.{i}." in k}
        attn, mlp = layer.self_attn, layer.mlp
        attn.qkv_proj = NaiveLoRA(attn.qkv_proj, [(0, *w["q_proj"]), kv, (0, *w["v_proj"])], files.scale)
        mlp.gate_up_proj = NaiveLoRA(mlp.gate_up_proj, [inter, (0, *w["up_proj"])], files.scale)
    assert served.adapters.layers and all(isinstance(m, MultiLoRA) for m in served.adapters.layers.values())
    assert q == w["q_proj"][1].shape[0]
    got, expected = logits(served, "b"), naive.model.logits(IDS)
    assert torch.allclose(got, expected, atol=1e-4)
    assert not torch.allclose(logits(served, None), expected, atol=1e-1)


def test_mixed_batch_equals_each_request_alone(llm):
    prompts = ["Tell me a story", "Tell me a story", "Tell me a story", "Name a colour"]
    names = ["a", "b", None, "a"]
    alone = [llm.generate(p, GREEDY, adapter=n)[0].outputs[0].token_ids for p, n in zip(prompts, names)]
    batched = [o.outputs[0].token_ids for o in llm.generate(prompts, GREEDY, adapter=names)]
    assert batched == alone
    assert len({tuple(t) for t in alone[:3]}) == 3   # each adapter really changes the answer


def test_prefix_cache_is_not_shared_across_adapters(llm):
    prompt = IDS[:35].tolist()   # two full 16-token blocks
    engine = llm.engine
    outputs = {}
    for name in ["a", None, "b", "a"]:
        hits = engine.blocks.hits
        rid = engine.add_request(prompt, GREEDY, adapter=name)
        tokens = []
        while engine.has_unfinished():
            tokens += [d.token_id for r, d in engine.step() if r == rid]
        outputs.setdefault(name, []).append((tokens, engine.blocks.hits - hits))
    assert [h for _, h in outputs["a"]] == [0, 2]        # reused only by the same adapter
    assert outputs[None][0][1] == 0 and outputs["b"][0][1] == 0
    for name, runs in outputs.items():
        assert all(t == llm.generate(prompt, GREEDY, adapter=name)[0].outputs[0].token_ids for t, _ in runs)


def test_base_output_is_bit_identical_and_wrappers_go_with_the_last_adapter(tiny, adapters):
    llm = LLM(str(tiny[0]), quant="int8")
    attn = llm.model.model.layers[0].self_attn
    before, plain = llm.model.logits(IDS), type(attn.qkv_proj)
    llm.load_adapter("a", adapters["a"])
    assert isinstance(attn.qkv_proj, MultiLoRA)
    assert torch.equal(llm.model.logits(IDS), before)
    assert torch.equal(logits(llm, None), before)
    llm.unload_adapter("a")
    assert type(attn.qkv_proj) is plain and not llm.adapters.layers
    assert torch.equal(llm.model.logits(IDS), before)


def test_unloading_mid_stream_finishes_that_stream_with_its_adapter(llm, adapters):
    llm.load_adapter("c", adapters["a"])
    expected = llm.generate("Once upon", GREEDY, adapter="c")[0].outputs[0].token_ids
    stream = llm.stream("Once upon", GREEDY, adapter="c")
    tokens = [next(stream).token_id for _ in range(3)]
    llm.unload_adapter("c")
    with pytest.raises(AdapterNotFoundError):
        llm.generate("Once upon", GREEDY, adapter="c")
    tokens += [d.token_id for d in stream]
    assert tokens == expected
    assert not llm.adapters.users and not llm.adapters.retired
    assert all(len(layer.loras) <= 2 for layer in llm.adapters.layers.values())   # only a and b are left


def test_unknown_adapter_names_the_loaded_ones(llm):
    with pytest.raises(InvalidRequestError, match=r"'nope' is loaded; loaded adapters: a, b"):
        llm.generate("hi", GREEDY, adapter="nope")
    with pytest.raises(InvalidRequestError, match="already loaded"):
        llm.load_adapter("a", "/nowhere")
    with pytest.raises(InvalidRequestError, match="adapter name"):
        llm.load_adapter("base:x", "/nowhere")


def test_adapter_for_another_shape_names_the_module_and_shapes(llm, tmp_path):
    weights = {"model.layers.1.self_attn.k_proj": (torch.ones(2, 32), torch.ones(64, 2))}
    write_adapter(tmp_path, AdapterFiles(r=2, alpha=2, target_modules=["k_proj"], base_model="Qwen/Other",
                                         weights=weights))
    with pytest.raises(ModelLoadError, match=r"model\.layers\.1\.self_attn\.k_proj has A \[2, 32\] and B \[64, 2\], "
                       r"but this model's .* maps 64 -> 64 features.*Qwen/Other"):
        llm.load_adapter("other", tmp_path)
    assert "other" not in llm.adapters.names


def test_unsupported_modules_are_refused(llm, tmp_path):
    write_adapter(tmp_path, AdapterFiles(r=2, alpha=2, target_modules=["lm_head"],
                                         weights={"lm_head": (torch.ones(2, 64), torch.ones(151936, 2))}))
    with pytest.raises(ModelLoadError, match="output head"):
        llm.load_adapter("head", tmp_path)


def test_created_model_runs_its_adapter(tiny, adapters, llm, monkeypatch):
    from qwenkit.store import ResolvedModel
    created = ResolvedModel(path=tiny[0], adapter=adapters["b"])
    monkeypatch.setattr("qwenkit.store.resolve", lambda ref: created)
    tuned = LLM("tuned:latest", quant="none", max_model_len=256)
    assert tuned.generate("Hello", GREEDY)[0].outputs[0].token_ids == \
        llm.generate("Hello", GREEDY, adapter="b")[0].outputs[0].token_ids
    assert tuned.generate(["Hello", "Hello"], GREEDY)[1].outputs[0].token_ids == \
        llm.generate("Hello", GREEDY, adapter="b")[0].outputs[0].token_ids
