"""Scoring of tool calls and answers, and a small `qwenkit eval car --baseline` run."""
import json

from typer.testing import CliRunner

from qwenkit.apps.car.agent import Reply
from qwenkit.apps.car.datagen import generate
from qwenkit.eval.car import System, evaluate, summarize
from qwenkit.eval.scoring import (
    answer_mentions,
    canonical,
    fold,
    percentile,
    same_call,
    same_text,
    tool_tally,
    turn_matches,
)


def call(name: str, /, **arguments) -> dict:
    return {"name": name, "arguments": arguments}


def test_place_names_match_tolerantly():
    assert fold("Hotel Kämp") == "hotel kamp"
    assert same_call(call("navigate_to", destination="Hotel Kämp"), call("navigate_to", destination="hotel kamp"))
    assert same_call(call("navigate_to", destination="Helsingin tuomiokirkko"),
                     call("navigate_to", destination="Helsingin tuomiokirko"))   # one letter dropped
    assert not same_call(call("navigate_to", destination="Ateneum"), call("navigate_to", destination="Stockmann"))
    assert not same_text("rear_left", "rear_right", fuzzy=False)


def test_numbers_compare_numerically_and_names_must_agree():
    assert same_call(call("set_temperature", celsius=21), call("set_temperature", celsius=21.0))
    assert same_call(call("set_temperature", celsius=21), call("set_temperature", celsius="21"))
    assert not same_call(call("set_temperature", celsius=21), call("set_temperature", celsius=22))
    assert not same_call(call("set_fan", level=2), call("set_temperature", level=2))
    assert not same_call(call("set_temperature", celsius=21), call("set_temperature", celsius=21, zone="driver"))
    assert same_call(call("set_temperature", celsius=21), call("set_temperature", celsius=21, zone=None))


def test_turn_match_ignores_order_within_a_turn_but_not_count():
    want = [call("set_temperature", celsius=21), call("set_seat_heating", seat="driver", level=2)]
    assert turn_matches(want, list(reversed(want)))
    assert not turn_matches(want, want[:1])
    assert not turn_matches(want, [*want, call("pause_media")])
    assert turn_matches([], [])


def test_per_tool_tally_separates_wrong_arguments_from_wrong_tools():
    want = [call("navigate_to", destination="Ateneum"), call("play_media", query="jazz")]
    got = [call("navigate_to", destination="Stockmann"), call("pause_media")]
    tally = tool_tally(want, got)
    assert tally["navigate_to"] == {"expected": 1, "named": 1, "exact": 0, "unexpected": 0}
    assert tally["play_media"] == {"expected": 1, "named": 0, "exact": 0, "unexpected": 0}
    assert tally["pause_media"] == {"expected": 0, "named": 0, "exact": 0, "unexpected": 1}
    assert tool_tally(want, want)["play_media"]["exact"] == 1


def test_answer_must_repeat_the_returned_figures():
    calls = [call("navigate_to", destination="Ateneum")]
    results = [{"destination": "Ateneum", "distance_km": 1.0, "eta_min": 3, "via": ["Mikonkatu"]}]
    assert answer_mentions("Navigating to Ateneum, 1.0 km, about 3 minutes.", calls, results)
    assert answer_mentions("Ateneum is 1000 metres away, 3 min.", calls, results)
    assert not answer_mentions("Navigating to Ateneum, 2.4 km, about 3 minutes.", calls, results)
    assert not answer_mentions("Navigating to Ateneum.", calls, results)
    assert answer_mentions("Fine.", [call("set_fan", level=2)], [{"level": 2}]) is None
    assert answer_mentions("Sorry.", calls, [{"error": "unknown place"}]) is None


def test_percentile_interpolates():
    assert percentile([1.0, 2.0, 3.0, 4.0], 0.5) == 2.5
    assert percentile([5.0], 0.95) == 5.0
    assert percentile([], 0.5) == 0.0


def test_calls_compare_as_the_car_would_run_them():
    assert canonical(call("set_temperature", celsius="21")) == call("set_temperature", celsius=21.0, zone="all")
    assert turn_matches([call("set_temperature", celsius=21)], [call("set_temperature", celsius=21, zone="all")])
    assert turn_matches([call("find_nearby", category="cafe")], [call("find_nearby", category="coffee shops")])
    assert turn_matches([call("open_window", which="rear_left")], [call("open_window", which="Rear left")])
    assert not turn_matches([call("open_window", which="rear_left")], [call("close_window", which="rear_left")])
    assert canonical(call("set_fan", level="fast")) == call("set_fan", level="fast")   # invalid: left as is


class Silent:
    def reply(self, messages):
        return Reply("I am not sure.", invalid=1)


def test_a_system_that_never_calls_scores_zero():
    cases = generate(0, {"test": 12})["test"]
    summary = summarize("silent", evaluate(System("silent", Silent()), cases))
    assert summary["exact_match"] == 0.0 and summary["json_valid"] == 0.0
    assert all(row["named"] == 0 and row["expected"] > 0 for row in summary["tools"].values())
    assert summary["answer_mentions_figures"] is None   # no tool ran, so no figure to repeat


def test_eval_car_command_writes_one_report(tmp_path):
    from qwenkit.cli.main import app
    args = ["eval", "car", "--baseline", "--limit", "20", "--out", str(tmp_path)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["dataset"]["cases"] == 20 and [s["system"] for s in report["systems"]] == ["regex baseline"]
    baseline = report["systems"][0]
    assert baseline["turns"] == report["dataset"]["turns"] and baseline["exact_match"] >= 0.6
    assert set(baseline["latency_s"]) == {"p50", "p95", "llm_p50", "llm_p95"}
    assert (tmp_path / "report.png").read_bytes()[:4] == b"\x89PNG"
    again = CliRunner().invoke(app, args)
    assert again.exit_code == 0 and len(json.loads((tmp_path / "report.json").read_text())["systems"]) == 1
    nothing = CliRunner().invoke(app, ["eval", "car", "--out", str(tmp_path)])
    assert nothing.exit_code == 1 and "nothing to evaluate" in nothing.output
    for command in (["eval", "car", "--baseline", "--out", str(tmp_path)], ["car", "--baseline"]):
        stray = CliRunner().invoke(app, [*command, "--tuned-prompt"])
        assert stray.exit_code == 1 and "--tuned-prompt is for --endpoint" in stray.output


def test_eval_car_compares_base_and_adapter_in_one_report(tiny_models, tmp_path):
    from qwenkit.cli.main import app
    from tests.engine.test_adapters import random_adapter
    folder, hf = tiny_models("qwen2")
    adapter = random_adapter(tmp_path / "adapter", hf, seed=3, std=0.5)
    args = ["eval", "car", "--model", str(folder), "--adapter", str(adapter), "--limit", "2", "--max-tokens", "6",
            "--quant", "none", "--device", "cpu", "--out", str(tmp_path / "report")]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "report" / "report.json").read_text())
    names = [s["system"] for s in report["systems"]]
    assert names == [f"{folder} (base)", f"{folder} + {adapter}"]
    answers = [[f["answer"] for f in report["failures"][name]] for name in names]
    assert answers[0] != answers[1]   # the adapter changes what the model says
    assert CliRunner().invoke(app, ["eval", "car", "--baseline", "--limit", "2", "--out",
                                    str(tmp_path / "report")]).exit_code == 0
    merged = json.loads((tmp_path / "report" / "report.json").read_text())
    assert [s["system"] for s in merged["systems"]] == [*names, "regex baseline"]
