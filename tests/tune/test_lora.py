"""LoRALinear and the model-level adapter operations; backward through frozen int8/int4 bases."""
import math

import pytest
import torch
from torch import nn

from qwenkit.errors import InvalidRequestError, ModelLoadError
from qwenkit.layers.quant import Int4Linear, Int8Linear
from qwenkit.layers.quant_grad import QuantizedMatmul, int4_block
from qwenkit.loading import load_checkpoint
from qwenkit.models import load_model
from qwenkit.models.fuse import fuse_projections
from qwenkit.tune.adapter import apply_lora, load_lora, lora_modules, lora_state, merge_lora
from qwenkit.tune.lora import LoraConfig, LoRALinear, Part
from qwenkit.tune.peft_format import AdapterFiles, read_adapter, write_adapter
from tests.tune.lora_helpers import lora_model

IDS = torch.arange(1000, 1040)


def test_lora_linear_is_base_plus_scaled_low_rank_update():
    torch.manual_seed(0)
    base = nn.Linear(48, 40)
    lora = LoRALinear(base, [Part("proj", 0, 40)], LoraConfig(r=4, alpha=12, dropout=0.0))
    x = torch.randn(3, 5, 48)
    torch.testing.assert_close(lora(x), base(x))  # B starts at zero
    assert lora.lora_A.abs().max() <= 1 / math.sqrt(48)  # PEFT's kaiming_uniform(a=sqrt(5)) bound
    with torch.no_grad():
        lora.lora_B[0].normal_()
    a, b = lora.pair(0)
    torch.testing.assert_close(lora(x), base(x) + x @ a.T @ b.T * 3)
    torch.testing.assert_close(lora.delta(), b @ a * 3)


def test_dropout_only_while_training():
    lora = LoRALinear(nn.Linear(16, 16), [Part("p", 0, 16)], LoraConfig(r=2, dropout=0.5))
    with torch.no_grad():
        lora.lora_B[0].normal_()
    x = torch.randn(4, 16)
    assert not torch.equal(lora.train()(x), lora(x))
    assert torch.equal(lora.eval()(x), lora(x))


@pytest.mark.parametrize("targets", [None, ["q_proj", "v_proj", "up_proj"]])
def test_fused_projections_match_separate_modules(tiny_models, targets):
    """One (A, B) per part of qkv_proj / gate_up_proj, including parts left out (k, gate)."""
    folder, _ = tiny_models("qwen2")
    config = LoraConfig(r=4, alpha=8, dropout=0.0, **({"target_modules": targets} if targets else {}))
    separate = lora_model(folder, config)
    fused = load_model(load_checkpoint(folder))
    fuse_projections(fused)
    names = load_lora(fused, lora_state(separate))
    assert sorted(names) == sorted(lora_state(separate).weights)
    assert all(isinstance(m.base, nn.Linear) for m in lora_modules(fused).values())
    torch.testing.assert_close(fused.logits(IDS), separate.logits(IDS), atol=1e-4, rtol=1e-4)
    assert (separate.logits(IDS) - load_model(load_checkpoint(folder)).logits(IDS)).abs().max() > 0.1


def test_apply_lora_freezes_the_base_and_skips_experts(tiny_models):
    model = load_model(load_checkpoint(tiny_models("qwen3_moe")[0]))
    names = apply_lora(model, LoraConfig(r=2))
    assert "model.layers.0.self_attn.q_proj" in names and "model.layers.1.mlp.down_proj" in names  # dense layer 1
    assert not any(".experts." in n for n in names)
    trainable = [n for n, p in model.named_parameters() if p.requires_grad]
    assert trainable and all(".lora_" in n for n in trainable)
    assert len(trainable) == 2 * len(names)


def test_apply_lora_errors(tiny_models):
    model = load_model(load_checkpoint(tiny_models("qwen2")[0]))
    with pytest.raises(InvalidRequestError, match="none of \\['attn'\\].*choose from"):
        apply_lora(model, LoraConfig(target_modules=["attn"]))
    apply_lora(model, LoraConfig(target_modules=["model.layers.0.self_attn.q_proj"]))  # a full name
    with pytest.raises(InvalidRequestError, match="already has LoRA layers"):
        apply_lora(model, LoraConfig())


def test_adapter_round_trips_through_peft_files(tiny_models, tmp_path):
    folder, _ = tiny_models("qwen3")
    model = lora_model(folder, LoraConfig(r=4, alpha=16, dropout=0.1, use_rslora=True))
    write_adapter(tmp_path, lora_state(model, "tiny"))
    files = read_adapter(tmp_path)
    assert (files.r, files.alpha, files.dropout, files.use_rslora, files.base_model) == (4, 16, 0.1, True, "tiny")
    assert files.target_modules == sorted(LoraConfig().target_modules)
    again = load_model(load_checkpoint(folder))
    load_lora(again, files)
    assert all(not m.training for m in lora_modules(again).values())  # follows the eval-mode model
    torch.testing.assert_close(again.logits(IDS), model.logits(IDS), atol=0, rtol=0)


