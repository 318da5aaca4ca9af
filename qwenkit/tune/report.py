"""What a run tells its user: a progress bar while it trains, then report.json and a loss-curve PNG."""
import json
import resource
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn


@dataclass(slots=True)
class RunReport:
    model: str
    config: dict
    data: dict                                   # the data summary: examples, rows, tokens, supervised, dropped
    total_steps: int
    steps: int = 0                               # optimizer steps done
    status: str = "running"                      # finished | interrupted | stopped: <why>
    losses: list[tuple[int, float]] = field(default_factory=list)
    eval_losses: list[tuple[int, float]] = field(default_factory=list)
    best: dict | None = None                     # {"step", "eval_loss"}
    tokens: int = 0                              # input tokens trained on (all ranks)
    train_seconds: float = 0.0                   # optimizer steps only: no eval, checkpoint or setup time
    tokens_per_second: float = 0.0               # over steps after the first (which pays for warm-up)
    peak_rss_mb: float = 0.0
    peak_gpu_mb: float | None = None
    wall_seconds: float = 0.0
    world_size: int = 1
    precision: str = "fp32"
    device: str = "cpu"
    out: str = ""


def peak_rss_mb() -> float:
    kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return kb / (1 << 20) if sys.platform == "darwin" else kb / 1024  # bytes on macOS, KiB on Linux


def finish(report: RunReport, out: Path) -> None:
    report.peak_rss_mb = round(peak_rss_mb(), 1)
    if torch.cuda.is_available() and report.device.startswith("cuda"):
        report.peak_gpu_mb = round(torch.cuda.max_memory_allocated() / (1 << 20), 1)
    tmp = out / "report.json.tmp"
    tmp.write_text(json.dumps(asdict(report), indent=2) + "\n")
    tmp.replace(out / "report.json")
    if report.losses:
        plot_losses(report, out / "loss.png")


def plot_losses(report: RunReport, path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(7, 4), dpi=120)
    steps, losses = zip(*report.losses)
    ax.plot(steps, losses, label="train", linewidth=1.2)
    if report.eval_losses:
        es, el = zip(*report.eval_losses)
        ax.plot(es, el, "o-", label="eval", linewidth=1.2)
    if report.best:
        ax.axvline(report.best["step"], color="gray", linestyle=":", label=f"best (step {report.best['step']})")
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("cross-entropy per supervised token")
    ax.set_title(f"{report.model}: LoRA r{report.config['lora_r']}, {report.precision}")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


class ProgressLog:
    """A rich bar with loss, tokens/s and ETA on a terminal; plain lines every `every` steps otherwise."""

    def __init__(self, total: int, start: int, enabled: bool, console: Console | None = None):
        self.console = console or Console(stderr=True, highlight=False)
        self.enabled = enabled
        self.live = enabled and self.console.is_terminal
        self.every = max(1, total // 20)
        self.total = total
        self.bar = Progress(TextColumn("[bold]tune[/]"), BarColumn(), MofNCompleteColumn(),
                            TextColumn("loss {task.fields[loss]}"), TextColumn("{task.fields[speed]} tok/s"),
                            TimeRemainingColumn(), console=self.console, disable=not self.live)
        self.task = self.bar.add_task("tune", total=total, completed=start, loss="-", speed="-")

    def __enter__(self) -> "ProgressLog":
        self.bar.start()
        return self

    def __exit__(self, *exc) -> None:
        self.bar.stop()

    def step(self, step: int, loss: float, tokens_per_second: float) -> None:
        self.bar.update(self.task, completed=step, loss=f"{loss:.4f}", speed=f"{tokens_per_second:,.0f}")
        if self.enabled and not self.live and (step % self.every == 0 or step == self.total or step == 1):
            self.console.print(f"step {step}/{self.total}  loss {loss:.4f}  {tokens_per_second:,.0f} tok/s")

    def say(self, text: str) -> None:
        if self.enabled:
            self.console.print(text, soft_wrap=True)
