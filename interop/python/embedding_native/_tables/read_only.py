"""The address ranges of the read-only table mappings ``tables.load`` made.

Writing into a read-only mapping is a segmentation fault, not an exception. A numpy array says
it is read-only (``flags.writeable``), but a torch tensor over one (``torch.from_numpy`` of a
loaded table, or a loaded bfloat16 table) does not, so the library's in-place operations on
tensors (``max_norm`` renormalisation, the fused optimizer steps) and the drop-ins'
``from_pretrained(..., freeze=False)`` ask here first and raise instead of crashing.

A range is forgotten when its mapping is closed (the mapping's finaliser), so a later mapping at
the same address is not mistaken for it.
"""

import itertools
import weakref

_ranges = {}
_tokens = itertools.count()


def register(array):
    """Records the bytes of ``array`` (a read-only ``numpy.memmap``) until its mapping closes."""
    mapping = getattr(array, "_mmap", None)
    if mapping is None or array.nbytes == 0:
        return
    token = next(_tokens)
    start = array.ctypes.data
    _ranges[token] = (start, start + array.nbytes)
    weakref.finalize(mapping, _ranges.pop, token, None)


def overlaps(address, nbytes):
    """True when ``[address, address + nbytes)`` touches a live read-only table mapping."""
    stop = address + nbytes
    return nbytes > 0 and any(start < stop and address < end for start, end in list(_ranges.values()))


def any_live():
    """Whether any read-only table mapping is open (the fast paths of in-place calls check no further)."""
    return bool(_ranges)
