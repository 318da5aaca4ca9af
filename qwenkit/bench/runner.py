"""Run every system on each workload in its own process, collect medians, print ratios, write JSON + PNG.

W1 single stream on the embedded GGUF; W2 throughput of 16 concurrent requests; W3 first-token time with
a 1,024-token shared prefix, cold vs cached; W4 Qwen3-0.6B / Qwen2.5-0.5B shapes at bf16, int8 and int4.
"""
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
WORKLOADS = ("w1", "w2", "w3", "w4")


def run_worker(args: list[str], timeout: int = 3600, module: str = "qwenkit.bench.worker") -> dict:
    cmd = [sys.executable, "-m", module, *args]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
    line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")), None)
    if proc.returncode < 0:
        name = "SIGKILL, most likely out of memory" if proc.returncode == -9 else f"signal {-proc.returncode}"
        return {"error": f"killed ({name})"}
    if proc.returncode != 0 or line is None:
        return {"error": (proc.stderr.strip().splitlines() or ["failed"])[-1]}
    return json.loads(line.removeprefix("RESULT "))


def _measure(label: str, args: list[str]) -> dict:
    with console.status(label):
        result = run_worker(args)
    console.print(f"[dim]{label}: {result}[/]")
    return result


def single_stream(gguf: str, new_tokens: int, repeats: int, threads: int) -> dict:
    common = ["--model", gguf, "--new-tokens", str(new_tokens), "--repeats", str(repeats), "--threads", str(threads)]
    systems = {f"qwenkit ({q})": _measure(f"W1 qwenkit {q}", ["qwenkit", "--quant", q, *common])
               for q in ("auto", "int8", "none")}
    systems["qwenkit (auto, --compile)"] = _measure("W1 qwenkit compiled",
                                                    ["qwenkit", "--quant", "auto", "--compile", *common])
    for dtype in ("float32", "bfloat16"):
        systems[f"transformers ({dtype})"] = _measure(f"W1 transformers {dtype}",
                                                      ["transformers", "--dtype", dtype, *common])
    if importlib.util.find_spec("llama_cpp") is not None:
        systems["llama.cpp"] = _measure("W1 llama.cpp", ["llama.cpp", *common])
    else:
        systems["llama.cpp"] = {"error": "llama-cpp-python not installed (optional: pip install llama-cpp-python, "
                                         "about 15 minutes to build here)"}
    return systems


def shapes(root: Path, new_tokens: int, threads: int) -> dict:
    from qwenkit.bench.shapes import SHAPES, random_checkpoint
    out = {}
    for name in SHAPES:
        with console.status(f"W4: writing random {name}"):
            folder = str(random_checkpoint(name, root))
        common = ["--model", folder, "--new-tokens", str(new_tokens), "--repeats", "1", "--threads", str(threads)]
        out[name] = {
            "qwenkit bf16": _measure(f"W4 {name} bf16", ["qwenkit", "--quant", "none", "--qwenkit-dtype", "bfloat16",
                                                          *common]),
            "qwenkit int8": _measure(f"W4 {name} int8", ["qwenkit", "--quant", "int8", *common]),
            "qwenkit int4": _measure(f"W4 {name} int4", ["qwenkit", "--quant", "int4", *common]),
            "transformers bf16": _measure(f"W4 {name} transformers", ["transformers", "--dtype", "bfloat16", *common]),
        }
    return out


def run(out_dir: Path, gguf: str, workloads: tuple[str, ...] = WORKLOADS, new_tokens: int = 256, repeats: int = 3,
        threads: int = 2) -> dict:
    out_dir.mkdir(parents=True, exist_ok=True)
    report = {"date": time.strftime("%Y-%m-%d %H:%M"), "threads": threads,
              "machine": describe() | {"copy_gbs": round(copy_bandwidth_gbs(), 1)}, "model": Path(gguf).name}
    if "w1" in workloads:
        report["w1"] = single_stream(gguf, new_tokens, repeats, threads)
        for result in report["w1"].values():
            if "weight_bytes_per_token" in result:
                result["achieved_gbs"] = result["weight_bytes_per_token"] * result["decode_tok_s"] / 1e9
    common = ["--model", gguf, "--threads", str(threads)]
    if "w2" in workloads:
        w2 = ["qwenkit-w2", "--requests", "16", "--new-tokens", "128", "--dense-weights", *common]
        report["w2"] = _measure("W2 16 concurrent", w2)
    if "w3" in workloads:
        report["w3"] = _measure("W3 shared prefix", ["qwenkit-w3", "--requests", "8", *common])
    if "w4" in workloads:
        report["w4"] = shapes(out_dir / "models", min(new_tokens, 64), threads)
    (out_dir / "bench.json").write_text(json.dumps(report, indent=2))
    print_tables(report)
    chart(report, out_dir / "bench.png")
    return report


