"""Outputs that appear whole or not at all: written under a hidden name beside the target, then renamed."""
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from qwenkit.errors import InvalidRequestError


def check_destination(out: Path, force: bool, inputs: list[Path], folder: bool) -> None:
    """Refuse to clobber: a non-empty folder or an existing file needs force; never the inputs themselves."""
    target = out.resolve()
    for path in inputs:
        path = path.resolve()
        if target == path or target in path.parents or (folder and path in target.parents):
            raise InvalidRequestError("out", f"{out} overlaps the input {path}; choose another output path")
    if folder and out.is_file():
        raise InvalidRequestError("out", f"{out} is a file; give a folder path")
    if not folder and out.is_dir():
        raise InvalidRequestError("out", f"{out} is a folder; give a file path such as {out / 'model.gguf'}")
    exists = out.is_file() or (out.is_dir() and any(out.iterdir()))
    if exists and not force:
        raise InvalidRequestError("out", f"{out} already exists{' and is not empty' if folder else ''}; "
                                  "pass --force to replace it")


@contextmanager
def staged_folder(out: Path) -> Iterator[Path]:
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.parent / f".{out.name}.partial-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        yield tmp
        if out.exists():
            old = out.parent / f".{out.name}.old-{os.getpid()}"
            out.rename(old)
            tmp.rename(out)
            shutil.rmtree(old, ignore_errors=True)
        else:
            tmp.rename(out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


@contextmanager
def staged_file(out: Path) -> Iterator[Path]:
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.parent / f".{out.name}.partial-{os.getpid()}"
    try:
        yield tmp
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
