"""Exceptions for failed checks and native calls, and torch's errors for unsupported layouts.

Every exception carries an ``emb_status`` (see ``embedding_native.errors``). A check done in
Python names the status the library would have reported (:func:`error`); a failed native call
takes its status and the library's message (:func:`native_error`, on the thread that called).
"""

import sys
from ctypes import byref, c_int64

import numpy as np

from .. import _bindings
from ..errors import EMB_ERROR_INDEX_OUT_OF_RANGE, EMB_ERROR_NOT_SUPPORTED, EmbeddingNotSupportedError, \
    EmbeddingRuntimeError, error_for_status


def error(cls, status, detail):
    """An exception of ``cls`` for a check done in Python, named like a native status."""
    return cls(status, _bindings.emb_status_string(status).decode("ascii"), detail)


def native_error(status, argument=None):
    """The exception for a failed native call; must run on the thread that made the call."""
    return error_for_status(status, _bindings.emb_status_string(status).decode("ascii"), last_error(), argument)


def last_error():
    """The library's message for the latest failed call on this thread."""
    return _bindings.emb_last_error().decode("utf-8", "replace")


def last_bad_index():
    """``(position, value)`` of the bad index behind the latest failed call on this thread
    (``emb_last_index_error``), or None when that failure was not an index out of range.
    The library reports it, so the indices are never scanned again here."""
    position, value = c_int64(), c_int64()
    if _bindings.emb_last_index_error(byref(position), byref(value)):
        return position.value, value.value
    return None


def bag_index_error(status=EMB_ERROR_INDEX_OUT_OF_RANGE):
    """A bad index inside a bag (after a failed native call on this thread): torch's bag op raises
    RuntimeError (not embedding's IndexError). The text starts like torch's slow-path message
    and adds the library's detail."""
    detail = last_error()
    bad = last_bad_index()
    if bad is not None:
        detail = "embedding_bag: Expected idx >= 0 && idx < num_embeddings but found idx to be %d (%s)" % (bad[1], detail)
    return EmbeddingRuntimeError(status, _bindings.emb_status_string(status).decode("ascii"), detail)


def raise_bag_status(status):
    """Raises the exception for a failed native bag call (forward or backward)."""
    if status == EMB_ERROR_INDEX_OUT_OF_RANGE:
        raise bag_index_error(status)
    raise native_error(status)


# ---- Layouts torch has no kernel for ---------------------------------------------------------------

_LAYOUT_BACKENDS = {"torch.sparse_coo": "SparseCPU", "torch.sparse_csr": "SparseCsrCPU", "torch.sparse_csc": "SparseCsrCPU",
                    "torch.sparse_bsr": "SparseCsrCPU", "torch.sparse_bsc": "SparseCsrCPU", "torch._mkldnn": "MkldnnCPU"}


def layout_error(op, tensor):
    """torch's dispatcher error for a tensor layout the op has no kernel for: NotImplementedError
    "Could not run 'aten::<op>' with arguments from the '<backend>' backend."."""
    layout = str(tensor.layout)
    return error(EmbeddingNotSupportedError, EMB_ERROR_NOT_SUPPORTED,
                 "Could not run 'aten::%s' with arguments from the '%s' backend. (%s tensors have no %s kernel, "
                 "in torch or here)" % (op, _LAYOUT_BACKENDS.get(layout, layout), layout, op))


def require_strided(tensor, name):
    """Where torch has no counterpart to copy (the numpy-level gradient functions): a plain refusal
    of a sparse tensor, rather than the failure to take its data pointer."""
    if tensor.layout is not sys.modules["torch"].strided:
        raise error(EmbeddingNotSupportedError, EMB_ERROR_NOT_SUPPORTED,
                    "embedding_native takes strided (dense) tensors only; got %s of layout %s" % (name, tensor.layout))


def reshape_error(tensor):
    """What ``tensor.reshape(-1)`` raises for a sparse tensor in torch (F.embedding_bag's 2-D input)."""
    layout = str(tensor.layout)
    detail = ("reshape is not implemented for sparse tensors" if layout == "torch.sparse_coo"
              else "Sparse CSR tensors do not have strides" if layout.startswith("torch.sparse_")
              else "reshape is not implemented for %s tensors" % layout)
    return error(EmbeddingRuntimeError, EMB_ERROR_NOT_SUPPORTED, detail)


def non_strided(*values):
    """The first torch tensor among ``values`` whose layout is not strided (sparse, ...), else None."""
    torch = sys.modules.get("torch")
    if torch is None:
        return None
    strided, tensor_type = torch.strided, torch.Tensor
    for value in values:
        if value is not None and type(value) is not np.ndarray and isinstance(value, tensor_type) \
                and value.layout is not strided:
            return value
    return None

