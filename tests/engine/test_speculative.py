"""Speculative decoding returns exactly the target's greedy tokens, whatever the draft proposes."""
import pytest

from qwenkit import LLM, InvalidRequestError, SamplingParams
from qwenkit.engine.speculative import SpeculativeDecoder
from qwenkit.loading import load_checkpoint
from qwenkit.models import load_model

GREEDY = SamplingParams(temperature=0, max_tokens=40, ignore_eos=True)


@pytest.fixture(scope="module")
def target(tiny_models):
    return LLM(str(tiny_models("qwen3")[0]), quant="none")


def _decoder(target, draft_model, k=4):
    return SpeculativeDecoder(target.model, draft_model, target.tokenizer, target.generator.eos_token_ids,
                              target.max_model_len, num_draft_tokens=k)


@pytest.mark.parametrize("k", [1, 3, 5])
def test_same_model_draft_accepts_everything(target, k):
    prompt = target.tokenizer.encode("A lighthouse keeper")
    spec = _decoder(target, target.model, k)
    tokens = [d.token_id for d in spec.stream(prompt, GREEDY)]
    assert tokens == target.generate(prompt, GREEDY)[0].outputs[0].token_ids
    assert spec.stats.acceptance_rate == 1.0


def test_unrelated_draft_still_gives_target_output(target, tiny_models, tmp_path):
    from tests.conftest import build_tiny_model
    build_tiny_model("qwen3", tmp_path, seed=1)
    draft = load_model(load_checkpoint(tmp_path))
    prompt = target.tokenizer.encode("Once upon a midnight dreary")
    spec = _decoder(target, draft)
    out = "".join(d.text for d in spec.stream(prompt, GREEDY))
    assert out == target.generate(prompt, GREEDY)[0].outputs[0].text
    assert spec.stats.acceptance_rate < 0.5 and spec.stats.target_forwards > 0


def test_quantized_draft_of_the_embedded_model(smollm2_gguf):
    target = LLM(str(smollm2_gguf), quant="none")
    draft = load_model(load_checkpoint(smollm2_gguf), quant="int4")
    story = "Write a short story about a robot who learns to paint."
    ids = target.chat_prompt_ids([{"role": "user", "content": story}])
    spec = _decoder(target, draft)
    params = SamplingParams(temperature=0, max_tokens=48, ignore_eos=True)
    tokens = [d.token_id for d in spec.stream(ids, params)]
    assert tokens == target.generate(ids, params)[0].outputs[0].token_ids
    assert spec.stats.acceptance_rate > 0.6


def test_sampling_is_refused(target):
    with pytest.raises(InvalidRequestError, match="greedy"):
        list(_decoder(target, target.model).stream([1, 2, 3], SamplingParams(temperature=0.8)))
