"""The adapter qwenkit ships for the car assistant loads on the embedded model and scores far above the untuned
model on a fixed sample of the held-out test split (phrasings and destinations unseen in training).

The issue's target is 90% exact tool calls; the shipped adapter measures 92.2% on the whole test split
(docs/car.md, 385 turns). Thirty cases are too few to hold a 90% line without flaking, so this guard sits lower,
at a level a broken adapter, loader, prompt or decoder cannot reach (the untuned model scores 0%)."""
import pytest

from qwenkit.apps.car import SHIPPED_ADAPTER

SAMPLE = slice(0, 300, 10)  # 30 of the 300 test cases, spread over the split


@pytest.fixture(scope="module")
def test_cases():
    """The test split of `qwenkit car data` (seed 0): it holds out whole phrasings, so it is the same whatever
    the size of the training split."""
    from qwenkit.apps.car.datagen import generate
    return generate(0, {"test": 300})["test"][SAMPLE]


def test_shipped_adapter_is_a_peft_folder_for_the_embedded_model():
    from qwenkit.tune.peft_format import read_adapter
    adapter = read_adapter(SHIPPED_ADAPTER)
    assert adapter.r == 16 and len(adapter.weights) == 30 * 7
    assert "SmolLM2" in (adapter.base_model or "") or "smollm2" in (adapter.base_model or "")


@pytest.mark.slow
def test_shipped_adapter_scores_above_target_on_held_out_requests(smollm2_gguf, test_cases):
    from qwenkit.eval.car import evaluate, llm_systems, summarize
    base, tuned = llm_systems(str(smollm2_gguf), str(SHIPPED_ADAPTER), base=True)
    tuned_summary = summarize(tuned.name, evaluate(tuned, test_cases))
    assert tuned_summary["turns"] >= 30
    assert tuned_summary["exact_match"] >= 0.8, tuned_summary   # 3 wrong turns in the sample on 2026-12-03
    assert tuned_summary["json_valid"] >= 0.95
    base_summary = summarize(base.name, evaluate(base, test_cases[:8]))
    assert base_summary["exact_match"] <= 0.25, base_summary
