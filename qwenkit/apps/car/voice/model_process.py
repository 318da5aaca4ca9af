"""A speech model that lives in a process of its own and is called over a pipe.

The language model must keep its speed between turns. Once CTranslate2 (faster-whisper) has run in a process,
PyTorch in that process can run several times slower: on an Intel Xeon (AMX) host a bare matrix product took
190 µs instead of 44 after one transcription, with any thread count, in any thread, whatever OpenMP, MKL or
instruction-set settings CTranslate2 was given. onnxruntime (piper) does the same, milder: about 1.45x. In
processes of their own the speech models leave the language model's process as it was.
"""

import atexit
import contextlib
import multiprocessing
from collections.abc import Callable
from typing import Any

from qwenkit.errors import ModelLoadError

START_TIMEOUT_S = 120   # loading the model
CALL_TIMEOUT_S = 120    # one call: a transcription, one sentence of speech


def serve(conn, build: Callable, args: tuple) -> None:
    """The child: build the model, say ("ok", None) or ("error", why), then answer (method, args, kwargs) with
    ("ok", result) until told to stop (None) or the parent goes away."""
    try:
        model = build(*args)
    except Exception as e:  # reported to the parent, which raises ModelLoadError
        conn.send(("error", f"{type(e).__name__}: {e}"))
        return
    conn.send(("ok", None))
    while True:
        try:
            request = conn.recv()
        except EOFError:
            return
        if request is None:
            return
        method, call_args, kwargs = request
        try:
            attribute = getattr(model, method)
            conn.send(("ok", attribute(*call_args, **kwargs) if callable(attribute) else attribute))
        except Exception as e:
            conn.send(("error", f"{type(e).__name__}: {e}"))


class ModelProcess:
    """`build(*args)` run in a spawned process; `call(method, ...)` runs a method there (or reads an attribute).

    `what` names the model in errors ("speech recognition"), `path` is what ModelLoadError reports, and `hint` is
    the fix it suggests when the model does not load."""

    def __init__(self, build: Callable, args: tuple, what: str, path: str, hint: str):
        self.what, self.path, self.hint = what, path, hint
        ctx = multiprocessing.get_context("spawn")
        self.conn, child = ctx.Pipe()
        self.process = ctx.Process(target=serve, args=(child, build, args), daemon=True,
                                   name=f"qwenkit-{what.replace(' ', '-')}")
        self.process.start()
        child.close()
        atexit.register(self.close)
        self._answer(START_TIMEOUT_S, "loading the model")

    def call(self, method: str, *args, **kwargs) -> Any:
        self.conn.send((method, args, kwargs))
        return self._answer(CALL_TIMEOUT_S, f"running {method}")

    def _answer(self, timeout: float, doing: str) -> Any:
        if not self.conn.poll(timeout):
            self.close()
            raise ModelLoadError(self.path, f"{self.what} gave no answer within {timeout:.0f} s while {doing}",
                                 self.hint)
        try:
            status, value = self.conn.recv()
        except EOFError:
            raise ModelLoadError(self.path, f"the {self.what} process died while {doing}",
                                 "run again; if it repeats, reinstall the voice extras: pip install 'qwenkit[car]'"
                                 ) from None
        if status != "ok":
            raise ModelLoadError(self.path, f"{self.what} failed while {doing}: {value}", self.hint)
        return value

    def close(self) -> None:
        if self.process.is_alive():
            with contextlib.suppress(BrokenPipeError, OSError):
                self.conn.send(None)
            self.process.join(5)
            if self.process.is_alive():
                self.process.kill()
