"""What `pull` accepts: a catalog name (qwen3:0.6b), `hf:ORG/REPO[:FILE]` or `modelscope:ORG/REPO[:FILE]`."""
import re
from dataclasses import dataclass

from qwenkit.store.catalog import CATALOG, HF_FILES, CatalogEntry, canonical, lookup
from qwenkit.store.errors import ModelNotFoundError, StoreError
from qwenkit.store.formats import SPLIT
from qwenkit.store.names import ModelName, parse_name

REPO = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*")


@dataclass(slots=True)
class Source:
    kind: str                    # "hf" or "modelscope"
    repo: str
    patterns: tuple[str, ...]    # which files of the repo make the model (case-insensitive globs)
    name: ModelName              # where it is stored
    entry: CatalogEntry | None = None
    selector: str | None = None


def parse_source(ref: str, name: str | None = None) -> Source:
    ref = ref.strip()
    kind, sep, rest = ref.partition(":")
    if sep and kind in ("hf", "modelscope"):
        repo, _, selector = rest.partition(":")
        if not REPO.fullmatch(repo) or ".." in repo:
            raise StoreError(f"{ref!r}: expected {kind}:ORG/REPO or {kind}:ORG/REPO:FILE, "
                             "e.g. hf:Qwen/Qwen3-0.6B-GGUF:Qwen3-0.6B-Q8_0.gguf")
        target = parse_name(name) if name else default_name(repo, selector or None)
        return Source(kind, repo, patterns_for(selector or None), target, None, selector or None)
    wanted = parse_name(ref)
    entry = lookup(wanted)
    if entry is None:
        raise ModelNotFoundError(
            f"{ref!r} is not in the catalog (see `qwenkit doctor` or docs/models.md; e.g. "
            f"{', '.join(list(CATALOG)[:3])}); any Hub repository works as `qwenkit pull hf:ORG/REPO`")
    target = parse_name(name) if name else parse_name(canonical(wanted))
    return Source("hf", entry.repo, entry.patterns, target, entry)


def patterns_for(selector: str | None) -> tuple[str, ...]:
    if selector is None:
        return HF_FILES
    if "*" in selector or "?" in selector:
        return (selector,)
    if selector.endswith(".gguf"):
        m = SPLIT.match(selector)
        return (f"{m['stem']}-*-of-*.gguf",) if m else (selector,)
    return (f"*{selector}*.gguf",)


def default_name(repo: str, selector: str | None) -> ModelName:
    base = re.sub(r"[^a-z0-9._-]+", "-", repo.split("/")[1].lower()).strip("-._") or "model"
    base = re.sub(r"\.\.+", ".", base)[:64]
    tag = "latest"
    if selector:
        stem = SPLIT.sub(r"\g<stem>", selector.lower()).removesuffix(".gguf").replace("*", "")
        tag = re.sub(r"[^a-z0-9._-]+", "-", stem.rsplit("-", 1)[-1]).strip("-._")[:64] or "latest"
    return parse_name(f"{base}:{tag}")
