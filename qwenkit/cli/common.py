"""Shared CLI plumbing: clear errors instead of tracebacks, model loading with a spinner."""
import functools
import sys

import typer
from rich.console import Console

from qwenkit.errors import QwenkitError

console = Console(stderr=True, highlight=False)


def fail(message: str) -> None:
    console.print(f"[bold red]error:[/] {message}", soft_wrap=True)
    raise typer.Exit(1)


def friendly_errors(fn):
    """Print QwenkitError and bad-input errors as one line and exit 1; no traceback for a user's mistake."""
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except QwenkitError as e:
            fail(str(e))
        except KeyboardInterrupt:
            console.print("\n[dim]interrupted[/]")
            raise typer.Exit(130) from None
        except MemoryError:
            fail("out of memory: try a smaller model, a quantized GGUF, or --max-model-len")
    return wrapper


def interactive() -> bool:
    return sys.stdin.isatty() and sys.stdout.isatty()
