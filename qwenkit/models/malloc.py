"""Give freed memory back to the system while a model is converted.

Quantized loading allocates and frees one full-precision matrix after another. glibc serves blocks above
its mmap threshold straight from the kernel and returns them on free, but it raises that threshold as
such blocks are freed, so later matrices land on the heap and stay resident: peak memory then grows with
the checkpoint instead of with the largest matrix. A fixed threshold during the load keeps every large
temporary returnable; afterwards the heap is trimmed and the usual ceiling restored.
"""
import contextlib
import ctypes
import ctypes.util

M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3
LOAD_THRESHOLD, RUN_THRESHOLD = 1 << 20, 32 << 20


def _libc():
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name) if name else None
    except OSError:
        return None
    return libc if libc is not None and hasattr(libc, "mallopt") and hasattr(libc, "malloc_trim") else None


@contextlib.contextmanager
def returning_freed_memory():
    libc = _libc()  # None off glibc (macOS, musl): nothing to tune there
    if libc is not None:
        libc.mallopt(M_MMAP_THRESHOLD, LOAD_THRESHOLD)
    try:
        yield
    finally:
        if libc is not None:
            libc.malloc_trim(0)
            libc.mallopt(M_MMAP_THRESHOLD, RUN_THRESHOLD)
            libc.mallopt(M_TRIM_THRESHOLD, 2 * RUN_THRESHOLD)
