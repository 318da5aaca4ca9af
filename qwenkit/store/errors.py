"""What can go wrong with the model store, each saying what to do next."""
from qwenkit.errors import QwenkitError


class StoreError(QwenkitError):
    """The local model store cannot do what was asked."""


class InvalidNameError(StoreError, ValueError):
    def __init__(self, name: str, problem: str):
        self.name = name
        super().__init__(f"invalid model name {name!r}: {problem} "
                         "(use lowercase letters, digits, '.', '-' and '_', as in qwen3:0.6b or my-model:v1)")


class ModelNotFoundError(StoreError):
    """A reference names no stored model, file or folder."""


class CorruptBlobError(StoreError):
    """A stored file no longer matches its sha256; it is never served."""


class PullError(StoreError):
    """A download failed; what was fetched so far is kept for the next try."""


class IntegrityError(PullError):
    """Downloaded bytes do not match the hash the server reported."""


class DiskSpaceError(StoreError):
    """Not enough free disk space for a download or import."""
