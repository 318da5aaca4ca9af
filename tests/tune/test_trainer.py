"""The training loop's parts: chunked head cross-entropy against full logits, config parsing, schedule, data
order, the quantized frozen base, the run folder rules and the stop conditions."""
import math
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from qwenkit.errors import InvalidRequestError
from qwenkit.loading import load_checkpoint
from qwenkit.models import load_model
from qwenkit.tune import checkpoint as ckpt
from qwenkit.tune.adapter import apply_lora, lora_modules
from qwenkit.tune.base import FrozenQuantLinear, quantize_base
from qwenkit.tune.config import TuneConfig, accumulation_steps, load_config
from qwenkit.tune.lora import LoraConfig
from qwenkit.tune.loss import LOGITS_BUDGET, chunk_rows, head_cross_entropy, supervised_rows
from qwenkit.tune.order import DataOrder, shard, total_steps
from qwenkit.tune.trainer import TrainingStopped, lr_factor
from tests.tune.tune_helpers import EXACT, write_chat


def lora_model(folder: Path, r: int = 4) -> torch.nn.Module:
    model = load_model(load_checkpoint(folder), torch.float32)
    apply_lora(model, LoraConfig(r=r, alpha=2 * r, dropout=0.0))
    torch.manual_seed(1)
    with torch.no_grad():
        for module in lora_modules(model).values():
            for b in module.lora_B:
                b.normal_(0, 0.1)  # B starts at zero; give A's gradient something to flow through
    return model


