"""`modelscope:ORG/REPO[:FILE]` through the ModelScope client (optional: `pip install modelscope`)."""
import shutil
from pathlib import Path

from qwenkit.store.errors import PullError
from qwenkit.store.formats import inspect_path
from qwenkit.store.importer import local_manifest
from qwenkit.store.layout import Store
from qwenkit.store.manifest import Manifest, write_manifest
from qwenkit.store.progress import Reporter
from qwenkit.store.sources import Source
from qwenkit.store.views import materialize


def pull_modelscope(src: Source, revision: str | None, store: Store, reporter: Reporter) -> Manifest:
    try:
        from modelscope import snapshot_download
    except ImportError:
        raise PullError("`modelscope:` names need the ModelScope client: "
                        "run `pip install modelscope`") from None
    store.ensure()
    staging = store.tmp / f"modelscope-{src.repo.replace('/', '--')}"
    reporter.info(f"downloading {src.repo} from ModelScope into {staging} "
                  "(the client resumes and checks hashes)")
    try:
        folder = Path(snapshot_download(src.repo, revision=revision, local_dir=str(staging),
                                        allow_patterns=list(src.patterns)))
    except Exception as e:
        raise PullError(f"modelscope:{src.repo}: {e}; run the same pull again to resume") from None
    target = folder
    if src.selector:
        ggufs = sorted(folder.rglob("*.gguf"))
        if not ggufs:
            raise PullError(f"modelscope:{src.repo}: no file matches {src.selector}")
        target = ggufs[0]
    local = inspect_path(target)
    with store.lock(shared=True):
        m = local_manifest(store, local, str(src.name), f"modelscope:{src.repo}", False, reporter)
        write_manifest(store, m)
        materialize(store, m)
    shutil.rmtree(staging, ignore_errors=True)
    return m
