"""One report for every system evaluated on a dataset: report.json and a bar chart, report.png. Systems from
earlier runs on the same cases are kept, so the baseline, the base model and the tuned adapter can be
evaluated one at a time and still land side by side."""
import json
from pathlib import Path

BARS = [("exact_match", "tool calls exact"), ("json_valid", "valid JSON calls"),
        ("answer_mentions_figures", "answer has the figures")]


def merge(out: Path, dataset: dict, summaries: list[dict], details: dict[str, list]) -> dict:
    """The report with `summaries` added; systems already in out/report.json for the same dataset are kept unless
    evaluated again now."""
    path = Path(out) / "report.json"
    old = json.loads(path.read_text()) if path.is_file() else {}
    fresh = {s["system"] for s in summaries}
    kept = [s for s in old.get("systems", []) if s["system"] not in fresh] if old.get("dataset") == dataset else []
    failures = {k: v for k, v in old.get("failures", {}).items() if k in {s["system"] for s in kept}}
    return {"dataset": dataset, "systems": kept + summaries, "failures": failures | details}


def write(out: Path, report: dict) -> tuple[Path, Path]:
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "report.json").write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n")
    return out / "report.json", chart(report["systems"], out / "report.png")


def chart(systems: list[dict], path: Path) -> Path:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    fig = Figure(figsize=(11, 4.5), dpi=100)
    FigureCanvasAgg(fig)
    quality, speed = fig.subplots(1, 2, gridspec_kw={"width_ratios": [3, 2]})
    width = 0.8 / max(len(systems), 1)
    for i, system in enumerate(systems):
        values = [system.get(key) or 0.0 for key, _ in BARS]
        xs = [j + (i - (len(systems) - 1) / 2) * width for j in range(len(BARS))]
        bars = quality.bar(xs, values, width, label=system["system"])
        quality.bar_label(bars, labels=[f"{v:.0%}" for v in values], fontsize=7)
        latency = system["latency_s"]
        xs = [j + (i - (len(systems) - 1) / 2) * width for j in range(2)]
        bars = speed.bar(xs, [latency["p50"], latency["p95"]], width, label=system["system"])
        speed.bar_label(bars, labels=[seconds(v) for v in (latency["p50"], latency["p95"])], fontsize=7)
    quality.set_xticks(range(len(BARS)), [label for _, label in BARS])
    quality.set_ylim(0, 1.1)
    quality.set_title("per turn")
    quality.legend(fontsize=8, loc="lower right")
    speed.set_xticks(range(2), ["p50", "p95"])
    speed.set_ylabel("seconds per turn")
    spread = [s["latency_s"]["p50"] for s in systems if s["latency_s"]["p50"] > 0]
    if spread and max(spread) > 100 * min(spread):   # the baseline's milliseconds next to a model's seconds
        speed.set_yscale("log")
    speed.set_title("end-to-end latency")
    fig.tight_layout()
    fig.savefig(path)
    return path


def seconds(v: float) -> str:
    return f"{1000 * v:.1f} ms" if v < 1 else f"{v:.2f} s"
