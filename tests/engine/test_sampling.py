"""Sampling semantics: seeds, top-k, stop strings, penalties, limits, logprobs."""
import pytest
import torch

from qwenkit import LLM, InvalidRequestError, SamplingParams
from qwenkit.engine.sampler import Sampler


@pytest.fixture(scope="module")
def llm(tiny_models):
    folder, _ = tiny_models("qwen3")
    return LLM(str(folder), max_model_len=256, quant="none")


PROMPT = "Once upon a time"


def _tokens(llm, **kw):
    return llm.generate(PROMPT, SamplingParams(max_tokens=24, ignore_eos=True, **kw))[0].outputs[0].token_ids


def test_seeded_runs_reproducible(llm):
    a = _tokens(llm, temperature=1.0, seed=7)
    assert a == _tokens(llm, temperature=1.0, seed=7)
    assert a != _tokens(llm, temperature=1.0, seed=8)


def test_top_k_1_equals_greedy(llm):
    assert _tokens(llm, temperature=0.9, top_k=1, seed=3) == _tokens(llm, temperature=0)


def test_n_samples_reproducible_and_distinct(llm):
    params = SamplingParams(n=3, temperature=1.0, seed=11, max_tokens=12, ignore_eos=True)
    first = [o.token_ids for o in llm.generate(PROMPT, params)[0].outputs]
    again = [o.token_ids for o in llm.generate(PROMPT, params)[0].outputs]
    assert first == again and len({tuple(t) for t in first}) == 3


