"""Adapters cross between qwenkit and the real `peft` package both ways, with the same logits."""
import pytest
import torch

from qwenkit.loading import load_checkpoint
from qwenkit.models import load_model
from qwenkit.tune.adapter import load_lora, lora_state
from qwenkit.tune.lora import LoraConfig
from qwenkit.tune.peft_format import read_adapter, write_adapter
from tests.tune.lora_helpers import lora_model

peft = pytest.importorskip("peft")
ARCHS = ["qwen2", "qwen3", "llama"]
IDS = torch.randint(0, 151000, (40,), generator=torch.Generator().manual_seed(3))


def transformers_model(folder):
    import transformers
    return transformers.AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32).eval()


def peft_logits(model) -> torch.Tensor:
    with torch.no_grad():
        return model(IDS[None]).logits[0].float()


def peft_made_adapter(base_folder, out, targets=("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj",
                                                 "down_proj")):
    """get_peft_model + random lora_B + save_pretrained, as a PEFT user would train and save one."""
    config = peft.LoraConfig(r=4, lora_alpha=12, lora_dropout=0.0, target_modules=list(targets),
                             task_type="CAUSAL_LM")
    model = peft.get_peft_model(transformers_model(base_folder), config)
    g = torch.Generator().manual_seed(7)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "lora_B" in name:
                p.copy_(torch.randn(p.shape, generator=g) * 0.2)
    model.save_pretrained(out)
    return model.eval()


@pytest.mark.parametrize("arch", ARCHS)
def test_qwenkit_adapter_runs_in_peft(tiny_models, tmp_path, arch):
    folder, _ = tiny_models(arch)
    model = lora_model(folder, LoraConfig(r=4, alpha=8, dropout=0.0))
    write_adapter(tmp_path, lora_state(model, str(folder)))
    reference = peft.PeftModel.from_pretrained(transformers_model(folder), tmp_path).eval()
    base = load_model(load_checkpoint(folder)).logits(IDS)
    assert (model.logits(IDS) - base).abs().max() > 0.1  # the adapter matters
    torch.testing.assert_close(model.logits(IDS), peft_logits(reference), atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("arch", ARCHS)
def test_peft_adapter_runs_in_qwenkit(tiny_models, tmp_path, arch):
    folder, _ = tiny_models(arch)
    reference = peft_made_adapter(folder, tmp_path)
    adapter = read_adapter(tmp_path)
    assert adapter.scale == 3.0 and len(adapter.weights) == 14
    model = load_model(load_checkpoint(folder))
    assert sorted(load_lora(model, adapter)) == sorted(adapter.weights)
    torch.testing.assert_close(model.logits(IDS), peft_logits(reference), atol=1e-4, rtol=1e-4)


@pytest.fixture(scope="module")
def smooth_qwen2(tmp_path_factory):
    """Weights at a trained model's scale (std 0.02): the wide test models amplify rounding chaotically."""
    from tests.conftest import build_tiny_model
    folder = tmp_path_factory.mktemp("smooth-qwen2")
    build_tiny_model("qwen2", folder, std=0.02)
    return folder


@pytest.mark.parametrize("targets", [("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"),
                                     ("k_proj", "up_proj")])  # parts of the fused q/k/v and gate/up linears
def test_peft_adapter_on_an_int8_base(smooth_qwen2, tmp_path, targets):
    reference = peft_logits(peft_made_adapter(smooth_qwen2, tmp_path, targets))
    base = peft_logits(transformers_model(smooth_qwen2))
    model = load_model(load_checkpoint(smooth_qwen2), quant="int8")
    load_lora(model, read_adapter(tmp_path))
    ours = model.logits(IDS)
    cosine = torch.nn.functional.cosine_similarity
    assert cosine(ours, reference, dim=-1).min() > 0.999
    assert cosine(ours - base, reference - base, dim=-1).min() > 0.95  # the update itself, not just the base
