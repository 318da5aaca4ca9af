"""The run folder: its marker, resumable checkpoints written atomically, the best and the final adapter.

OUT/
  qwenkit-run.json                 marks the folder as a qwenkit run: model, data fingerprint, config
  adapter_config.json, adapter_model.safetensors    the final adapter (PEFT format)
  best/                            the adapter with the lowest eval loss, and best.json
  checkpoints/step-000040/         adapter + trainer.pt (params, optimizer, scheduler, step) + rng-<rank>.pt
  report.json, loss.png
"""
import json
import random
import shutil
from pathlib import Path

import numpy as np
import torch

from qwenkit.errors import InvalidRequestError
from qwenkit.tune.peft_format import AdapterFiles, write_adapter

MARKER = "qwenkit-run.json"
CHECKPOINTS = "checkpoints"


def check_out(out: Path, resume: bool, force: bool) -> None:
    """Refuse to mix a run into someone else's files (every rank checks; only the main rank changes things)."""
    ours = (out / MARKER).is_file()
    if resume:
        if latest_checkpoint(out) is None:
            raise InvalidRequestError("resume", f"{out} holds no checkpoint to resume; start without --resume")
        return
    if out.exists() and not out.is_dir():
        raise InvalidRequestError("out", f"{out} is a file; pass a folder")
    if ours and not force:
        raise InvalidRequestError("out", f"{out} already holds a qwenkit run; pass --resume to continue it, "
                                  "or --force to start over (its checkpoints are replaced)")
    if out.is_dir() and not ours and any(out.iterdir()) and not force:
        raise InvalidRequestError("out", f"{out} holds files that are not a qwenkit run; choose a new or empty "
                                  "folder, or pass --force to write beside them (nothing there is deleted)")


def start_out(out: Path, resume: bool) -> None:
    """A fresh start over an earlier run drops only that run's resume states, which qwenkit wrote."""
    if not resume and (out / MARKER).is_file() and (out / CHECKPOINTS).is_dir():
        shutil.rmtree(out / CHECKPOINTS)
    out.mkdir(parents=True, exist_ok=True)


def write_marker(out: Path, info: dict) -> None:
    _write_json(out / MARKER, {"kind": "qwenkit-tune", **info})


def read_marker(out: Path) -> dict:
    return json.loads((out / MARKER).read_text())


def capture_rng() -> dict:
    state = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng(state: dict) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def staging_dir(out: Path, step: int) -> Path:
    """Every rank writes into this folder; `publish` renames it into place when all are done."""
    return out / CHECKPOINTS / f".step-{step:06d}.tmp"


def begin_checkpoint(out: Path, step: int) -> Path:
    tmp = staging_dir(out, step)
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    return tmp


def write_rank_state(tmp: Path, rank: int, rng: dict) -> None:
    torch.save(rng, tmp / f"rng-{rank}.pt")


def write_main_state(tmp: Path, adapter: AdapterFiles, trainer: dict) -> None:
    write_adapter(tmp, adapter)
    torch.save(trainer, tmp / "trainer.pt")


def publish(out: Path, step: int, keep: int) -> Path:
    """Rename the staged folder into place, replacing a same-step one, then drop the oldest beyond `keep`."""
    final = out / CHECKPOINTS / f"step-{step:06d}"
    if final.exists():
        old = final.with_name(final.name + ".old")
        if old.exists():
            shutil.rmtree(old)
        final.replace(old)
        staging_dir(out, step).replace(final)
        shutil.rmtree(old)
    else:
        staging_dir(out, step).replace(final)
    for stale in checkpoints(out)[:-keep]:
        shutil.rmtree(stale)
    return final


def checkpoints(out: Path) -> list[Path]:
    folder = out / CHECKPOINTS
    if not folder.is_dir():
        return []
    done = [p for p in folder.glob("step-*") if p.is_dir() and not p.name.endswith(".old")
            and (p / "trainer.pt").is_file()]
    return sorted(done, key=lambda p: int(p.name.removeprefix("step-")))


def latest_checkpoint(out: Path) -> Path | None:
    found = checkpoints(out)
    return found[-1] if found else None


def load_trainer_state(folder: Path, rank: int) -> tuple[dict, dict]:
    """Our own files (written by this module), so full unpickling is allowed for the RNG tuples."""
    trainer = torch.load(folder / "trainer.pt", map_location="cpu", weights_only=False)
    rng_file = folder / f"rng-{rank}.pt"
    if not rng_file.is_file():
        raise InvalidRequestError("resume", f"{folder} was written by fewer processes than this run has; "
                                  "resume with the same number of processes")
    return trainer, torch.load(rng_file, map_location="cpu", weights_only=False)


def write_best(out: Path, adapter: AdapterFiles, info: dict) -> None:
    """OUT/best as a whole is replaced atomically: staged beside it, then renamed."""
    tmp, best = out / ".best.tmp", out / "best"
    if tmp.exists():
        shutil.rmtree(tmp)
    write_adapter(tmp, adapter)
    _write_json(tmp / "best.json", info)
    if best.exists():
        old = out / ".best.old"
        if old.exists():
            shutil.rmtree(old)
        best.replace(old)
        tmp.replace(best)
        shutil.rmtree(old)
    else:
        tmp.replace(best)


def write_final(out: Path, adapter: AdapterFiles) -> None:
    write_adapter(out, adapter)


def _write_json(path: Path, data: dict) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, default=str) + "\n")
    tmp.replace(path)
