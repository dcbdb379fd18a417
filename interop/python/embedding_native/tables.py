"""Tables the package allocates itself: on Linux, large ones are backed by an anonymous mapping
that starts on a 2 MiB boundary and is advised with ``MADV_HUGEPAGE``, so the kernel can back it
with transparent huge pages. A random row lookup then needs one TLB entry per 2 MiB instead of per
4 KiB, which is what limits gathers from tables far larger than the cache (bench/results).

Tables on disk: :func:`save` writes a table as a .npy or .safetensors file and :func:`load` maps
one back (read-only by default), so a table larger than memory is served from the page cache."""

import mmap

import numpy as np

from ._tables.files import load, save

__all__ = ["HUGE_PAGE_BYTES", "empty_table", "load", "save", "zeros"]

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
    return zeros((num_embeddings, embedding_dim), huge_pages)


def zeros(shape, huge_pages=None):
    """A zero-filled C-contiguous float32 array of any ``shape``, allocated as :func:`empty_table`
    allocates a table: a fresh anonymous mapping, advised with ``MADV_HUGEPAGE``, once it holds at
    least ``HUGE_PAGE_BYTES``.

    Fresh anonymous memory reads as zeros without a clearing pass (the kernel zeroes each page on
    first touch), and with huge pages it is faulted in 2 MiB at a time instead of 4 KiB. That is
    what makes a large new output or a dense gradient cheap: torch's ``empty`` + ``zero_`` of a
    256 MiB gradient costs about 0.1 s here, most of it in 65 536 page faults.
    """
    shape = tuple(int(n) for n in shape)
    nbytes = int(np.prod(shape, dtype=np.int64)) * 4
    if huge_pages is None:
        huge_pages = nbytes >= HUGE_PAGE_BYTES
    if not huge_pages or nbytes == 0 or not hasattr(mmap, "MADV_HUGEPAGE"):
        return np.zeros(shape, dtype=np.float32)
    # One extra huge page lets the array start on a 2 MiB boundary, so its first and last huge
    # pages are whole (mmap only promises 4 KiB alignment).
    mapping = mmap.mmap(-1, nbytes + HUGE_PAGE_BYTES, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
    raw = np.frombuffer(mapping, dtype=np.uint8)
    start = -raw.ctypes.data % HUGE_PAGE_BYTES
    mapping.madvise(mmap.MADV_HUGEPAGE, start, nbytes)
    return raw[start:start + nbytes].view(np.float32).reshape(shape)