def print_tables(report: dict) -> None:
    if "w1" in report:
        base = report["w1"].get("transformers (float32)", {}).get("decode_tok_s")
        table = Table(title=f"W1 single stream, {report['model']}, {report['threads']} threads "
                            f"(copy bandwidth {report['machine']['copy_gbs']} GB/s)")
        for col in ("system", "decode tok/s", "vs transformers fp32", "first token ms", "GB/s", "load s", "peak MB"):
            table.add_column(col, justify="left" if col == "system" else "right")
        for name, r in report["w1"].items():
            if "error" in r:
                table.add_row(name, f"[dim]{r['error']}[/]", "", "", "", "", "")
                continue
            ratio = f"{r['decode_tok_s'] / base:.1f}x" if base else ""
            gbs = f"{r['achieved_gbs']:.1f}" if "achieved_gbs" in r else ""
            table.add_row(name, f"{r['decode_tok_s']:.1f}", ratio, f"{r['ttft_ms']:.0f}", gbs, f"{r['load_s']:.2f}",
                          f"{r['peak_rss_mb']:.0f}")
        console.print(table)
    if "output_tok_s" in report.get("w2", {}):
        w2, single = report["w2"], report.get("w1", {}).get("qwenkit (auto)", {}).get("decode_tok_s")
        vs = f" = {w2['output_tok_s'] / single:.1f}x single stream" if single else ""
        console.print(f"W2: {w2['requests']} requests x {w2['new_tokens']} tokens: {w2['output_tok_s']:.1f} "
                      f"output tok/s{vs}; time per output token p50 {w2['tpot_p50_ms']:.0f} ms, "
                      f"p99 {w2['tpot_p99_ms']:.0f} ms; bf16 weight copies {w2.get('dense_weights_mb', 0):.0f} MB")
    if "cold_ttft_ms" in report.get("w3", {}):
        w3 = report["w3"]
        console.print(f"W3: {w3['prefix_tokens']}-token shared prefix: first token cold {w3['cold_ttft_ms']:.0f} ms, "
                      f"prefix hit {w3['hit_ttft_ms']:.0f} ms ({100 * w3['hit_over_cold']:.0f}% of cold)")
    for name, systems in report.get("w4", {}).items():
        table = Table(title=f"W4 {name} (random weights, real shapes)")
        for col in ("system", "decode tok/s", "peak MB"):
            table.add_column(col, justify="left" if col == "system" else "right")
        for label, r in systems.items():
            table.add_row(label, f"{r['decode_tok_s']:.1f}" if "decode_tok_s" in r else f"[dim]{r.get('error')}[/]",
                          f"{r['peak_rss_mb']:.0f}" if "peak_rss_mb" in r else "")
        console.print(table)


def chart(report: dict, path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    panels = [("W1 " + report["model"], {k: v for k, v in report.get("w1", {}).items() if "decode_tok_s" in v})]
    for name, systems in report.get("w4", {}).items():
        panels.append((f"W4 {name}", {k: v for k, v in systems.items() if "decode_tok_s" in v}))
    panels = [(t, s) for t, s in panels if s]
    if not panels:
        return
    fig, axes = plt.subplots(len(panels), 1, figsize=(7, 1 + 1.6 * len(panels)), squeeze=False)
    for ax, (title, systems) in zip(axes[:, 0], panels):
        names = list(systems)
        ax.barh(names, [systems[n]["decode_tok_s"] for n in names],
                color=["#2b7bba" if n.startswith("qwenkit") else "#999999" for n in names])
        ax.invert_yaxis()
        ax.set_title(title, fontsize=10)
    axes[-1, 0].set_xlabel(f"decode tokens/s, {report['threads']} threads (higher is better)")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
