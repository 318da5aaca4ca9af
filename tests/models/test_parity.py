"""Our decoder against transformers on tiny random-weight models of every family."""
import pytest
import torch

from qwenkit import LLM, SamplingParams
from qwenkit.config import ModelConfig
from qwenkit.loading import load_checkpoint
from qwenkit.models import load_model

ARCHS = ["qwen2", "qwen3", "qwen3_moe", "llama"]


@pytest.mark.parametrize("arch", ARCHS)
def test_logits_match_transformers(tiny_models, arch):
    folder, ref = tiny_models(arch)
    model = load_model(load_checkpoint(folder))
    ids = torch.randint(0, 151000, (48,), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        expected = ref(ids[None]).logits[0]
    torch.testing.assert_close(model.logits(ids), expected, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("arch", ARCHS)
def test_64_greedy_tokens_identical(tiny_models, arch):
    folder, ref = tiny_models(arch)
    llm = LLM(str(folder), quant="none")
    prompt = llm.tokenizer.encode("The capital of Finland is")
    with torch.no_grad():
        ids = torch.tensor([prompt])
        expected = ref.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=64, do_sample=False,
                                eos_token_id=None, pad_token_id=151643)[0, len(prompt):].tolist()
    out = llm.generate(prompt, SamplingParams(temperature=0, max_tokens=64, ignore_eos=True))[0].outputs[0]
    assert out.token_ids == expected
    assert out.finish_reason == "length"


def test_bf16_close_to_fp32(tiny_models):
    folder, _ = tiny_models("qwen3")
    ck = load_checkpoint(folder)
    ids = torch.arange(100, 140)
    full = load_model(ck, torch.float32).logits(ids)
    half = load_model(ck, torch.bfloat16).logits(ids)
    cos = torch.nn.functional.cosine_similarity(full, half, dim=-1)
    assert cos.min() > 0.99


def _yarn_models():
    import transformers as T
    common = dict(vocab_size=512, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                  num_attention_heads=4, num_key_value_heads=2, head_dim=32, max_position_embeddings=1024)
    yarn = {"rope_type": "yarn", "factor": 4.0, "original_max_position_embeddings": 256}
    return T.Qwen3Config(**common, rope_scaling=yarn)


def test_yarn_rope_matches_transformers():
    import transformers as T

    from qwenkit.loading.checkpoint import Checkpoint, GenerationDefaults
    torch.manual_seed(0)
    hf_config = _yarn_models()
    ref = T.AutoModelForCausalLM.from_config(hf_config).eval()
    config = ModelConfig.from_hf(hf_config.to_dict())
    assert config.rope_scaling["rope_type"] == "yarn"
    model = load_model(Checkpoint("tiny", "hf", config, ref.state_dict(), None, GenerationDefaults(), "float32"))
    ids = torch.randint(0, 512, (600,))  # past the original 256 positions
    with torch.no_grad():
        torch.testing.assert_close(model.logits(ids), ref(ids[None]).logits[0], atol=1e-4, rtol=1e-4)


def test_old_and_new_rope_config_forms_agree():
    old = {"architectures": ["Qwen3ForCausalLM"], "vocab_size": 10, "hidden_size": 8, "intermediate_size": 16,
           "num_hidden_layers": 1, "num_attention_heads": 2, "num_key_value_heads": 1, "head_dim": 4,
           "rope_theta": 5e5,
           "rope_scaling": {"type": "yarn", "factor": 4.0, "original_max_position_embeddings": 32768}}
    new = {k: v for k, v in old.items() if k not in ("rope_theta", "rope_scaling")}
    new["rope_parameters"] = {"rope_type": "yarn", "rope_theta": 5e5, "factor": 4.0,
                              "original_max_position_embeddings": 32768}
    a, b = ModelConfig.from_hf(old), ModelConfig.from_hf(new)
    assert a == b and a.rope_theta == 5e5 and a.rope_scaling["factor"] == 4.0
    plain = dict(new, rope_parameters={"rope_type": "default", "rope_theta": 1e6})
    assert ModelConfig.from_hf(plain).rope_scaling is None


def test_moe_layer_selection():
    cfg = ModelConfig("qwen3_moe", 10, 8, 16, 6, 2, 1, 4, num_experts=4, num_experts_per_tok=2,
                      decoder_sparse_step=2, mlp_only_layers=[3])
    assert [cfg.is_moe_layer(i) for i in range(6)] == [False, True, False, False, False, True]
