"""Store commands: pull, import, create, list, rm, verify, prune, doctor."""
import functools
import json
from datetime import UTC, datetime
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)
from rich.table import Table

from qwenkit.errors import QwenkitError
from qwenkit.store.layout import Store
from qwenkit.store.progress import Reporter
from qwenkit.store.units import human_size

out = Console()
err = Console(stderr=True)


def register(app: typer.Typer) -> None:
    app.command("pull")(pull)
    app.command("import")(import_)
    app.command("create")(create)
    app.command("list")(list_)
    app.command("rm")(rm)
    app.command("verify")(verify)
    app.command("prune")(prune)
    app.command("doctor")(doctor)


def reports_errors(fn):
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except QwenkitError as e:
            err.print(f"[red]error:[/red] {escape(str(e))}")
            raise typer.Exit(1) from None
        except KeyboardInterrupt:
            err.print("[yellow]interrupted[/yellow]: run the same command again to resume")
            raise typer.Exit(130) from None
    return wrapper


class RichReporter(Reporter):
    """Progress bars with speed and ETA on stderr, so stdout stays clean for scripts."""

    def __init__(self):
        self.progress = Progress(TextColumn("{task.description}"), BarColumn(), DownloadColumn(),
                                 TransferSpeedColumn(), TimeRemainingColumn(), console=err)
        self.task = None
        self.transient = False

    def __enter__(self) -> "RichReporter":
        self.progress.start()
        return self

    def __exit__(self, *exc) -> None:
        self.progress.stop()

    def info(self, message: str) -> None:
        self.progress.console.print(f"[dim]{escape(message)}[/dim]")

    def warn(self, message: str) -> None:
        self.progress.console.print(f"[yellow]warning:[/yellow] {escape(message)}")

    def start(self, label: str, total: int | None, done: int = 0) -> None:
        self.task = self.progress.add_task(escape(label), total=total, completed=done)
        self.transient = label.startswith("verify ")

    def advance(self, n: int) -> None:
        if self.task is not None:
            self.progress.advance(self.task, n)

    def finish(self) -> None:
        if self.task is not None and self.transient:
            self.progress.remove_task(self.task)
        self.task = None


@reports_errors
def pull(model: Annotated[str, typer.Argument(help="qwen3:0.6b, qwen2.5:1.5b-q4_k_m, hf:ORG/REPO[:FILE], "
                                                    "modelscope:ORG/REPO")],
         name: Annotated[str | None, typer.Option(help="Store it under this name:tag.")] = None,
         revision: Annotated[str | None, typer.Option(help="Branch, tag or commit on the Hub.")] = None,
         context: Annotated[int, typer.Option(help="Context length for the will-it-fit check.")] = 4096):
    """Download a model into the local store (resumable; every file's sha256 checked)."""
    from qwenkit.store.pull import pull as do_pull
    with RichReporter() as reporter:
        m = do_pull(model, name=name, revision=revision, context=context, reporter=reporter)
    out.print(f"pulled [bold]{m.name}[/bold]: {len(m.files)} files, {human_size(m.size)}, {m.format} "
              f"{m.quant} (from {escape(m.source)})")


@reports_errors
def import_(path: Annotated[str, typer.Argument(help="A Hugging Face model folder or a .gguf file.")],
            name: Annotated[str, typer.Option(help="Store it under this name:tag.")],
            link: Annotated[bool, typer.Option(help="Hard-link instead of copying (same disk only; editing "
                                                    "the original then corrupts the store copy).")] = False):
    """Add a local model to the store."""
    from qwenkit.store.importer import import_model
    with RichReporter() as reporter:
        m = import_model(path, name, link=link, reporter=reporter)
    out.print(f"imported [bold]{m.name}[/bold]: {len(m.files)} files, {human_size(m.size)}, "
              f"{m.format} {m.quant}")


