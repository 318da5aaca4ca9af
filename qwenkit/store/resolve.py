"""From what a user typed to files a loader can open: a store name, a folder, or a .gguf file."""
from dataclasses import dataclass, field
from pathlib import Path

from qwenkit.store import builtin
from qwenkit.store.blobs import blob_state
from qwenkit.store.catalog import ALIASES, lookup
from qwenkit.store.errors import CorruptBlobError, InvalidNameError, ModelNotFoundError, StoreError
from qwenkit.store.formats import gguf_entry, inspect_path
from qwenkit.store.layout import Store
from qwenkit.store.manifest import Manifest, read_manifest
from qwenkit.store.names import ModelName, parse_name
from qwenkit.store.views import materialize


@dataclass(slots=True)
class ResolvedModel:
    path: Path                     # a Hugging Face folder or a .gguf file (first shard when split)
    adapter: Path | None = None    # a PEFT LoRA folder to apply on top
    system: str | None = None      # default system prompt
    params: dict = field(default_factory=dict)   # default sampling: temperature, top_p, ...
    name: str | None = None        # the store name, None for a path
    format: str = "hf"             # "hf" or "gguf"


def resolve(ref: str, store: Store | None = None) -> ResolvedModel:
    store = store or Store.default()
    ref = ref.strip()
    if not ref:
        raise InvalidNameError(ref, "it is empty")
    if looks_like_path(ref):
        return _resolve_path(Path(ref))
    try:
        name = store_name(ref)
    except InvalidNameError:
        if Path(ref).expanduser().exists():
            return _resolve_path(Path(ref))
        raise
    if b := builtin.builtin_name(name):
        return ResolvedModel(path=builtin.smollm2_path(), name=str(b), format="gguf",
                             params=dict(builtin.SMOLLM2_PARAMS))
    m = find_manifest(store, name)
    if m is None:
        if Path(ref).expanduser().exists():
            return _resolve_path(Path(ref))
        raise not_found(ref, name)
    return serve(store, m)


def serve(store: Store, m: Manifest) -> ResolvedModel:
    """Check every blob (cheaply, unless it changed since it was hashed) and hand out the folder view."""
    with store.lock(shared=True):
        for e in m.files + m.adapter:
            state = blob_state(store, e.sha256, e.size)
            if state != "ok":
                raise CorruptBlobError(
                    f"{m.name}: {e.path} is {state} in the store (blob sha256-{e.sha256[:12]}); "
                    f"it will not be used. {repair_hint(m)}")
        root = materialize(store, m)
    model = root / "model"
    path = model / gguf_entry([e.path for e in m.files]) if m.format == "gguf" else model
    return ResolvedModel(path=path, adapter=root / "adapter" if m.adapter else None, system=m.system,
                         params=dict(m.params), name=m.name, format=m.format)


def repair_hint(m: Manifest) -> str:
    if m.source.startswith("hf:") and not m.base:
        return f"Run `qwenkit pull {m.name}` to download it again (or `qwenkit rm {m.name}`)."
    return f"Run `qwenkit verify` to see all damage, then re-create it or `qwenkit rm {m.name}`."


def looks_like_path(ref: str) -> bool:
    return (ref.endswith(".gguf") or ref.startswith((".", "~", "/")) or
            ("/" in ref and not ref.startswith(("hf:", "modelscope:"))) or "\\" in ref)


def store_name(ref: str) -> ModelName:
    """`hf:` and `modelscope:` refs map to the name `pull` stores them under."""
    if ref.startswith(("hf:", "modelscope:")):
        from qwenkit.store.sources import parse_source
        return parse_source(ref).name
    return parse_name(ref)


def find_manifest(store: Store, name: ModelName) -> Manifest | None:
    m = read_manifest(store, name)
    if m is None and str(name) in ALIASES:
        m = read_manifest(store, parse_name(ALIASES[str(name)]))
    return m


def not_found(ref: str, name: ModelName) -> ModelNotFoundError:
    if lookup(name) or ref.startswith(("hf:", "modelscope:")):
        pull = ref if ref.startswith(("hf:", "modelscope:")) else str(name)
        return ModelNotFoundError(f"{ref!r} is not on this machine: run `qwenkit pull {pull}` to download it "
                                  "(`qwenkit list` shows the models you have)")
    return ModelNotFoundError(f"{ref!r} is not a stored model, file or folder: `qwenkit list` shows your "
                              "models; add one with `qwenkit pull NAME` or "
                              f"`qwenkit import PATH --name {name.name}`")


def _resolve_path(path: Path) -> ResolvedModel:
    local = inspect_path(path)
    if local.format == "gguf":
        first = local.files[gguf_entry(list(local.files))]
        return ResolvedModel(path=first, format="gguf")
    return ResolvedModel(path=path.expanduser(), format="hf")


def describe(ref: str, store: Store | None = None) -> dict | None:
    """Manifest facts for `qwenkit show`: None when `ref` is a path rather than a stored model."""
    store = store or Store.default()
    ref = ref.strip()
    if not ref or looks_like_path(ref):
        return None
    try:
        name = store_name(ref)
    except StoreError:
        return None
    if builtin.builtin_name(name):
        from qwenkit.store.listing import builtin_manifest
        if (m := builtin_manifest()) is None:
            return None
        return {"name": m.name, "format": m.format, "architecture": m.architecture, "quant": m.quant,
                "size": m.size, "source": m.source, "builtin": True, "path": str(builtin.smollm2_path())}
    m = find_manifest(store, name)
    if m is None:
        return None
    d = m.to_dict()
    d["id"] = m.digest[:12]
    d["view"] = str(store.view(parse_name(m.name)))
    return d
