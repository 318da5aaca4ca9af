"""`qwenkit list`: the stored models plus the built-in ones."""
from functools import cache

from qwenkit.store import builtin
from qwenkit.store.formats import gguf_info
from qwenkit.store.layout import Store
from qwenkit.store.manifest import FileEntry, Manifest, list_manifests


def list_models(store: Store | None = None) -> list[Manifest]:
    store = store or Store.default()
    models = sorted(list_manifests(store), key=lambda m: m.name)
    if b := builtin_manifest():
        models.append(b)
    return models


@cache
def builtin_manifest() -> Manifest | None:
    if not builtin.is_installed():
        return None
    path = builtin.smollm2_path()
    arch, quant = gguf_info(path)
    # the sha256 field is not a blob of the store here: the file lives in site-packages
    return Manifest(name=str(builtin.SMOLLM2), format="gguf", architecture=arch, quant=quant,
                    source=f"pip:{builtin.PACKAGE} ({path})",
                    files=[FileEntry(path.name, "0" * 64, path.stat().st_size)])