@reports_errors
def create(name: Annotated[str, typer.Argument(help="The new model's name:tag.")],
           base: Annotated[str, typer.Option("--from", help="Base: a stored name, a folder or a .gguf.")],
           adapter: Annotated[str | None, typer.Option(help="A PEFT LoRA adapter folder.")] = None,
           system: Annotated[str | None, typer.Option(help="Default system prompt.")] = None,
           param: Annotated[list[str] | None, typer.Option(
               help="Default sampling, key=value (temperature, top_p, top_k, stop, ...).")] = None):
    """Make a derived model: base + adapter + system prompt + default parameters (like a Modelfile)."""
    from qwenkit.store.create import create_model, parse_params
    params = parse_params(param or [])
    with RichReporter() as reporter:
        m = create_model(name, base, adapter=adapter, system=system, params=params, reporter=reporter)
    extra = ", ".join(filter(None, ["adapter" if m.adapter else "", "system prompt" if m.system else "",
                                    ", ".join(f"{k}={v}" for k, v in m.params.items())]))
    note = f" ({escape(extra)})" if extra else ""
    out.print(f"created [bold]{m.name}[/bold] from {escape(str(m.base))}{note}")


@reports_errors
def list_():
    """Show the models on this machine."""
    from qwenkit.store.listing import list_models
    models = list_models()
    if not models:
        out.print("no models yet: `qwenkit pull qwen3:0.6b` downloads one (`qwenkit doctor` shows what fits)")
        return
    table = Table("NAME", "ID", "SIZE", "FORMAT", "QUANT", "ARCH", "MODIFIED", box=None)
    for m in models:
        builtin = m.source.startswith("pip:")
        table.add_row(m.name, "built-in" if builtin else m.digest[:12], human_size(m.size),
                      m.format + (" +lora" if m.adapter else ""), m.quant, m.architecture,
                      "-" if builtin else _ago(m.created))
    out.print(table)


@reports_errors
def rm(names: Annotated[list[str], typer.Argument(help="Models to delete.")]):
    """Delete models; blobs another model still uses are kept."""
    from qwenkit.store.gc import WAITING, remove
    done = remove(names, on_wait=lambda: err.print(f"[dim]{WAITING}[/dim]"))
    for n in done.removed:
        out.print(f"deleted {n}")
    out.print(f"freed {human_size(done.freed)} ({done.blobs} files no other model uses)")


@reports_errors
def verify(name: Annotated[str | None, typer.Argument(help="One model; all when omitted.")] = None):
    """Re-hash stored files and report missing or corrupt ones."""
    from qwenkit.store.verify import verify as do_verify
    with RichReporter() as reporter:
        report = do_verify(name, reporter=reporter)
    if report.problems:
        table = Table("MODEL", "FILE", "PROBLEM", "BLOB", box=None)
        for p in report.problems:
            table.add_row(p.model, p.path, f"[red]{p.state}[/red]", p.sha256[:12])
        out.print(table)
        err.print(f"[red]error:[/red] {len(report.problems)} damaged files; damaged models are refused at "
                  "run time. Re-download with `qwenkit pull NAME`, or `qwenkit rm NAME` and import again")
        raise typer.Exit(1)
    out.print(f"ok: {len(report.models)} models, {report.blobs} files, {human_size(report.bytes)} verified")


@reports_errors
def prune(dry_run: Annotated[bool, typer.Option(help="Only report what would be deleted.")] = False):
    """Delete unused blobs, interrupted downloads and stale folder views."""
    from qwenkit.store.gc import WAITING
    from qwenkit.store.gc import prune as do_prune
    done = do_prune(dry_run=dry_run, on_wait=lambda: err.print(f"[dim]{WAITING}[/dim]"))
    verb = "would free" if dry_run else "freed"
    out.print(f"{verb} {human_size(done.freed)}: {done.blobs} unused files, "
              f"{done.partials} partial downloads")


