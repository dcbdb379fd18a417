"""Tables the package allocates itself: on Linux, large ones are backed by an anonymous mapping
that starts on a 2 MiB boundary and is advised with ``MADV_HUGEPAGE``, so the kernel can back it
with transparent huge pages. A random row lookup then needs one TLB entry per 2 MiB instead of per
4 KiB, which is what limits gathers from tables far larger than the cache (bench/results)."""

import mmap

import numpy as np

__all__ = ["HUGE_PAGE_BYTES", "empty_table"]

#: The x86-64 and arm64 (4 KiB granule) transparent huge page size.
HUGE_PAGE_BYTES = 2 << 20


def empty_table(num_embeddings, embedding_dim, huge_pages=None):
    """A C-contiguous float32 array of shape ``(num_embeddings, embedding_dim)``, zero-filled.

    ``huge_pages=None`` (the default) asks for huge pages when the table holds at least
    ``HUGE_PAGE_BYTES``; ``True`` / ``False`` force the choice. Where the platform has no
    ``MADV_HUGEPAGE`` (or the kernel's transparent huge pages are ``never``) the table is an
    ordinary array: the advice is a hint, never a requirement. The mapping lives as long as the
    array (numpy keeps a reference to it).
    """
    num_embeddings, embedding_dim = int(num_embeddings), int(embedding_dim)
    nbytes = num_embeddings * embedding_dim * 4
    if huge_pages is None:
        huge_pages = nbytes >= HUGE_PAGE_BYTES
    if not huge_pages or nbytes == 0 or not hasattr(mmap, "MADV_HUGEPAGE"):
        return np.zeros((num_embeddings, embedding_dim), dtype=np.float32)

    # One extra huge page lets the table start on a 2 MiB boundary, so its first and last huge
    # pages are whole (mmap only promises 4 KiB alignment).
    mapping = mmap.mmap(-1, nbytes + HUGE_PAGE_BYTES, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
    raw = np.frombuffer(mapping, dtype=np.uint8)
    start = -raw.ctypes.data % HUGE_PAGE_BYTES
    mapping.madvise(mmap.MADV_HUGEPAGE, start, nbytes)
    return raw[start:start + nbytes].view(np.float32).reshape(num_embeddings, embedding_dim)
