"""Run every system on a workload in its own process, collect medians, print ratios, write JSON + PNG."""
import importlib.util
import json
import subprocess
import sys
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from qwenkit.bench.machine import copy_bandwidth_gbs, describe

console = Console()


def run_worker(args: list[str], timeout: int = 1800) -> dict:
    cmd = [sys.executable, "-m", "qwenkit.bench.worker", *args]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")), None)
    if proc.returncode != 0 or line is None:
        return {"error": (proc.stderr.strip().splitlines() or ["failed"])[-1]}
    return json.loads(line.removeprefix("RESULT "))


def single_stream(gguf: str, new_tokens: int, repeats: int, threads: int) -> dict:
    """W1: the embedded model, one chat prompt, greedy, ignoring end of turn."""
    common = ["--model", gguf, "--new-tokens", str(new_tokens), "--repeats", str(repeats), "--threads", str(threads)]
    systems = {}
    for quant in ("auto", "int8", "none"):
        label = f"qwenkit ({quant})"
        with console.status(f"W1: {label}"):
            systems[label] = run_worker(["qwenkit", "--quant", quant, *common])
    for dtype in ("float32", "bfloat16"):
        label = f"transformers ({dtype})"
        with console.status(f"W1: {label}"):
            systems[label] = run_worker(["transformers", "--dtype", dtype, *common])
    if importlib.util.find_spec("llama_cpp") is not None:
        with console.status("W1: llama.cpp"):
            systems["llama.cpp"] = run_worker(["llama.cpp", *common])
    else:
        systems["llama.cpp"] = {"error": "llama-cpp-python not installed (pip install llama-cpp-python; "
                                         "builds from source in about 15 minutes)"}
    return systems


def run(out_dir: Path, gguf: str, new_tokens: int = 256, repeats: int = 3, threads: int = 2) -> dict:
    out_dir.mkdir(parents=True, exist_ok=True)
    bandwidth = copy_bandwidth_gbs()
    report = {"date": time.strftime("%Y-%m-%d %H:%M"), "machine": describe() | {"copy_gbs": round(bandwidth, 1)},
              "w1": {"model": Path(gguf).name, "new_tokens": new_tokens, "repeats": repeats, "threads": threads,
                     "systems": single_stream(gguf, new_tokens, repeats, threads)}}
    for result in report["w1"]["systems"].values():
        if "weight_bytes_per_token" in result:
            result["achieved_gbs"] = result["weight_bytes_per_token"] * result["decode_tok_s"] / 1e9
    (out_dir / "bench.json").write_text(json.dumps(report, indent=2))
    print_table(report)
    chart(report, out_dir / "bench.png")
    return report


def print_table(report: dict) -> None:
    systems = report["w1"]["systems"]
    base = systems.get("transformers (float32)", {}).get("decode_tok_s")
    table = Table(title=f"W1 single stream, {report['w1']['model']}, {report['w1']['new_tokens']} tokens, "
                        f"{report['w1']['threads']} threads (copy bandwidth {report['machine']['copy_gbs']} GB/s)")
    for col in ("system", "decode tok/s", "vs transformers fp32", "first token ms", "GB/s", "load s", "peak RSS MB"):
        table.add_column(col, justify="left" if col == "system" else "right")
    for name, r in systems.items():
        if "error" in r:
            table.add_row(name, f"[dim]{r['error']}[/]", "", "", "", "", "")
            continue
        ratio = f"{r['decode_tok_s'] / base:.1f}x" if base else ""
        gbs = f"{r['achieved_gbs']:.1f}" if "achieved_gbs" in r else ""
        table.add_row(name, f"{r['decode_tok_s']:.1f}", ratio, f"{r['ttft_ms']:.0f}", gbs,
                      f"{r['load_s']:.2f}", f"{r['peak_rss_mb']:.0f}")
    console.print(table)


def chart(report: dict, path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    systems = {k: v for k, v in report["w1"]["systems"].items() if "decode_tok_s" in v}
    fig, ax = plt.subplots(figsize=(7, 0.5 + 0.5 * len(systems)))
    names = list(systems)
    ax.barh(names, [systems[n]["decode_tok_s"] for n in names],
            color=["#2b7bba" if n.startswith("qwenkit") else "#999999" for n in names])
    ax.invert_yaxis()
    ax.set_xlabel("decode tokens/s (higher is better)")
    ax.set_title(f"W1: {report['w1']['model']}, {report['w1']['threads']} threads")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