@reports_errors
def doctor(context: Annotated[int, typer.Option(help="Context length to size the KV cache for.")] = 4096,
           as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False):
    """What this machine has, which catalog models fit, and how fast they would decode."""
    from qwenkit.store.advice import assess_all, recommend
    from qwenkit.store.hardware import probe
    from qwenkit.store.listing import list_models
    store = Store.default()
    hw = probe(store.root)
    fits = assess_all(hw, context)
    best = recommend(fits)
    pulled = {m.name for m in list_models(store)}
    if as_json:
        out.print_json(json.dumps(_doctor_json(hw, fits, best, context)))
        return
    system = Table(show_header=False, box=None)
    system.add_row("cpu", f"{hw.cpu} ({hw.cores} cores)")
    system.add_row("features", ", ".join(hw.features) or "none of AVX2/AVX-512/BF16/AMX/NEON")
    system.add_row("memory", f"{human_size(hw.memory_total)} ({human_size(hw.memory_available)} available)")
    for g in hw.gpus or []:
        system.add_row("gpu", f"{g.name}, {human_size(g.memory_total)} ({human_size(g.memory_free)} free)")
    if not hw.gpus:
        system.add_row("gpu", "none (CUDA not available)")
    system.add_row("disk", f"{human_size(hw.disk_free)} free at {hw.disk_path}")
    decode = f"; qwenkit decode reads {hw.decode_bandwidth / 1e9:.1f} GB/s of weights" if hw.decode_bandwidth else ""
    system.add_row("bandwidth", f"{hw.bandwidth / 1e9:.1f} GB/s measured (CPU copy){decode}"
                   + (f", {hw.gpu_bandwidth / 1e9:.0f} GB/s (GPU)" if hw.gpus else ""))
    out.print(system)
    table = Table("MODEL", "FORMAT", "DOWNLOAD", f"MEMORY @{context}", "FITS", "ON", "DECODE*", "", box=None)
    colors = {"yes": "green", "tight": "yellow", "no": "red"}
    for f in fits:
        e = f.entry
        table.add_row(e.name, e.format, human_size(e.size), human_size(f.memory),
                      f"[{colors[f.fits]}]{f.fits}[/{colors[f.fits]}]", f.device,
                      f"{f.tokens_per_s:.0f} tok/s" if f.fits != "no" else "-",
                      "pulled" if e.name in pulled else "")
    out.print(table)
    source = "qwenkit's measured decode bandwidth" if hw.decode_bandwidth else "measured copy bandwidth"
    out.print(f"[dim]* estimate: {source} / bytes read per token (active weights + KV cache); "
              "memory-bound decoding scaled from a measurement, not a benchmark of each model.[/dim]")
    if best:
        out.print(f"recommended default: [bold]{best.entry.name}[/bold] (~{best.tokens_per_s:.0f} tok/s on "
                  f"{best.device}); `qwenkit pull {best.entry.name}`")
    else:
        out.print("[yellow]no catalog model fits in the memory available now[/yellow]; try `smollm2:135m`")


def _doctor_json(hw, fits, best, context: int) -> dict:
    return {"cpu": hw.cpu, "cores": hw.cores, "features": hw.features, "memory_total": hw.memory_total,
            "memory_available": hw.memory_available, "disk_free": hw.disk_free,
            "gpus": [{"name": g.name, "memory_total": g.memory_total, "memory_free": g.memory_free}
                     for g in hw.gpus],
            "bandwidth": hw.bandwidth, "decode_bandwidth": hw.decode_bandwidth, "gpu_bandwidth": hw.gpu_bandwidth,
            "context": context,
            "models": [{"name": f.entry.name, "format": f.entry.format, "size": f.entry.size,
                        "memory": f.memory, "fits": f.fits, "device": f.device,
                        "tokens_per_s": round(f.tokens_per_s, 1)}
                       for f in fits],
            "recommended": best.entry.name if best else None}


def _ago(iso: str) -> str:
    try:
        seconds = (datetime.now(UTC) - datetime.fromisoformat(iso)).total_seconds()
    except ValueError:
        return "-"
    for unit, size in (("days", 86400), ("hours", 3600), ("minutes", 60)):
        if seconds >= size:
            return f"{int(seconds // size)} {unit} ago"
    return "just now"
