"""`qwenkit bench tune`: qwenkit LoRA training next to transformers + PEFT (fp32 and bf16) on the same rows.

Each system runs in its own process (peak RSS is per process) on the embedded SmolLM2-135M and on random
Qwen2.5-0.5B shapes: LoRA r16 on all linear projections, sequence 512, effective batch 8, warm-up steps
excluded, then the timed steps.
"""
import json
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from qwenkit.bench.machine import describe
from qwenkit.bench.runner import run_worker

console = Console()


def _measure(label: str, args: list[str]) -> dict:
    with console.status(f"{label} (training; this takes minutes)"):
        result = run_worker(args, module="qwenkit.bench.tune_worker", timeout=7200)
    console.print(f"[dim]{label}: { {k: v for k, v in result.items() if k != 'losses'} }[/]")
    return result


def run_tune(out_dir: Path, smollm2: str, steps: int = 20, warmup: int = 2, seq_len: int = 512, batch: int = 8,
             threads: int = 2, models: tuple[str, ...] = ("smollm2-135m", "qwen2.5-0.5b")) -> dict:
    from qwenkit.bench.shapes import random_checkpoint
    from qwenkit.bench.tune_data import write_chat_data
    out_dir.mkdir(parents=True, exist_ok=True)
    data = write_chat_data(out_dir / "tune_data.jsonl", examples=60 * batch * (steps + warmup) // 8 + 200)
    report = {"date": time.strftime("%Y-%m-%d %H:%M"), "threads": threads, "machine": describe(),
              "steps": steps, "warmup": warmup, "seq_len": seq_len, "batch": batch,
              "lora": "r16 alpha32, 7 projections"}
    paths = {"smollm2-135m": smollm2}
    for name in models:
        path = paths.get(name) or str(random_checkpoint(name, out_dir / "models"))
        common = ["--model", path, "--data", str(data), "--seq-len", str(seq_len), "--batch", str(batch),
                  "--steps", str(steps), "--warmup", str(warmup), "--threads", str(threads)]
        report[name] = {
            "qwenkit": _measure(f"{name} qwenkit", ["qwenkit", *common]),
            "transformers+peft fp32": _measure(f"{name} transformers+PEFT fp32",
                                               ["transformers", "--dtype", "float32", *common]),
            "transformers+peft bf16": _measure(f"{name} transformers+PEFT bf16",
                                               ["transformers", "--dtype", "bfloat16", *common]),
        }
    (out_dir / "bench_tune.json").write_text(json.dumps(report, indent=2))
    print_table(report, models)
    chart(report, models, out_dir / "bench_tune.png")
    return report


def print_table(report: dict, models: tuple[str, ...]) -> None:
    for name in models:
        systems = report[name]
        peers = [r for k, r in systems.items() if k != "qwenkit" and "tokens_per_s" in r]
        best = max(peers, key=lambda r: r["tokens_per_s"], default=None)
        table = Table(title=f"LoRA r16, {name}, seq {report['seq_len']}, batch {report['batch']}, "
                            f"{report['steps']} steps, {report['threads']} threads")
        for col in ("system", "tokens/s", "vs best peer", "peak RSS MB", "vs best peer's RSS"):
            table.add_column(col, justify="left" if col == "system" else "right")
        for label, r in systems.items():
            if "tokens_per_s" not in r:
                table.add_row(label, f"[dim]{r.get('error')}[/]", "", "", "")
                continue
            speed = f"{r['tokens_per_s'] / best['tokens_per_s']:.2f}x" if best else ""
            memory = f"{100 * r['peak_rss_mb'] / best['peak_rss_mb']:.0f}%" if best else ""
            table.add_row(label, f"{r['tokens_per_s']:.0f}", speed, f"{r['peak_rss_mb']:.0f}", memory)
        console.print(table)


def chart(report: dict, models: tuple[str, ...], path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(len(models), 2, figsize=(11, 0.6 + 1.8 * len(models)), squeeze=False)
    for row, name in zip(axes, models):
        systems = {k: v for k, v in report[name].items() if "tokens_per_s" in v}
        labels = list(systems)
        colors = ["#2b7bba" if k == "qwenkit" else "#999999" for k in labels]
        row[0].barh(labels, [systems[k]["tokens_per_s"] for k in labels], color=colors)
        row[0].set_title(f"{name}: training tokens/s (higher is better)", fontsize=9)
        row[1].barh(labels, [systems[k]["peak_rss_mb"] / 1024 for k in labels], color=colors)
        row[1].set_title(f"{name}: peak RSS GB (lower is better)", fontsize=9)
        for ax in row:
            ax.invert_yaxis()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