def packed_batch(seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(0, 5000, (2, 12), generator=g)
    positions = torch.tensor([list(range(5)) + list(range(7)), list(range(12))])
    segments = torch.tensor([[0] * 5 + [1] * 7, [0] * 12])
    labels = torch.randint(0, 5000, (2, 12), generator=g)
    labels[0, [0, 4, 6]] = -100
    labels[1, :3] = -100
    return ids, positions, segments, labels


def lora_grads(model) -> dict[str, torch.Tensor]:
    return {n: p.grad.clone() for n, p in model.named_parameters() if p.requires_grad}


@pytest.mark.parametrize("arch", ["qwen2", "qwen3"])  # tied and untied output head
def test_head_cross_entropy_equals_full_logits(tiny_models, arch):
    model = lora_model(tiny_models(arch)[0]).double()  # fp64 on both sides: differences are bugs, not rounding
    ids, positions, segments, labels = packed_batch()

    hidden = model.packed_hidden_states(ids, positions, segments)
    reference = F.cross_entropy(model.lm_head(hidden).flatten(0, 1), labels.flatten(), reduction="sum")
    reference.backward()
    expected = lora_grads(model)
    model.zero_grad()

    hidden = model.packed_hidden_states(ids, positions, segments)
    h, targets = supervised_rows(hidden, labels)
    assert h.shape[0] == int((labels != -100).sum())
    ours = head_cross_entropy(h, model.lm_head.weight, targets, chunk=5)  # several chunks, a ragged last one
    ours.backward()
    torch.testing.assert_close(ours, reference, rtol=1e-12, atol=0)
    got = lora_grads(model)
    assert expected.keys() == got.keys() and len(got) == 2 * 7 * 2  # A and B of 7 projections in 2 layers
    for name in expected:
        torch.testing.assert_close(got[name], expected[name], rtol=1e-10, atol=1e-12, msg=name)


def test_head_cross_entropy_weight_grad_and_bf16():
    torch.manual_seed(0)
    h = torch.randn(37, 16, requires_grad=True)
    w = torch.randn(50, 16, requires_grad=True)
    t = torch.randint(0, 50, (37,))
    ours = head_cross_entropy(h, w, t, chunk=8)
    ours.backward()
    h2, w2 = h.detach().clone().requires_grad_(), w.detach().clone().requires_grad_()
    F.cross_entropy(h2 @ w2.T, t, reduction="sum").backward()
    torch.testing.assert_close(h.grad, h2.grad)
    torch.testing.assert_close(w.grad, w2.grad)
    low = head_cross_entropy(h.detach(), w.detach(), t, dtype=torch.bfloat16)
    assert low.dtype == torch.float32 and abs(low.item() - ours.item()) / ours.item() < 0.02


def test_head_cross_entropy_with_a_confident_model():
    """Logits 100-300 below the top, as a confident model writes them: exp of those underflows to float32
    subnormals, which the loss clamps away (EXP_FLOOR); the loss and gradients still match float64."""
    torch.manual_seed(1)
    h = torch.randn(24, 16)
    w = torch.randn(400, 16) * 8                     # logits spread over several hundred
    t = torch.randint(0, 400, (24,))
    assert float(((h @ w.T).amax(-1, keepdim=True) - h @ w.T).max()) > 200
    h32, w32 = h.clone().requires_grad_(), w.clone().requires_grad_()
    ours = head_cross_entropy(h32, w32, t, chunk=7)
    ours.backward()
    h64, w64 = h.double().requires_grad_(), w.double().requires_grad_()
    reference = F.cross_entropy(h64 @ w64.T, t, reduction="sum")
    reference.backward()
    torch.testing.assert_close(ours.double(), reference, rtol=1e-5, atol=1e-3)
    torch.testing.assert_close(h32.grad.double(), h64.grad, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(w32.grad.double(), w64.grad, rtol=1e-4, atol=1e-4)


def test_chunks_stay_within_the_logits_budget():
    assert chunk_rows(64, 32000) == 64
    assert chunk_rows(1024, 32000) == LOGITS_BUDGET // 32000 < 1024
    assert chunk_rows(1024, 151936) * 151936 <= LOGITS_BUDGET <= (32 << 20) // 4   # under glibc's mmap threshold
    assert chunk_rows(1024, 10**9) == 1


def test_config_defaults_yaml_and_overrides(tmp_path):
    c = TuneConfig()
    assert (c.lora_r, c.lora_alpha, c.lora_dropout, c.lr, c.batch_size, c.grad_clip) == (16, 32.0, 0.05, 2e-4, 16, 1.0)
    assert c.target_modules == ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
    assert c.packing and c.base_quant == "none" and c.precision == "auto"
    path = tmp_path / "tune.yaml"
    path.write_text("lr: 1.0e-3\nepochs: 2\nlora_r: 8\ntarget_modules: [q_proj, v_proj]\npacking: false\n")
    c = load_config(path, ["lr=5e-4", "max_steps=30", "eval_every=none", "activation_checkpointing=yes",
                           "chat_template_kwargs={enable_thinking: false}"])
    assert (c.lr, c.epochs, c.lora_r, c.max_steps, c.eval_every) == (5e-4, 2.0, 8, 30, None)
    assert c.target_modules == ["q_proj", "v_proj"] and not c.packing and c.activation_checkpointing
    assert c.chat_template_kwargs == {"enable_thinking": False}
    assert load_config(None, ["target_modules=q_proj, o_proj"]).target_modules == ["q_proj", "o_proj"]


@pytest.mark.parametrize("overrides, field, words", [
    (["learning_rate=1e-4"], "learning_rate", "unknown setting; did you mean"),
    (["lora_r=sixteen"], "lora_r", "not a valid whole number"),
    (["lora_r=2.5"], "lora_r", "not a valid whole number"),
    (["packing=maybe"], "packing", "true/false"),
    (["precision=fp16"], "precision", "auto, bf16, fp32"),
    (["base_quant=int3"], "base_quant", "none, int8, int4"),
    (["lora_dropout=1.5"], "lora_dropout", "[0, 1)"),
    (["lr=0"], "lr", "above 0"),
    (["batch_size=10", "micro_batch_size=4"], "batch_size", "multiple of micro_batch_size"),
    (["lr"], "lr", "key=value"),
])
def test_config_errors_name_the_setting(overrides, field, words):
    with pytest.raises(InvalidRequestError) as e:
        load_config(None, overrides)
    assert e.value.field == field and words in str(e.value)


def test_config_file_errors(tmp_path):
    with pytest.raises(InvalidRequestError, match="does not exist"):
        load_config(tmp_path / "missing.yaml")
    (tmp_path / "bad.yaml").write_text("- a\n- b\n")
    with pytest.raises(InvalidRequestError, match="mapping"):
        load_config(tmp_path / "bad.yaml")
    (tmp_path / "typo.yaml").write_text("lora_rank: 8\n")
    with pytest.raises(InvalidRequestError, match="did you mean lora_r"):
        load_config(tmp_path / "typo.yaml")


def test_accumulation_splits_the_global_batch():
    c = TuneConfig(batch_size=16, micro_batch_size=2)
    assert accumulation_steps(c, 1, 2) == 8 and accumulation_steps(c, 2, 2) == 4
    with pytest.raises(InvalidRequestError, match="does not split over 3 processes"):
        accumulation_steps(c, 3, 2)


def test_auto_micro_batch_follows_the_activation_budget():
    """None takes as many rows per forward as fit the budget and divide the rank's share; a set value wins."""
    from qwenkit.config import ModelConfig
    from qwenkit.tune.config import ACTIVATION_BUDGET, activation_bytes_per_token, micro_batch
    small = ModelConfig(architecture="llama", head_dim=64, vocab_size=49152, hidden_size=576,
                        intermediate_size=1536, num_hidden_layers=30, num_attention_heads=9, num_key_value_heads=3)
    big = ModelConfig(architecture="qwen2", head_dim=128, vocab_size=152064, hidden_size=3584,
                      intermediate_size=18944, num_hidden_layers=28, num_attention_heads=28, num_key_value_heads=4)
    row = activation_bytes_per_token(small, False) * 512
    assert 6 * row <= ACTIVATION_BUDGET < 7 * row
    assert micro_batch(TuneConfig(batch_size=8, max_length=512), 1, small) == 4
    assert micro_batch(TuneConfig(batch_size=8, max_length=512), 2, small) == 4
    assert micro_batch(TuneConfig(batch_size=10, max_length=512), 1, small) == 5   # 6 fit, 5 divides 10
    assert micro_batch(TuneConfig(batch_size=16, max_length=1024), 1, big) == 1
    assert micro_batch(TuneConfig(batch_size=16, max_length=1024, activation_checkpointing=True), 1, big) == 8
    assert micro_batch(TuneConfig(batch_size=8, max_length=512, micro_batch_size=2), 1, small) == 2


def test_lr_warms_up_then_decays_to_the_floor():
    factors = [lr_factor(s, warmup=5, total=100, floor=0.1) for s in range(100)]
    assert factors[:5] == sorted(factors[:5]) and factors[4] < 1.0
    assert factors[5] == pytest.approx(1.0)
    assert all(a >= b for a, b in zip(factors[5:], factors[6:]))
    assert 0.1 < factors[-1] < 0.11
    assert lr_factor(0, warmup=0, total=1, floor=0.0) == 1.0


def test_data_order_is_a_reproducible_stream_of_epochs():
    order = DataOrder(num_rows=5, batch_size=4, seed=3)
    stream = [i for step in range(5) for i in order.batch(step)]
    assert sorted(stream[:5]) == list(range(5)) and sorted(stream[5:10]) == list(range(5))
    assert stream[:5] != stream[5:10]  # a new order each epoch
    again = DataOrder(5, 4, 3)
    assert again.batch(3) == order.batch(3) and again.batch(0) == order.batch(0)
    assert DataOrder(5, 4, 4).batch(0) != order.batch(0) or DataOrder(5, 4, 4).batch(1) != order.batch(1)
    assert total_steps(5, 4, 3.0, None) == 4 and total_steps(5, 4, 3.0, 7) == 7
    assert shard([0, 1, 2, 3], 1, 2) == [2, 3]


@pytest.mark.parametrize("bits", [8, 4])
def test_frozen_quantized_linear_gradients(bits):
    torch.manual_seed(0)
    w = torch.randn(96, 128) * 0.1
    layer = FrozenQuantLinear(w, torch.randn(96), bits)
    assert layer.qweight.numel() == (96 * 128 if bits == 8 else 96 * 64)
    assert (layer.weight - w).abs().max() < (0.01 if bits == 8 else 0.05)
    x = torch.randn(5, 128, requires_grad=True)
    y = layer(x)
    torch.testing.assert_close(y, x @ layer.weight.T + layer.bias)
    grad = torch.randn_like(y)
    y.backward(grad)
    torch.testing.assert_close(x.grad, grad @ layer.weight)


def test_quantized_base_keeps_lora_names_and_trains(tiny_models):
    model = lora_model(tiny_models("qwen3")[0])
    quantize_base(model, 4)
    wrapped = lora_modules(model)
    assert all(isinstance(m.base, FrozenQuantLinear) for m in wrapped.values())
    assert "model.layers.0.self_attn.q_proj" in wrapped
    ids, positions, segments, labels = packed_batch()
    h, t = supervised_rows(model.packed_hidden_states(ids, positions, segments, checkpointing=True), labels)
    head_cross_entropy(h, model.lm_head.weight, t).backward()
    grads = lora_grads(model)
    assert grads and all(torch.isfinite(g).all() and g.abs().sum() > 0 for g in grads.values())


def test_out_folder_rules(tmp_path):
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep me")
    with pytest.raises(InvalidRequestError, match="not a qwenkit run"):
        ckpt.check_out(foreign, resume=False, force=False)
    ckpt.check_out(foreign, resume=False, force=True)
    ckpt.start_out(foreign, resume=False)
    assert (foreign / "notes.txt").read_text() == "keep me"
    with pytest.raises(InvalidRequestError, match="no checkpoint to resume"):
        ckpt.check_out(foreign, resume=True, force=False)
    run = tmp_path / "run"
    ckpt.check_out(run, resume=False, force=False)
    ckpt.start_out(run, resume=False)
    ckpt.write_marker(run, {"model": "x"})
    with pytest.raises(InvalidRequestError, match="already holds a qwenkit run"):
        ckpt.check_out(run, resume=False, force=False)
    (tmp_path / "file").write_text("")
    with pytest.raises(InvalidRequestError, match="is a file"):
        ckpt.check_out(tmp_path / "file", resume=False, force=False)


def test_nan_and_zero_losses_stop_with_a_reason():
    from qwenkit.tune.trainer import Trainer
    trainer = Trainer.__new__(Trainer)
    trainer.step, trainer.config = 3, TuneConfig()
    trainer.report = type("R", (), {"status": "running"})()
    with pytest.raises(TrainingStopped, match="loss became nan at step 3"):
        trainer.check(math.nan)
    with pytest.raises(TrainingStopped, match="exactly 0 at step 3"):
        trainer.check(0.0)
    trainer.check(1.5)


def test_a_diverging_run_stops_and_reports(tiny_models, tmp_path):
    from qwenkit.tune.api import tune
    data = write_chat(tmp_path / "train.jsonl")
    settings = {**EXACT, "lr": 1e30, "grad_clip": 0.0, "max_steps": 6, "eval_split": 0.0}
    with pytest.raises(TrainingStopped, match="not finite|became"):
        tune(str(tiny_models("qwen2")[0]), data, tmp_path / "out", quiet=True, **settings)
    report = (tmp_path / "out" / "report.json").read_text()
    assert '"status": "stopped: loss is not finite"' in report


def test_bf16_autocast_run(tiny_models, tmp_path):
    from qwenkit.tune.api import tune
    data = write_chat(tmp_path / "train.jsonl")
    report = tune(str(tiny_models("qwen3")[0]), data, tmp_path / "out", quiet=True,
                  **{**EXACT, "precision": "bf16", "max_steps": 3, "base_quant": "int8", "eval_every": 2})
    assert report.precision == "bf16" and report.status == "finished" and report.steps == 3
    assert all(math.isfinite(loss) for _, loss in report.losses)
    assert [s for s, _ in report.eval_losses] == [2, 3] and report.best is not None
    assert report.tokens > 0 and report.tokens_per_second > 0 and report.peak_rss_mb > 0
    assert (tmp_path / "out" / "best" / "adapter_model.safetensors").is_file()
    assert (tmp_path / "out" / "loss.png").stat().st_size > 1000
