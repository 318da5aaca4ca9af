"""Speculative decoding returns exactly the target's greedy tokens, whatever the draft proposes."""
import pytest
import torch

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


# -- LLM(draft_model=...) --------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def drafted(smollm2_gguf):
    """The embedded model in float32, drafted by itself at int4 (the draft's default on the CPU); one thread,
    as two on a busy 2-core machine make these tests ten times slower."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield LLM(str(smollm2_gguf), quant="none", draft_model=str(smollm2_gguf), num_draft_tokens=4)
    torch.set_num_threads(threads)


def _plain(llm, ids, params):
    return [d.token_id for d in llm.generator.stream(ids, params)]


def test_generate_with_a_draft_gives_the_targets_tokens(drafted):
    assert (drafted.quant, drafted.draft_quant) == ("none", "int4")
    params = SamplingParams(temperature=0, max_tokens=24, ignore_eos=True)
    prompt = "The three primary colors are"
    out = drafted.generate(prompt, params)[0].outputs[0]
    stats = drafted.speculative_stats
    assert out.token_ids == _plain(drafted, drafted.encode(prompt), params)
    assert out.finish_reason == "length" and len(out.token_ids) == 24
    assert stats.proposed > 0 and 0 < stats.acceptance_rate <= 1
    assert stats.tokens_per_forward == (stats.accepted + stats.target_forwards) / stats.target_forwards > 1


def test_chat_and_stream_with_a_draft_stop_where_the_target_does(drafted):
    messages = [{"role": "user", "content": "What is the capital of France?"}]
    params = SamplingParams(temperature=0, max_tokens=24, stop=["."])
    ids = drafted.chat_prompt_ids(messages)
    answer = drafted.chat(messages, params)[0].outputs[0]
    first = drafted.speculative_stats
    assert answer.token_ids == _plain(drafted, ids, params) and answer.finish_reason == "stop"
    assert "Paris" in answer.text
    assert "".join(d.text for d in drafted.stream_chat(messages, params)) == answer.text
    assert drafted.speculative_stats is not first  # each request reports its own counts


def test_other_requests_skip_the_draft(drafted):
    greedy = SamplingParams(temperature=0, max_tokens=4)
    assert drafted.draft_skip_reason(greedy) is None
    assert drafted.draft_skip_reason(SamplingParams(temperature=0.7)) == "temperature is 0.7, not 0"
    assert drafted.draft_skip_reason(greedy.updated(n=2)) == "n is 2, not 1"
    assert "penalty" in drafted.draft_skip_reason(greedy.updated(repetition_penalty=1.2))
    assert "logprobs" in drafted.draft_skip_reason(greedy.updated(logprobs=0))
    assert "min_tokens" in drafted.draft_skip_reason(greedy.updated(min_tokens=2))
    drafted.speculative_stats = None
    sampled = drafted.generate("Once upon a time", SamplingParams(temperature=0.7, seed=3, max_tokens=4))
    batch = drafted.generate(["Once upon a time", "1, 2, 3,"], greedy)
    assert drafted.speculative_stats is None
    assert len(sampled[0].outputs[0].token_ids) == 4
    assert batch[1].outputs[0].token_ids == _plain(drafted, drafted.encode("1, 2, 3,"), greedy)


def test_a_draft_with_another_tokenizer_is_refused(tiny_models, smollm2_gguf):
    from qwenkit import ModelLoadError
    with pytest.raises(ModelLoadError, match=r"cannot be a draft .* 49152 tokens and the target's 151"):
        LLM(str(tiny_models("qwen3")[0]), quant="none", draft_model=str(smollm2_gguf))


def _word_tokenizer(words: list[str]):
    from tokenizers import Tokenizer as Backend
    from tokenizers import models, pre_tokenizers

    from qwenkit.tokenizer import Tokenizer
    from qwenkit.tokenizer.parts import TokenizerParts
    backend = Backend(models.WordLevel({w: i for i, w in enumerate(words)}, unk_token="[UNK]"))
    backend.pre_tokenizer = pre_tokenizers.Whitespace()
    return Tokenizer(TokenizerParts(backend, "words"))


def test_tokenizers_of_one_size_must_also_agree_on_ids():
    from qwenkit import ModelLoadError
    from qwenkit.engine.speculative import check_same_tokenizer
    words = ["[UNK]", "Hello", "world", ",", "!", "def"]
    check_same_tokenizer(_word_tokenizer(words), _word_tokenizer(list(words)), "same")
    with pytest.raises(ModelLoadError, match="^swapped: cannot be a draft .* other ids"):
        check_same_tokenizer(_word_tokenizer(words), _word_tokenizer([*words[:1], *reversed(words[1:])]), "swapped")


@pytest.mark.parametrize("option, value, field", [("num_draft_tokens", 0, "num_draft_tokens"),
                                                  ("num_draft_tokens", 17, "num_draft_tokens"),
                                                  ("draft_quant", "int3", "draft_quant")])
def test_bad_draft_options_fail_before_loading(option, value, field):
    with pytest.raises(InvalidRequestError, match=f"^{field}: "):
        LLM("./nowhere", draft_model="./nowhere", **{option: value})
