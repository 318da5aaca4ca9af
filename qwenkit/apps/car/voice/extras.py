"""Optional packages of the voice parts, imported when first used."""

import importlib
from types import ModuleType

from qwenkit.errors import QwenkitError


class MissingExtraError(QwenkitError):
    """An optional package of the in-car assistant is not installed."""

    def __init__(self, module: str, purpose: str):
        self.module = module
        super().__init__(f"{purpose} needs the Python module `{module}`, which is not installed "
                         f"(install the in-car extras: pip install 'qwenkit[car]')")


def require(module: str, purpose: str) -> ModuleType:
    try:
        return importlib.import_module(module)
    except ImportError as e:
        raise MissingExtraError(e.name or module, purpose) from e
