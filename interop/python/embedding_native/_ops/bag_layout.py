"""An embedding_bag call's indices, offsets and per-sample weights as one validated ``emb_bags``.

The library validates the layout (offsets start at 0, never decrease, end at or before L;
include_last_offset: the last one is L) each time it reads one. Python does not validate it
again: it words the failure as torch does (:func:`torch_offsets_error`, which reads two offsets)
only when the library has refused the layout.
"""

import sys
from ctypes import byref, c_int64

import numpy as np

from .._bindings import EMB_DTYPE_INT32, EMB_DTYPE_INT64, emb_bags, emb_embedding_bag_count
from ..errors import EMB_ERROR_INVALID_ARGUMENT, EMB_ERROR_UNSUPPORTED_DTYPE, EmbeddingRuntimeError
from .arguments import INDEX_DTYPE_MESSAGE, torch_type_name
from .buffers import dtype_name, flat_buffer, is_tensor
from .failures import error, layout_error

_OFFSETS0_MESSAGE = ("offsets[0] has to be 0, i.e., the first sequence in the mini-batch has to start from "
                     "position 0. However, got %d\n[ %s{} ]")
_OFFSETS_LAST_MESSAGE = "offsets[-1] can not be greater than input's length %d but got offsets[-1] of %d"


class BagLayout:
    """A validated ``emb_bags`` and the buffers its pointers refer to (kept alive here).

    Attributes: bags (the emb_bags Structure), num_bags, num_indices, input_shape (of the index
    array as given), indices (the flat index Buffer), offsets, psw (Buffers or None), is_tensor
    (whether results are tensors).
    """

    __slots__ = ("bags", "num_bags", "num_indices", "input_shape", "indices", "offsets", "psw", "is_tensor")


def result_dtype_name(a, b):
    """The dtype torch promotes indices and offsets to (torch.result_type / numpy's for numpy)."""
    if b is None:
        return dtype_name(a)
    if is_tensor(a) or is_tensor(b):
        torch = sys.modules["torch"]
        ta = a if is_tensor(a) else torch.from_numpy(np.ascontiguousarray(a))
        tb = b if is_tensor(b) else torch.from_numpy(np.ascontiguousarray(b))
        return str(torch.result_type(ta, tb))[len("torch."):]
    kinds = (a.dtype.kind, b.dtype.kind)
    if kinds[0] in "fc" and kinds[1] not in "fc":   # torch: integer with floating -> that floating type
        return a.dtype.name
    if kinds[1] in "fc" and kinds[0] not in "fc":
        return b.dtype.name
    return np.result_type(a.dtype, b.dtype).name


def _index_code(name):
    return EMB_DTYPE_INT32 if name == "int32" else EMB_DTYPE_INT64


def bag_indices(input, offsets, op="embedding_bag"):
    """torch's index/offset dtype check (promoted together, as torch does) and their flat
    contiguous buffers. Returns (index Buffer, code, offset Buffer or None, code, promoted name)."""
    promoted = result_dtype_name(input, offsets)
    if promoted not in ("int32", "int64"):
        raise error(EmbeddingRuntimeError, EMB_ERROR_UNSUPPORTED_DTYPE,
                    INDEX_DTYPE_MESSAGE % (1, torch_type_name(promoted), op))
    index = flat_buffer(input, None if dtype_name(input) in ("int32", "int64") else promoted)
    index_code = _index_code(dtype_name(index.array))
    offset = offset_code = None
    if offsets is not None:
        offset = flat_buffer(offsets, None if dtype_name(offsets) in ("int32", "int64") else promoted)
        offset_code = _index_code(dtype_name(offset.array))
    return index, index_code, offset, offset_code, promoted


def build_layout(index, index_code, offset, offset_code, bag_size, include_last_offset, psw, padding, input_shape,
                 is_tensor):
    """Fills an emb_bags and asks the library how many bags it describes, which validates it.
    Returns ``(layout, status)``: a failed status is for :func:`layout_failure` to raise, on this
    thread, right away."""
    layout = BagLayout()
    bags = emb_bags()
    bags.indices = index.address
    bags.num_indices = index.shape[0]
    bags.index_dtype = index_code
    if offset is None:
        bags.offsets = None
        bags.offsets_dtype = EMB_DTYPE_INT64
        bags.num_offsets = 0
        bags.bag_size = bag_size
        bags.include_last_offset = 0  # fixed-size bags: B bags whatever include_last_offset (torch 2.x)
    else:
        bags.offsets = offset.address
        bags.offsets_dtype = offset_code
        bags.num_offsets = offset.shape[0]
        bags.bag_size = 0
        bags.include_last_offset = 1 if include_last_offset else 0
    bags.reserved = 0
    bags.per_sample_weights = None if psw is None else psw.address
    bags.padding_idx = padding
    count = c_int64()
    status = emb_embedding_bag_count(byref(bags), byref(count))
    layout.bags = bags
    layout.num_bags = count.value
    layout.num_indices = index.shape[0]
    layout.input_shape = tuple(input_shape)
    layout.indices = index
    layout.offsets = offset
    layout.psw = psw
    layout.is_tensor = is_tensor
    return layout, status


def torch_offsets_error(offset, num_indices, include_last_offset, promoted):
    """torch's own error for offsets the library refused (offsets[0], offsets[-1], the
    include_last_offset count), in torch's words; None when torch would accept them (then the
    library's stricter rule is the reason: its own error)."""
    if offset is None:
        return None
    n = offset.shape[0]
    if n:
        first = int(offset.array[0])
        if first != 0:
            return error(EmbeddingRuntimeError, EMB_ERROR_INVALID_ARGUMENT, _OFFSETS0_MESSAGE % (first, torch_type_name(promoted)))
        last = int(offset.array[n - 1])
        if last > num_indices:
            return error(EmbeddingRuntimeError, EMB_ERROR_INVALID_ARGUMENT, _OFFSETS_LAST_MESSAGE % (num_indices, last))
    elif include_last_offset:
        return error(EmbeddingRuntimeError, EMB_ERROR_INVALID_ARGUMENT,
                     "include_last_offset: number of offset should be at least 1")
    return None


def bag_layout_error(weight, tensor):
    """torch's NotImplementedError for a sparse ``tensor`` (default: the weight) in embedding_bag:
    no '_embedding_bag' kernel (the op when the table needs a gradient), or '_forward_only' one."""
    grad = getattr(weight, "requires_grad", False)
    return layout_error("_embedding_bag" if grad else "_embedding_bag_forward_only",
                        weight if tensor is None else tensor)
