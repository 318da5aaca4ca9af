"""`qwenkit bench fidelity` on a tiny model: the report's shape, and speculative output identical to plain."""
import json

from typer.testing import CliRunner

from qwenkit.bench.fidelity import MODES, PROMPTS, first_difference, run_fidelity


def test_first_difference_counts_the_leading_tokens_that_agree():
    assert first_difference([1, 2, 3], [1, 2, 3]) == 3
    assert first_difference([1, 2, 3], [1, 5, 3]) == 1
    assert first_difference([4], [5]) == 0


def test_fidelity_report_on_a_tiny_model(tiny_models, tmp_path):
    folder, _ = tiny_models("qwen2")
    report = run_fidelity(tmp_path, str(folder), agree_tokens=6, new_tokens=12, threads=1)
    assert json.loads((tmp_path / "bench_fidelity.json").read_text()) == report
    for mode in MODES:
        rows = report["quantized"][mode]["prompts"]
        assert len(rows) == len(PROMPTS) and all(0 <= r["agree"] <= 6 for r in rows)
        assert all(-1 <= r["cosine"] <= 1 for r in rows)
        assert report["quantized"][mode]["all_agree"] == sum(r["agree"] == 6 for r in rows)
    assert report["quantized"]["int8"]["min_cosine"] > 0.99
    spec = report["speculative"]
    assert spec["identical"] is True and spec["speculative"]["draft_quant"] == "int4"
    assert 0 <= spec["speculative"]["acceptance_rate"] <= 1 and spec["plain"]["tok_s"] > 0
    jump = report["jump_forward"]
    assert jump["requests"] == 8 and 0 <= jump["identical"] <= 8
    plain, fast = jump["plain"], jump["jump_forward"]
    assert plain["forward_passes"] == plain["tokens"]          # one pass per token without jump-forward
    assert fast["forward_passes"] < fast["tokens"]             # the forced `<tool_call>` openings ride along


def test_unknown_suite_names_the_choices():
    from qwenkit.cli.main import app
    result = CliRunner().invoke(app, ["bench", "accuracy"])
    assert result.exit_code != 0 and "fidelity" in result.output
