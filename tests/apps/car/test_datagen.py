"""The car training data: deterministic, held-out test phrasings and destinations, calls that run, answers
with the real figures, records that `qwenkit tune` reads, and the `qwenkit car data` command."""
import json

import pytest
from typer.testing import CliRunner

from qwenkit.apps.car import datagen
from qwenkit.apps.car.places import fold
from qwenkit.apps.car.world import World
from qwenkit.eval.scoring import answer_mentions

SIZES = {"train": 150, "val": 20, "test": 60}


@pytest.fixture(scope="module")
def splits():
    return datagen.generate(0, SIZES)


@pytest.fixture(scope="module")
def tokenizer(smollm2_gguf):
    from qwenkit.loading import load_checkpoint
    return load_checkpoint(smollm2_gguf).tokenizer


def dump(splits) -> dict:
    return {k: [c.to_dict() for c in v] for k, v in splits.items()}


def test_same_seed_same_data_and_the_test_split_stands_alone(splits):
    assert dump(datagen.generate(0, SIZES)) == dump(splits)
    assert dump(datagen.generate(1, SIZES)) != dump(splits)
    assert dump(datagen.generate(0, {"test": 60}))["test"] == dump(splits)["test"]
    assert {k: len(v) for k, v in splits.items()} == SIZES
    assert {c.kind for c in splits["train"]} == {"single", "multi", "follow_up", "error"}


def test_test_split_holds_out_phrasings_and_destinations(splits):
    seen = {s: {t for c in splits[s] for t in c.templates} for s in SIZES}
    assert seen["test"] and not seen["test"] & (seen["train"] | seen["val"])
    named = {s: {fold(d) for c in splits[s] for d in c.destinations} for s in SIZES}
    assert named["test"] and not named["test"] & (named["train"] | named["val"])
    pools = datagen.split_pools(0, World.create())
    held = {fold(d) for d in pools["test"].destinations + pools["test"].unknown_places}
    driven = {fold(call["arguments"]["destination"]) for s in ("train", "val") for c in splits[s] for t in c.turns
              for call in t.calls if call["name"] == "navigate_to"}
    assert not driven & held


def test_held_out_frames_use_wording_training_also_shows():
    """The test holds out sentence frames, not vocabulary: every wording slot (the verbs for closing a window,
    "all the way up", "in the back", distances) that a held-out frame uses is also used by a training frame."""
    pools = datagen.split_pools(0, World.create())

    def slots(pool) -> set[str]:
        return {s for ids in pool.templates.values() for t in ids for s in datagen.SLOT.findall(datagen.template(t)[1])}
    held, kept = slots(pools["test"]), slots(pools["train"])
    wording = set(datagen.phrases.LEXICON) | {"within"}
    assert held & wording and held & wording <= kept


def test_calls_run_cleanly_and_answers_carry_the_figures(splits):
    for case in splits["train"] + splits["test"]:
        world = World.create(case.world_seed)
        for turn in case.turns:
            results = [world.execute(c["name"], c["arguments"]) for c in turn.calls]
            assert results == turn.results, case.id
            assert case.kind == "error" or not any("error" in r for r in results), (case.id, results)
            assert turn.calls and turn.answer and answer_mentions(turn.answer, turn.calls, results) is not False
    follow = [c for c in splits["train"] if c.kind == "follow_up"]
    assert all(len(c.turns) == 2 for c in follow)
    multi = [c for c in splits["train"] if c.kind == "multi"]
    assert all(len(c.turns[0].calls) == 2 for c in multi)


def test_answers_quote_the_tool_results():
    world = World.create(0)
    calls = [{"name": "navigate_to", "arguments": {"destination": "Ateneum"}}]
    result = world.execute("navigate_to", calls[0]["arguments"])
    answer = datagen.phrases.spoken_answer(calls, [result])
    assert answer == f"Navigating to Ateneum, {result['distance_km']} km, about {result['eta_min']} minutes."


def test_every_example_renders_within_the_token_cap(tokenizer):
    capped = datagen.generate(0, {"train": 60, "test": 20}, tokenizer, max_tokens=250)
    for case in capped["train"]:
        ids = tokenizer.encode_chat(datagen.messages(case), add_generation_prompt=False)
        assert len(ids) <= 250
    assert dump(capped)["train"] != dump(datagen.generate(0, {"train": 60}))["train"]  # long draws were replaced


def test_records_are_what_qwenkit_tune_reads(splits, tmp_path, tokenizer):
    records = pytest.importorskip("qwenkit.tune.records")
    render = pytest.importorskip("qwenkit.tune.render")
    stats = datagen.write(tmp_path, splits, tokenizer)
    examples = records.load_examples(tmp_path / "train.jsonl")
    assert len(examples) == SIZES["train"]
    items = render.tokenize_examples(tokenizer, examples, 1024).items
    assert len(items) == SIZES["train"]
    assert stats["splits"]["train"]["tokens"]["max"] <= 1024
    cases = datagen.load_cases(tmp_path / "cases" / "test.jsonl")
    assert [c.to_dict() for c in cases] == dump(splits)["test"]
    first = json.loads((tmp_path / "test" / "chat.jsonl").read_text().splitlines()[0])
    assert first["messages"][0]["role"] == "system" and first["messages"][2]["tool_calls"]


def test_car_data_command(tmp_path, smollm2_gguf):
    from qwenkit.cli.main import app
    result = CliRunner().invoke(app, ["car", "data", "--out", str(tmp_path), "--train", "30", "--val", "5",
                                      "--test", "10"])
    assert result.exit_code == 0, result.output
    stats = json.loads((tmp_path / "stats.json").read_text())
    assert stats["splits"]["train"]["examples"] == 30 and stats["splits"]["train"]["tokens"]["max"] <= 400
    assert stats["system_prompt_tokens"] <= 250
    assert len((tmp_path / "val.jsonl").read_text().splitlines()) == 5
