"""New results (outputs, dense gradients) of any table type and where their memory comes from.

Small results are ordinary numpy arrays or torch tensors: the C heap hands freed memory back
without a page fault. From ``FRESH_MAPPING_BYTES`` on, glibc (and so torch) maps every allocation
afresh and faults it in 4 KiB at a time, which dominates a large result: a new 256 MiB dense
gradient costs torch about 0.1 s here. Those results instead come from huge-page mappings
(``tables.zeros``) kept in a small pool: a buffer whose last outside reference is gone (the tensor
or array built on it was dropped) is handed out again, cleared at memset speed when zeros are
asked for, so a training loop's new gradient every step reuses the last step's memory. The pool
holds at most ``POOL_BUFFERS`` buffers; ``release_cached()`` drops the idle ones.
"""

import ctypes
import sys

import numpy as np

from . import tables

#: From this size on a new result comes from the pool. It is glibc's largest dynamic mmap threshold
#: (DEFAULT_MMAP_THRESHOLD_MAX on 64-bit): below it the heap already reuses memory without faults
#: (a 16 MiB output on a fresh mapping took 3.1 ms instead of 1.5 ms from the heap).
FRESH_MAPPING_BYTES = 32 << 20

#: How many large buffers the pool keeps (in use or idle); the oldest idle one goes first.
POOL_BUFFERS = 2

# (raw, count): the uint8 array over a buffer's whole mapping, and the number of floats of its
# results, most recently handed out last. numpy makes every view's base the farthest ndarray, which
# is raw, so each result and each view of one holds a reference to raw: a buffer is idle exactly when
# the pool's entry is raw's only referrer.
_pool = []


def _idle(entry):
    # References: the entry and getrefcount's argument (raw is never bound to a name here).
    return sys.getrefcount(entry[0]) <= 2


def _floats(raw, count):
    """The floats of a buffer: from its first 2 MiB boundary (where tables.zeros put them)."""
    start = -raw.ctypes.data % tables.HUGE_PAGE_BYTES
    return raw[start:start + 4 * count].view(np.float32)


def _take(count, zeroed):
    for i in range(len(_pool)):
        entry = _pool[i]
        if entry[1] == count and _idle(entry):
            del _pool[i]
            _pool.append(entry)
            floats = _floats(entry[0], count)
            if zeroed:
                ctypes.memset(floats.ctypes.data, 0, floats.nbytes)  # glibc's memset: streaming stores
            return floats
    floats = tables.zeros((count,), huge_pages=True)  # a fresh mapping reads as zeros
    if floats.base is None:
        return floats  # no mapping here (no MADV_HUGEPAGE): an ordinary array, not pooled
    _pool.append((floats.base.base if isinstance(floats.base.base, np.ndarray) else floats.base, count))
    while len(_pool) > POOL_BUFFERS:
        # Forget the oldest buffer (idle or not: a buffer in use lives on through its results).
        del _pool[0]
    return floats


#: Bytes per element of each table type.
_ITEM_BYTES = {"float32": 4, "float64": 8, "float16": 2, "bfloat16": 2}


def new_result(shape, dtype_name, as_tensor, zeroed=False):
    """A new C-contiguous array of ``shape`` and table type ``dtype_name``: a torch tensor when
    ``as_tensor``, else numpy (no bfloat16); all zeros when ``zeroed``, otherwise uninitialised.
    Large ones come from the pool whatever their type (its buffers are counted in floats)."""
    shape = tuple(int(n) for n in shape)
    count = 1
    for n in shape:
        count *= n
    nbytes = count * _ITEM_BYTES[dtype_name]
    if nbytes >= FRESH_MAPPING_BYTES:
        floats = _take((nbytes + 3) // 4, zeroed)
        if as_tensor:
            torch = sys.modules["torch"]
            return torch.from_numpy(floats).view(getattr(torch, dtype_name))[:count].view(shape)
        return floats.view(dtype_name)[:count].reshape(shape)
    if as_tensor:
        torch = sys.modules["torch"]
        return (torch.zeros if zeroed else torch.empty)(shape, dtype=getattr(torch, dtype_name))
    return (np.zeros if zeroed else np.empty)(shape, dtype=dtype_name)


def new_float32(shape, as_tensor, zeroed=False):
    """:func:`new_result` of float32."""
    return new_result(shape, "float32", as_tensor, zeroed)


def release_cached():
    """Drops the pool's idle buffers (their mappings are unmapped); buffers in use are forgotten
    by the pool and freed when their last result goes. Returns the number of bytes released."""
    released = sum(4 * entry[1] for entry in _pool if _idle(entry))
    _pool.clear()
    return released