def test_load_lora_rejects_other_models_and_changes_nothing(tiny_models):
    qwen2, qwen3 = (lora_model(tiny_models(a)[0]) for a in ("qwen2", "qwen3"))
    target = load_model(load_checkpoint(tiny_models("qwen2")[0]))
    with pytest.raises(ModelLoadError, match="q_proj: the adapter has A \\[4, 64\\] and B \\[128, 4\\].*B \\[64, 4\\]"):
        load_lora(target, lora_state(qwen3))  # Qwen3's head_dim 32 x 4 heads: another q_proj size
    extra = lora_state(qwen2)
    extra.weights["model.layers.9.self_attn.q_proj"] = extra.weights["model.layers.0.self_attn.q_proj"]
    with pytest.raises(ModelLoadError, match="'model.layers.9.self_attn.q_proj', which this model does not have"):
        load_lora(target, extra)
    assert not lora_modules(target)


def test_load_lora_explains_expert_adapters(tiny_models):
    folder = tiny_models("qwen3_moe")[0]
    adapter = lora_state(lora_model(folder))
    adapter.weights["model.layers.0.mlp.experts.1.up_proj"] = (torch.zeros(4, 64), torch.zeros(32, 4))
    with pytest.raises(ModelLoadError, match="MoE expert .*use `qwenkit merge`"):
        load_lora(load_model(load_checkpoint(folder)), adapter)


def test_merge_lora_folds_the_update_in(tiny_models):
    model = lora_model(tiny_models("qwen2")[0])  # tied embeddings: lm_head is not adapted, stays tied
    expected = model.logits(IDS)
    assert len(merge_lora(model)) == 14
    assert not lora_modules(model) and all(not p.requires_grad for p in model.parameters())
    torch.testing.assert_close(model.logits(IDS), expected, atol=1e-4, rtol=1e-4)
    quantized = lora_model(tiny_models("qwen2")[0], quant="int8")
    with pytest.raises(InvalidRequestError, match="quantized"):
        merge_lora(quantized)


def test_lora_state_needs_lora_layers(tiny_models):
    with pytest.raises(InvalidRequestError, match="no LoRA layers"):
        lora_state(load_model(load_checkpoint(tiny_models("qwen2")[0])))
    assert isinstance(AdapterFiles(r=1, alpha=1, target_modules=[]).scale, float)


# -- backward through quantized bases ------------------------------------------------------------------
@pytest.mark.parametrize("rows", [48, 64 * 3 + 32, 1200])  # one partial block; full blocks and a tail
@pytest.mark.parametrize("kind", ["int8", "int4"])
def test_quantized_linear_gives_the_input_its_gradient(kind, rows):
    torch.manual_seed(0)
    w, bias = torch.randn(rows, 256) * 0.05, torch.randn(rows)
    linear = Int8Linear(w, bias) if kind == "int8" else Int4Linear.from_float(w, bias, 64)
    x = torch.randn(2, 3, 256, requires_grad=True)
    y = linear(x)
    assert y.grad_fn is not None
    grad = torch.randn_like(y)
    y.backward(grad)
    weight = linear.dequantize()
    kernel = linear.matmul(torch.eye(256)).float().T  # the kernel's own view of W, column by column
    torch.testing.assert_close(weight, kernel, atol=1e-3, rtol=1e-2)
    expected = grad.bfloat16().float().reshape(-1, rows) @ weight  # the kernel's output (and grad) is bf16
    torch.testing.assert_close(x.grad.reshape(-1, 256), expected, atol=1e-4, rtol=1e-4)


def test_inference_takes_the_plain_kernel(monkeypatch):
    calls = []
    monkeypatch.setattr(QuantizedMatmul, "apply", lambda *a: calls.append(a) or a[1].matmul(a[0]))
    linear = Int8Linear(torch.randn(32, 64), None)
    x = torch.randn(4, 64)
    linear(x)
    linear(x.requires_grad_())
    with torch.no_grad():
        linear(x)
    assert len(calls) == 1


def test_int4_layout_is_known_here():
    assert int4_block() in (16, 32, 64, 128)


@pytest.fixture(scope="module")
def smooth_qwen3(tmp_path_factory):
    """Weights at a trained model's scale (std 0.02): the wide test models amplify rounding chaotically."""
    from tests.conftest import build_tiny_model
    folder = tmp_path_factory.mktemp("smooth-qwen3")
    build_tiny_model("qwen3", folder, std=0.02)
    return folder


@pytest.mark.parametrize("quant", ["int8", "int4"])
def test_lora_on_a_quantized_model_trains_like_on_float(smooth_qwen3, quant):
    """Gradients of every LoRA matrix flow back through fused int8/int4 projections and the refined head."""
    adapter = lora_state(lora_model(smooth_qwen3, std=0.05))
    grads = {}
    for mode in ("none", quant):
        model = load_model(load_checkpoint(smooth_qwen3), quant=mode)
        load_lora(model, adapter)
        logits = model(IDS[None], torch.arange(len(IDS)))
        torch.nn.functional.cross_entropy(logits[0, :-1].float(), IDS[1:]).backward()
        grads[mode] = torch.cat([g.flatten() for _, g in sorted(lora_grads(model).items())])
    assert grads[quant].count_nonzero() > 0.9 * grads[quant].numel()
    cosine = torch.nn.functional.cosine_similarity(grads[quant], grads["none"], dim=0)
    assert cosine > {"int8": 0.999, "int4": 0.98}[quant]


def lora_grads(model) -> dict[str, torch.Tensor]:
    """By PEFT module name, so fused and separate models line up."""
    out = {}
    for module in lora_modules(model).values():
        for i, part in enumerate(module.parts):
            a, b = module.pair(i)
            out[part.name + ".A"] = module.lora_A.grad[i * module.r:(i + 1) * module.r]
            out[part.name + ".B"] = module.lora_B[i].grad
    return out

