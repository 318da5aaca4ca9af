"""The batching engine gives exactly the single-stream results, however requests are batched."""
import random

import pytest

from qwenkit import LLM, SamplingParams
from qwenkit.engine.llm_engine import LLMEngine

GREEDY = SamplingParams(temperature=0, max_tokens=12, ignore_eos=True, logprobs=0)


@pytest.fixture(scope="module")
def llm(tiny_models):
    return LLM(str(tiny_models("qwen3")[0]), quant="none", max_model_len=512)


def engine(llm, **kw) -> LLMEngine:
    return LLMEngine(llm.model, llm.tokenizer, llm.generator.eos_token_ids, llm.max_model_len, **kw)


def prompts(n: int, seed: int = 0) -> list[list[int]]:
    rng = random.Random(seed)
    return [[rng.randrange(1000, 150000) for _ in range(rng.randrange(3, 70))] for _ in range(n)]


def single(llm, prompt, params=GREEDY):
    out = llm.generate(prompt, params)[0].outputs[0]
    return out.token_ids, [lp.logprob for lp in out.logprobs]


def drain(eng: LLMEngine, schedule: dict[int, list[tuple[list[int], SamplingParams]]] | None = None):
    """Step until done, adding requests at the given steps; returns (request id, index) -> (tokens, logprobs)
    in the order requests were added."""
    results, step = {}, 0
    schedule = schedule or {}
    while eng.has_unfinished() or any(s >= step for s in schedule):
        for prompt, params in schedule.get(step, []):
            rid = eng.add_request(prompt, params)
            for i in range(params.n):
                results[(rid, i)] = ([], [])
        for rid, delta in eng.step():
            results[(rid, delta.index)][0].append(delta.token_id)
            if delta.logprob is not None:
                results[(rid, delta.index)][1].append(delta.logprob.logprob)
        step += 1
        assert step < 5000
    return results


def test_batched_equals_single_stream_for_mixed_lengths(llm):
    ps = prompts(6)
    eng = engine(llm, max_num_batched_tokens=64)
    got = drain(eng, {0: [(p, GREEDY) for p in ps]})
    for p, (tokens, logprobs) in zip(ps, got.values()):
        ref_tokens, ref_logprobs = single(llm, p)
        assert tokens == ref_tokens
        assert logprobs == pytest.approx(ref_logprobs, abs=1e-4)


def test_requests_join_and_leave_mid_run(llm):
    ps = prompts(5, seed=1)
    short = SamplingParams(temperature=0, max_tokens=3, ignore_eos=True, logprobs=0)
    eng = engine(llm, max_num_batched_tokens=32)
    got = drain(eng, {0: [(ps[0], GREEDY)], 2: [(ps[1], short), (ps[2], GREEDY)], 7: [(ps[3], GREEDY)],
                      9: [(ps[4], short)]})
    expected = [single(llm, ps[0])[0], single(llm, ps[1], short)[0], single(llm, ps[2])[0],
                single(llm, ps[3])[0], single(llm, ps[4], short)[0]]
    assert [t for t, _ in got.values()] == expected


def test_preemption_under_a_tiny_block_budget_changes_nothing(llm):
    ps = prompts(5, seed=2)
    cfg = llm.model.config
    per_token = 2 * cfg.num_hidden_layers * cfg.num_key_value_heads * cfg.head_dim * 4
    eng = engine(llm, kv_cache_memory=per_token * 16 * 12, block_size=16, max_num_batched_tokens=64)
    got = drain(eng, {0: [(p, GREEDY) for p in ps]})
    assert eng.scheduler.num_preemptions > 0
    assert [t for t, _ in got.values()] == [single(llm, p)[0] for p in ps]
    assert eng.blocks.num_free_blocks == len(eng.blocks.blocks)


def test_prefix_cache_hit_gives_identical_tokens_and_logprobs(llm):
    system = prompts(1, seed=3)[0] * 3
    a, b = system + [5000, 5001], system + [6000]
    eng = engine(llm)
    drain(eng, {0: [(a, GREEDY)]})
    hits = eng.blocks.hits
    warm = drain(eng, {0: [(b, GREEDY)]})
    assert eng.blocks.hits > hits
    cold = drain(engine(llm), {0: [(b, GREEDY)]})
    (warm_tokens, warm_lp), = warm.values()
    (cold_tokens, cold_lp), = cold.values()
    assert warm_tokens == cold_tokens
    assert warm_lp == pytest.approx(cold_lp, abs=1e-5)


def test_sampled_requests_are_reproducible_with_seeds(llm):
    params = SamplingParams(temperature=1.0, seed=5, max_tokens=10, ignore_eos=True, n=2, logprobs=0)
    p = prompts(1, seed=4)[0]
    first = drain(engine(llm), {0: [(p, params)]})
    again = drain(engine(llm), {0: [(prompts(2, seed=9)[1], GREEDY), (p, params)]})
    first, again = [t for t, _ in first.values()], [t for t, _ in again.values()]
    assert first == again[1:] and first[0] != first[1]


def test_aborts_return_every_block_after_random_operations(llm):
    rng = random.Random(7)
    eng = engine(llm, kv_cache_memory=4 << 20, max_num_batched_tokens=48)
    live = []
    for _ in range(1000):
        op = rng.random()
        if op < 0.25:
            params = SamplingParams(temperature=0, max_tokens=rng.randrange(1, 8), ignore_eos=True)
            live.append(eng.add_request(rng.choice(prompts(3, seed=rng.randrange(5))), params))
        elif op < 0.4 and live:
            eng.abort(live.pop(rng.randrange(len(live))))
        else:
            eng.step()
    for rid in live:
        eng.abort(rid)
    while eng.has_unfinished():
        eng.step()
    assert eng.blocks.num_free_blocks == len(eng.blocks.blocks)
    assert all(b.ref_count == 0 for b in eng.blocks.blocks) and not eng.requests and not eng.owners


def test_llm_generate_batches_several_prompts(llm):
    ps = prompts(4, seed=11)
    batched = llm.generate(ps, GREEDY)
    assert [o.prompt_token_ids for o in batched] == ps
    assert [o.outputs[0].token_ids for o in batched] == [single(llm, p)[0] for p in ps]
    assert all(o.outputs[0].finish_reason == "length" for o in batched)
    assert llm.engine.blocks.num_free_blocks == len(llm.engine.blocks.blocks)