def test_stop_string_cuts_exactly_and_streams_no_partial(llm):
    full = llm.generate(PROMPT, SamplingParams(temperature=0, max_tokens=40, ignore_eos=True))[0].outputs[0].text
    stop = full[len(full) // 2: len(full) // 2 + 3]
    assert stop.strip(), full
    cut = full[: full.index(stop)]
    out = llm.generate(PROMPT, SamplingParams(temperature=0, max_tokens=40, ignore_eos=True, stop=[stop]))[0].outputs[0]
    assert out.text == cut and out.finish_reason == "stop" and out.stop_reason == stop
    params = SamplingParams(temperature=0, max_tokens=40, ignore_eos=True, stop=stop)
    pieces = [d.text for d in llm.stream(PROMPT, params)]
    assert "".join(pieces) == cut


def test_stop_token_ids(llm):
    tokens = _tokens(llm, temperature=0)
    out = llm.generate(PROMPT, SamplingParams(temperature=0, max_tokens=24, ignore_eos=True,
                                              stop_token_ids=[tokens[5]]))[0].outputs[0]
    assert out.token_ids == tokens[: tokens.index(tokens[5]) + 1]
    assert out.finish_reason == "stop" and out.stop_reason == tokens[5]


def test_max_tokens_and_context_limit(llm):
    out = llm.generate(PROMPT, SamplingParams(temperature=0, max_tokens=5, ignore_eos=True))[0].outputs[0]
    assert len(out.token_ids) == 5 and out.finish_reason == "length"
    long_prompt = list(range(1000, 1250))
    out = llm.generate(long_prompt, SamplingParams(temperature=0, max_tokens=100, ignore_eos=True))[0].outputs[0]
    assert len(out.token_ids) == 256 - 250 and out.finish_reason == "length"
    with pytest.raises(InvalidRequestError, match="300 tokens but the context limit is 256"):
        llm.generate(list(range(1000, 1300)), SamplingParams(max_tokens=4))


def test_eos_stops_and_min_tokens_bans_it(llm):
    greedy = _tokens(llm, temperature=0)
    eos = greedy[3]
    llm.generator.eos_token_ids.append(eos)
    try:
        out = llm.generate(PROMPT, SamplingParams(temperature=0, max_tokens=24))[0].outputs[0]
        assert out.token_ids[-1] == eos and out.finish_reason == "stop" and out.stop_reason is None
        assert len(out.token_ids) == greedy.index(eos) + 1
        out = llm.generate(PROMPT, SamplingParams(temperature=0, max_tokens=24, min_tokens=10))[0].outputs[0]
        assert eos not in out.token_ids[:10]
    finally:
        llm.generator.eos_token_ids.remove(eos)


def test_logprobs_are_the_model_distribution(llm):
    out = llm.generate(PROMPT, SamplingParams(temperature=0, max_tokens=4, ignore_eos=True, logprobs=3))[0]
    first = out.outputs[0].logprobs[0]
    logits = llm.model.logits(torch.tensor(out.prompt_token_ids))[-1]
    expected = logits.log_softmax(-1)
    assert first.token_id == int(logits.argmax())
    assert first.logprob == pytest.approx(float(expected[first.token_id]), abs=1e-4)
    assert [t for t, _, _ in first.top] == expected.topk(3).indices.tolist()
    assert out.outputs[0].cumulative_logprob == pytest.approx(sum(lp.logprob for lp in out.outputs[0].logprobs))


def test_penalties_change_logits_as_specified():
    logits = torch.tensor([[2.0, -1.0, 0.5, 3.0]])
    params = SamplingParams(repetition_penalty=2.0, presence_penalty=0.5, frequency_penalty=0.25,
                            logit_bias={3: -10.0})
    sampler = Sampler(params, 4, prompt_ids=[0], rows=1, device="cpu")
    sampler.record(torch.tensor([1]))
    sampler.record(torch.tensor([1]))
    got = sampler.penalize(logits.clone())
    # token 0: in prompt only -> repetition 2.0/2; token 1: output twice -> -1*2 - 0.25*2 - 0.5; token 3: bias
    assert got.tolist() == [[1.0, -2.0 - 0.5 - 0.5, 0.5, -7.0]]


def test_top_p_and_min_p_filter():
    logits = torch.log(torch.tensor([[0.5, 0.3, 0.15, 0.05]]))
    seen = set()
    sampler = Sampler(SamplingParams(temperature=1.0, top_p=0.75, seed=0), 4, [], 1, "cpu")
    for _ in range(200):
        seen.add(int(sampler(logits.clone())))
    assert seen == {0, 1}
    seen.clear()
    sampler = Sampler(SamplingParams(temperature=1.0, min_p=0.25, seed=0), 4, [], 1, "cpu")
    for _ in range(200):
        seen.add(int(sampler(logits.clone())))
    assert seen == {0, 1, 2}


@pytest.mark.parametrize("field,value", [("temperature", -1), ("top_p", 0), ("top_k", -5), ("n", 0),
                                         ("max_tokens", 0), ("presence_penalty", 3), ("logprobs", 50)])
def test_bad_sampling_params_name_the_field(field, value):
    with pytest.raises(InvalidRequestError, match=field):
        SamplingParams(**{field: value})


def test_created_model_defaults_apply(tiny_models, monkeypatch):
    """A store model made with `qwenkit create --param ...` brings its sampling, context and thinking defaults."""
    from qwenkit.store import ResolvedModel
    folder, _ = tiny_models("qwen3")
    created = ResolvedModel(path=folder, params={"temperature": 0.3, "top_k": 5, "context_length": 128,
                                                 "think": False}, system="Be brief.")
    monkeypatch.setattr("qwenkit.store.resolve", lambda ref: created)
    llm = LLM("mine:latest", quant="none")
    params = llm.get_default_sampling_params()
    assert (params.temperature, params.top_k, llm.max_model_len) == (0.3, 5, 128)
    text = llm.tokenizer.decode(llm.chat_prompt_ids([{"role": "user", "content": "hi"}]), skip_special_tokens=False)
    assert text.startswith("<|im_start|>system\nBe brief.")
    if "enable_thinking" in (llm.tokenizer.chat_template or ""):
        assert text.endswith("<think>\n\n</think>\n\n")


def test_model_with_a_broken_adapter_is_refused_not_silently_run_as_its_base(tiny_models, monkeypatch, tmp_path):
    from qwenkit import ModelLoadError
    from qwenkit.store import ResolvedModel
    created = ResolvedModel(path=tiny_models("qwen3")[0], adapter=tmp_path)  # tests/engine/test_adapters.py runs one
    monkeypatch.setattr("qwenkit.store.resolve", lambda ref: created)
    with pytest.raises(ModelLoadError, match="not a PEFT adapter"):
        LLM("tuned:latest", quant="none")
