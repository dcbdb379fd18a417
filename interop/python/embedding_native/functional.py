"""``torch.nn.functional.embedding`` on numpy arrays and CPU torch tensors, without copying.

Semantics (torch 1.13; see the header's pseudocode for the native part)::

    embedding(input, weight, padding_idx=None, max_norm=None, norm_type=2.0,
              scale_grad_by_freq=False, sparse=False, *, out=None):
        if padding_idx is not None:                       # Python-level check, as in torch
            require -V <= padding_idx < V  (0 always passes)   else PaddingIndexError
        if max_norm is not None:                          # torch's order: renorm before the gather
            input = contiguous(input)
            embedding_renorm_(weight, input, max_norm, norm_type)   # in place; see below
        require weight.ndim == 2                          else RuntimeError "'weight' must be 2-D"
        require input.dtype in (int32, int64)             else RuntimeError "Expected tensor ..."
        V, D = weight.shape
        require V > 0 or input.size == 0                  else RuntimeError "index_select(): ..."
        require weight.dtype == float32                   else EmbeddingNotSupportedError
        result[i..., :] = weight[input[i...], :]          # every index in [0, V), else IndexError
        return result                                     # shape input.shape + (D,)

``padding_idx``, ``scale_grad_by_freq`` and ``sparse`` change only gradients in torch, so here
they are validated (padding_idx) or accepted and have no effect on the values. The padding row is
returned as stored. Gradients are separate calls (numpy level, no autograd)::

    embedding_backward(grad_output, indices, V, padding_idx, scale_grad_by_freq)   # dense [V, D]
    embedding_sparse_backward(grad_output, indices, V, padding_idx)                # (rows, values)
    sparse_coalesce(rows, values, V)                                               # (unique rows, sums)
    embedding_renorm_(weight, indices, max_norm, norm_type)                        # in place

(``embedding_native.torch`` wraps them in torch.autograd; ``embedding_native.optim`` applies
optimizer steps to the coalesced rows.)

Buffers and copies:

* ``input``: a numpy int32/int64 array (any shape, including 0-d and empty) or a CPU torch
  tensor. A C-contiguous one is passed by pointer; a non-contiguous one is first made contiguous
  (a copy of the indices only).
* ``weight``: a 2-D float32 numpy array or CPU torch tensor, passed by pointer. A non-contiguous
  weight (a transposed or sliced view) is copied to a contiguous table first, once per call;
  pass a contiguous weight to avoid that copy.
* The result is a fresh array of ``weight``'s kind: a numpy array for a numpy weight, a torch
  tensor (``torch.empty``) for a torch weight. It does not require grad. ``out=`` writes into a
  caller's C-contiguous, writable float32 buffer of exactly the result's shape instead, and
  returns it; on any error nothing is written.

torch is never imported here: a tensor is recognised through ``sys.modules`` only if the
caller already imported torch.
"""

import json
import operator
import sys
from ctypes import byref, c_int64

import numpy as np

from . import _bindings
from ._results import FRESH_MAPPING_BYTES, new_float32 as _new_float32
from ._cpu import TIER_NAMES
from ._bindings import (
    EMB_ACCUMULATE, EMB_BAG_MAX, EMB_BAG_MEAN, EMB_BAG_SUM, EMB_DTYPE_FLOAT32, EMB_DTYPE_INT32, EMB_DTYPE_INT64,
    EMB_NO_PADDING, EMB_SCALE_GRAD_BY_FREQ, emb_bags, emb_embedding, emb_embedding_backward,
    emb_embedding_backward_sparse, emb_embedding_bag, emb_embedding_bag_backward, emb_embedding_bag_backward_sparse,
    emb_embedding_bag_count, emb_embedding_bag_per_sample_weights_backward, emb_embedding_renorm, emb_sparse_coalesce,
)
from .errors import (
    EMB_ERROR_BUFFER_TOO_SMALL, EMB_ERROR_INDEX_OUT_OF_RANGE, EMB_ERROR_INVALID_ARGUMENT,
    EMB_ERROR_NOT_SUPPORTED, EMB_ERROR_UNSUPPORTED_DTYPE, EmbeddingIndexError, EmbeddingNotSupportedError,
    EmbeddingRuntimeError, PaddingIndexError, error_for_status,
)

__all__ = ["embedding", "embedding_backward", "embedding_sparse_backward", "sparse_coalesce", "embedding_renorm_",
           "normalize_padding_idx", "build_info", "set_num_threads", "get_num_threads", "embedding_bag", "embedding_bag_backward",
           "embedding_bag_sparse_backward", "embedding_bag_per_sample_weights_backward", "embedding_bag_max_indices"]

_FLOAT32 = np.dtype(np.float32)
_NUMPY_INDEX_DTYPES = {np.dtype(np.int32): EMB_DTYPE_INT32, np.dtype(np.int64): EMB_DTYPE_INT64}
_TORCH_INDEX_DTYPES = {"torch.int32": EMB_DTYPE_INT32, "torch.int64": EMB_DTYPE_INT64}

# How torch 1.13 names an index tensor's type in its "Expected tensor for argument #1" message,
# keyed by dtype name (numpy's dtype.name, torch's str(dtype) without "torch."). Types with a
# legacy tensor class use it; the others print their C++ type name.
_TORCH_TYPE_NAMES = {
    "uint8": "torch.ByteTensor", "int8": "torch.CharTensor", "int16": "torch.ShortTensor",
    "int32": "torch.IntTensor", "int64": "torch.LongTensor",
    "float16": "torch.HalfTensor", "float32": "torch.FloatTensor", "float64": "torch.DoubleTensor",
    "bfloat16": "CPUBFloat16Type", "bool": "CPUBoolType", "complex32": "CPUComplexHalfType",
    "complex64": "CPUComplexFloatType", "complex128": "CPUComplexDoubleType",
}

_INDEX_DTYPE_MESSAGE = ("Expected tensor for argument #%d 'indices' to have one of the following scalar types: "
                        "Long, Int; but got %s instead (while checking arguments for %s)")


def _error(cls, status, detail):
    """An exception of ``cls`` for a check done in Python, named like a native status."""
    return cls(status, _bindings.emb_status_string(status).decode("ascii"), detail)


def _native_error(status, argument=None):
    """The exception for a failed native call; must run on the thread that made the call."""
    return error_for_status(status, _bindings.emb_status_string(status).decode("ascii"),
                            _bindings.emb_last_error().decode("utf-8", "replace"), argument)


def _torch_tensor_type():
    """``torch.Tensor`` if the caller imported torch, else None (torch is never imported here)."""
    torch = sys.modules.get("torch")
    return getattr(torch, "Tensor", None)


# ---- torch's argument parser and its layouts ---------------------------------------------------------
#
# torch's C++ ops (torch.embedding, torch.embedding_renorm_, torch.embedding_bag) check the Python
# types of their arguments before anything else runs, and raise TypeError with the argument's
# name and position; these reproduce that for the non-tensor arguments. Tensors that are not
# strided (sparse COO/CSR, ...) then have no kernel: the dispatcher raises NotImplementedError
# naming the op and the backend. Only the error paths call these, or the fast paths' guards
# catch the common values first.


def _type_name(value):
    """The type name torch's parser prints (CPython's tp_name): ``numpy.float64``, ``Tensor``, ``str``."""
    cls = type(value)
    if cls.__flags__ & (1 << 9) or cls.__module__ == "builtins":  # Py_TPFLAGS_HEAPTYPE: classes defined in Python
        return cls.__name__
    return "%s.%s" % (cls.__module__, cls.__qualname__)


def _argument_type_error(op, name, position, expected, value):
    return TypeError("%s(): argument '%s' (position %d) must be %s, not %s"
                     % (op, name, position, expected, _type_name(value)))


def _check_bool_argument(value, op, name, position):
    """torch's ``bool`` parameter: True or False only (not 0/1, numpy.bool_ or a tensor)."""
    if value is not True and value is not False:
        raise _argument_type_error(op, name, position, "bool", value)


def _int_argument(value, op, name, position):
    """torch's ``int`` parameter: an int (not a bool), a numpy integer or a 0-d integer tensor; as an int."""
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        return int(value)
    tensor_type = _torch_tensor_type()
    if (tensor_type is not None and isinstance(value, tensor_type) and value.dim() == 0
            and not (value.dtype.is_floating_point or value.dtype.is_complex or str(value.dtype) == "torch.bool")):
        return int(value)
    raise _argument_type_error(op, name, position, "int", value)


def _renorm_arguments(max_norm, norm_type, weight, input):
    """embedding_renorm_'s argument checks in torch's order (its parser, then the layouts):
    returns ``(max_norm, norm_type)`` as floats, or raises what torch raises."""
    max_norm = _float_argument(max_norm, "embedding_renorm_", "max_norm", 3)
    norm_type = _float_argument(norm_type, "embedding_renorm_", "norm_type", 4)
    unsupported = _non_strided(weight, input)
    if unsupported is not None:
        raise _layout_error("embedding_renorm_", unsupported)
    return max_norm, norm_type


def _float_argument(value, op, name, position):
    """torch's ``float`` parameter: a Python or numpy number (bools included), or a 0-d tensor that
    does not require grad; as a float. Strings, lists, None, complex and Decimal are refused."""
    if isinstance(value, (float, int, np.number, np.bool_)):
        return float(value.real) if isinstance(value, np.complexfloating) else float(value)
    tensor_type = _torch_tensor_type()
    if tensor_type is not None and isinstance(value, tensor_type) and value.dim() == 0 and not value.requires_grad:
        return float(value.real) if value.dtype.is_complex else float(value)
    raise _argument_type_error(op, name, position, "float", value)


def _non_strided(*values):
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


_LAYOUT_BACKENDS = {"torch.sparse_coo": "SparseCPU", "torch.sparse_csr": "SparseCsrCPU", "torch.sparse_csc": "SparseCsrCPU",
                    "torch.sparse_bsr": "SparseCsrCPU", "torch.sparse_bsc": "SparseCsrCPU", "torch._mkldnn": "MkldnnCPU"}


def _layout_error(op, tensor):
    """torch's dispatcher error for a tensor layout the op has no kernel for: NotImplementedError
    "Could not run 'aten::<op>' with arguments from the '<backend>' backend."."""
    layout = str(tensor.layout)
    return _error(EmbeddingNotSupportedError, EMB_ERROR_NOT_SUPPORTED,
                  "Could not run 'aten::%s' with arguments from the '%s' backend. (%s tensors have no %s kernel, "
                  "in torch or here)" % (op, _LAYOUT_BACKENDS.get(layout, layout), layout, op))


def _require_strided(tensor, name):
    """Where torch has no counterpart to copy (the numpy-level gradient functions): a plain refusal
    of a sparse tensor, rather than the failure to take its data pointer."""
    if tensor.layout is not sys.modules["torch"].strided:
        raise _error(EmbeddingNotSupportedError, EMB_ERROR_NOT_SUPPORTED,
                     "embedding_native takes strided (dense) tensors only; got %s of layout %s" % (name, tensor.layout))


def _reshape_error(tensor):
    """What ``tensor.reshape(-1)`` raises for a sparse tensor in torch (F.embedding_bag's 2-D input)."""
    layout = str(tensor.layout)
    detail = ("reshape is not implemented for sparse tensors" if layout == "torch.sparse_coo"
              else "Sparse CSR tensors do not have strides" if layout.startswith("torch.sparse_")
              else "reshape is not implemented for %s tensors" % layout)
    return _error(EmbeddingRuntimeError, EMB_ERROR_NOT_SUPPORTED, detail)


def normalize_padding_idx(padding_idx, num_embeddings):
    """torch's padding_idx check and normalisation, done by ``emb_padding_idx_normalize``::

        if padding_idx > 0: require padding_idx <  num_embeddings
        if padding_idx < 0: require padding_idx >= -num_embeddings; padding_idx += num_embeddings
        return padding_idx

    Raises PaddingIndexError (an AssertionError, as in torch) when out of range and TypeError
    when ``padding_idx`` is not an integer.
    """
    value = operator.index(padding_idx)
    normalized = c_int64()
    status = _bindings.emb_padding_idx_normalize(value, num_embeddings, byref(normalized))
    if status:
        raise _native_error(status, "padding_idx")
    return normalized.value


def _numpy_indices(indices, op="embedding", argument=1):
    """(contiguous int32/int64 array, emb_dtype) for a numpy index array or scalar; ``op`` and
    ``argument`` name the torch op and argument position in the dtype error, as torch does."""
    if not isinstance(indices, np.ndarray):
        indices = np.asarray(indices)
    code = _NUMPY_INDEX_DTYPES.get(indices.dtype)
    if code is None:
        native = indices.dtype.newbyteorder("=") if indices.dtype.byteorder not in ("=", "|") else None
        code = _NUMPY_INDEX_DTYPES.get(native)
        if code is None:
            name = indices.dtype.name
            raise _error(EmbeddingRuntimeError, EMB_ERROR_UNSUPPORTED_DTYPE,
                         _INDEX_DTYPE_MESSAGE % (argument, _TORCH_TYPE_NAMES.get(name, "numpy." + name), op))
        # Byte-swapped integers: the native side reads native-order values.
        indices = indices.astype(native)
    if not indices.flags.c_contiguous:
        indices = np.ascontiguousarray(indices)
    return indices, code


def _tensor_indices(indices, op="embedding", argument=1):
    """(contiguous int32/int64 CPU tensor, emb_dtype) for a torch index tensor (see _numpy_indices)."""
    dtype_name = str(indices.dtype)
    code = _TORCH_INDEX_DTYPES.get(dtype_name)
    if code is None:
        type_name = _TORCH_TYPE_NAMES.get(dtype_name[len("torch."):], dtype_name)
        raise _error(EmbeddingRuntimeError, EMB_ERROR_UNSUPPORTED_DTYPE, _INDEX_DTYPE_MESSAGE % (argument, type_name, op))
    if indices.device.type != "cpu":
        raise _error(EmbeddingNotSupportedError, EMB_ERROR_NOT_SUPPORTED,
                     "embedding_native runs on the CPU only; got indices on %s" % indices.device)
    try:
        if not indices.is_contiguous():
            indices = indices.contiguous()
    except RuntimeError:  # a sparse CSR tensor has no strides
        _require_strided(indices, "indices")
        raise
    return indices, code


def _check_out(out, shape, tensor_type):
    """Validates a caller's ``out=`` buffer; returns its address."""
    if tensor_type is not None and isinstance(out, tensor_type):
        problem = None
        if str(out.dtype) != "torch.float32":
            problem = "out must be float32, got %s" % out.dtype
        elif out.device.type != "cpu":
            problem = "out must be a CPU tensor, got one on %s" % out.device
        elif tuple(out.shape) != shape:
            problem = "out has shape %s, the result has shape %s" % (tuple(out.shape), shape)
        elif not out.is_contiguous():
            problem = "out must be contiguous"
        elif out.requires_grad:
            problem = "out must not require grad: writing it bypasses autograd"
        address = out.data_ptr()
    elif isinstance(out, np.ndarray):
        problem = None
        if out.dtype != _FLOAT32:
            problem = "out must be float32, got %s" % out.dtype
        elif out.shape != shape:
            problem = "out has shape %s, the result has shape %s" % (out.shape, shape)
        elif not out.flags.c_contiguous:
            problem = "out must be C-contiguous"
        elif not out.flags.writeable:
            problem = "out is read-only"
        address = out.ctypes.data
    else:
        raise TypeError("embedding(): argument 'out' must be a numpy.ndarray or torch.Tensor, not %s"
                        % type(out).__name__)
    if problem is not None:
        status = EMB_ERROR_BUFFER_TOO_SMALL if problem.startswith("out has shape") else EMB_ERROR_INVALID_ARGUMENT
        raise _error(EmbeddingRuntimeError, status, problem)
    return address


def embedding(input, weight, padding_idx=None, max_norm=None, norm_type=2.0,
              scale_grad_by_freq=False, sparse=False, *, out=None):
    """Looks up rows of ``weight``: ``torch.nn.functional.embedding(input, weight, ...)``.

    Args:
        input: int32/int64 indices of any shape: a numpy array (or numpy scalar) or a CPU
            torch tensor. Every value must lie in ``[0, weight.shape[0])``.
        weight: the 2-D float32 table ``(num_embeddings, embedding_dim)``: a numpy array or a
            CPU torch tensor.
        padding_idx: validated and normalised as torch does; it does not change the values
            (the padding row is returned as stored). An int, numpy integer or 0-d integer
            tensor, as torch's parser requires.
        max_norm: if not None, first rescales **in place** every distinct row of ``weight``
            that ``input`` references and whose ``norm_type``-norm exceeds ``max_norm``
            (:func:`embedding_renorm_`), as torch does; the result holds the rescaled rows.
            A number (Python, numpy or 0-d tensor; not a string).
        norm_type: the p of the p-norm for max_norm (default 2; inf, -inf, 0 and any real p).
        scale_grad_by_freq, sparse: accepted for torch's signature (True or False, as torch
            requires); they only concern gradients.
        out: optional C-contiguous, writable float32 buffer of shape ``input.shape + (D,)``
            (numpy array or torch tensor) to write the result into.

    Returns:
        ``out`` if given, else a new array of shape ``input.shape + (embedding_dim,)``: numpy
        for a numpy weight, a torch tensor for a torch weight. A sparse (COO) weight gives
        what torch gives: ``torch.embedding`` on it, a sparse tensor (no native kernel applies).

    Raises:
        EmbeddingIndexError (IndexError): an index is outside the table.
        PaddingIndexError (AssertionError): padding_idx outside ``[-V, V)``.
        EmbeddingRuntimeError (RuntimeError): weight not 2-D, index dtype not int32/int64,
            an empty table with non-empty input, an invalid ``out``.
        EmbeddingNotSupportedError (NotImplementedError): weight dtype other than float32,
            tensors not on the CPU, max_norm with a sparse tensor (torch's text).
        TypeError: input, weight or out is neither a numpy array nor a torch tensor; an
            argument of a type torch refuses (torch's text: "embedding(): argument 'sparse'
            (position 5) must be bool, not int").
        Sparse indices raise torch's own error (IndexError for 1-D, RuntimeError otherwise).
    """
    if padding_idx is None and max_norm is None and out is None and sparse is False and scale_grad_by_freq is False:
        if type(input) is np.ndarray and type(weight) is np.ndarray:
            result = _embedding_numpy_fast(input, weight)
            if result is not None:
                return result
        elif type(input).__name__ == "Tensor":
            result = _embedding_tensor_fast(input, weight)
            if result is not None:
                return result
    tensor_type = _torch_tensor_type()
    weight_is_tensor = tensor_type is not None and isinstance(weight, tensor_type)
    if weight_is_tensor:
        weight_shape = tuple(weight.shape)
    elif isinstance(weight, np.ndarray):
        weight_shape = weight.shape
    else:
        raise TypeError("embedding(): argument 'weight' must be a numpy.ndarray or torch.Tensor, not %s"
                        % type(weight).__name__)

    # The checks run in torch's order: padding_idx and max_norm in F.embedding's Python code,
    # then the argument types (torch's parser), the weight's rank and the index dtype in the ATen
    # op, then index_select's own checks.
    if padding_idx is not None and padding_idx != 0:
        if not weight_shape:
            raise IndexError("Dimension specified as 0 but tensor has no dimensions")
        _check_padding_range(padding_idx, weight_shape[0])
    if max_norm is not None:
        # embedding_renorm_'s parser and layouts first; then ours for torch.embedding, so that a
        # call that fails renormalises nothing (torch 1.13 renormalises, then raises).
        max_norm, norm_type = _renorm_arguments(max_norm, norm_type, weight, input)
    if padding_idx is not None and type(padding_idx) is not int:
        padding_idx = _int_argument(padding_idx, "embedding", "padding_idx", 3)
    if not ((scale_grad_by_freq is False or scale_grad_by_freq is True) and (sparse is False or sparse is True)):
        _check_bool_argument(scale_grad_by_freq, "embedding", "scale_grad_by_freq", 4)
        _check_bool_argument(sparse, "embedding", "sparse", 5)
    if max_norm is not None:
        # F.embedding renormalises before the gather (and before the gather's own checks), on
        # the contiguous input; embedding_renorm_ makes it contiguous the same way.
        embedding_renorm_(weight, input, max_norm, norm_type)
    if len(weight_shape) != 2:
        raise _error(EmbeddingRuntimeError, EMB_ERROR_INVALID_ARGUMENT, "'weight' must be 2-D")
    num_embeddings, embedding_dim = weight_shape

    try:
        if tensor_type is not None and isinstance(input, tensor_type):
            indices, index_dtype = _tensor_indices(input)
            index_shape = tuple(indices.shape)
            num_indices = indices.numel()
            indices_address = indices.data_ptr()
        elif isinstance(input, (np.ndarray, np.generic)):
            indices, index_dtype = _numpy_indices(input)
            index_shape = indices.shape
            num_indices = indices.size
            indices_address = indices.ctypes.data
        else:
            raise TypeError("embedding(): argument 'input' must be a numpy.ndarray or torch.Tensor, not %s"
                            % type(input).__name__)

        if num_embeddings == 0 and num_indices != 0:
            raise _error(EmbeddingRuntimeError, EMB_ERROR_INDEX_OUT_OF_RANGE,
                         "index_select(): self indexing axis dim should be positive")

        if weight_is_tensor:
            if str(weight.dtype) != "torch.float32":
                raise _error(EmbeddingNotSupportedError, EMB_ERROR_UNSUPPORTED_DTYPE,
                             "embedding_native supports weight dtype float32 only in this version (got %s)"
                             % weight.dtype)
            if weight.device.type != "cpu":
                raise _error(EmbeddingNotSupportedError, EMB_ERROR_NOT_SUPPORTED,
                             "embedding_native runs on the CPU only; got weight on %s" % weight.device)
            if not weight.is_contiguous():
                weight = weight.contiguous()  # documented copy of the table
            weight_address = weight.data_ptr()
        else:
            if weight.dtype != _FLOAT32:
                raise _error(EmbeddingNotSupportedError, EMB_ERROR_UNSUPPORTED_DTYPE,
                             "embedding_native supports weight dtype float32 only in this version (got %s)"
                             % weight.dtype)
            if not weight.flags.c_contiguous:
                weight = np.ascontiguousarray(weight)  # documented copy of the table
            weight_address = weight.ctypes.data
    except (RuntimeError, NotImplementedError):
        # A sparse (non-strided) weight or input fails in the checks above (no strides, no storage,
        # or a dtype message without torch's "sparse"): what torch does with it instead is
        # torch.embedding's own (its result for a sparse table, its error for sparse indices).
        if _non_strided(weight, input) is None:
            raise
        return _embedding_non_strided(input, weight, padding_idx, scale_grad_by_freq, sparse, out)

    out_shape = index_shape + (embedding_dim,)
    if out is not None:
        result = out
        out_address = _check_out(out, out_shape, tensor_type)
    elif weight_is_tensor:
        result = _new_float32(out_shape, True)
        out_address = result.data_ptr()
    else:
        result = _new_float32(out_shape, False)
        out_address = result.ctypes.data

    status = emb_embedding(weight_address, EMB_DTYPE_FLOAT32, num_embeddings, embedding_dim,
                           indices_address, index_dtype, num_indices,
                           out_address, num_indices * embedding_dim)
    if status:
        if status == EMB_ERROR_INDEX_OUT_OF_RANGE and embedding_dim == 0:
            raise _zero_width_index_error(indices, num_embeddings)
        raise _native_error(status)
    return result


def _check_padding_range(padding_idx, num_embeddings):
    """F.embedding's own padding_idx assertion, by comparisons as in torch (so its type is judged
    afterwards, by the argument checks)."""
    if padding_idx > 0:
        in_range = padding_idx < num_embeddings
    elif padding_idx < 0:
        in_range = padding_idx >= -num_embeddings
    else:
        return
    if not in_range:
        if isinstance(padding_idx, (int, np.integer)) and not isinstance(padding_idx, bool):
            normalize_padding_idx(padding_idx, num_embeddings)  # raises, with the library's detail
        raise _error(PaddingIndexError, EMB_ERROR_INDEX_OUT_OF_RANGE, PaddingIndexError.TORCH_MESSAGE)


def _embedding_non_strided(input, weight, padding_idx, scale_grad_by_freq, sparse, out):
    """A sparse (or other non-strided) weight or input: what torch.embedding does with it, which is
    torch's index_select on those layouts (no native kernel applies). A sparse weight gives torch's
    sparse result; a sparse input, torch's error (IndexError for 1-D, RuntimeError otherwise)."""
    torch = sys.modules["torch"]
    tensor_type = torch.Tensor
    if isinstance(weight, np.ndarray):
        weight = torch.from_numpy(weight)
    if not isinstance(input, tensor_type):
        if not isinstance(input, (np.ndarray, np.generic)):
            raise TypeError("embedding(): argument 'input' must be a numpy.ndarray or torch.Tensor, not %s"
                            % type(input).__name__)
        input = torch.from_numpy(_numpy_indices(input)[0])
    if padding_idx is None:
        padding_idx = -1
    elif padding_idx < 0:
        padding_idx += weight.shape[0]
    result = torch.embedding(weight.detach(), input, padding_idx, scale_grad_by_freq, sparse)
    if out is not None:
        raise _error(EmbeddingRuntimeError, EMB_ERROR_INVALID_ARGUMENT,
                     "out= cannot hold the %s result of a %s weight" % (result.layout, weight.layout))
    return result


def _embedding_numpy_fast(indices, weight):
    """The common call — C-contiguous int32/int64 indices into a non-empty C-contiguous float32
    table, no options — with as little Python as possible (a tiny lookup is dominated by it).
    Returns None when any condition does not hold, so the general path handles (and reports) it;
    a native failure is raised exactly as the general path would raise it."""
    index_dtype = _NUMPY_INDEX_DTYPES.get(indices.dtype)
    if (index_dtype is None or weight.dtype is not _FLOAT32 or weight.ndim != 2
            or not (indices.flags.c_contiguous and weight.flags.c_contiguous)):
        return None
    num_embeddings, embedding_dim = weight.shape
    if num_embeddings == 0 or embedding_dim == 0:
        return None
    count = indices.size
    result = (np.empty(indices.shape + (embedding_dim,), dtype=_FLOAT32) if count * embedding_dim * 4 < FRESH_MAPPING_BYTES
              else _new_float32(indices.shape + (embedding_dim,), False))
    status = emb_embedding(weight.ctypes.data, EMB_DTYPE_FLOAT32, num_embeddings, embedding_dim,
                           indices.ctypes.data, index_dtype, count, result.ctypes.data, count * embedding_dim)
    if status:
        raise _native_error(status)
    return result


def _embedding_tensor_fast(indices, weight):
    """:func:`_embedding_numpy_fast` for CPU torch tensors (``Tensor.data_ptr()`` costs a tenth of
    ``ndarray.ctypes.data``); None when any condition does not hold."""
    torch = sys.modules["torch"]
    index_dtype = _TORCH_FAST_INDEX.get(indices.dtype)
    if (index_dtype is None or not isinstance(weight, torch.Tensor) or weight.dtype is not torch.float32
            or weight.dim() != 2 or not (indices.is_cpu and weight.is_cpu)):
        return None
    try:
        if not (indices.is_contiguous() and weight.is_contiguous()):
            return None
        weight_address = weight.data_ptr()
        indices_address = indices.data_ptr()
    except RuntimeError:
        return None  # a sparse tensor: no strides or no storage (the general path hands it to torch)
    num_embeddings, embedding_dim = weight.shape
    if num_embeddings == 0 or embedding_dim == 0:
        return None
    count = indices.numel()
    shape = tuple(indices.shape) + (embedding_dim,)
    result = weight.new_empty(shape) if count * embedding_dim * 4 < FRESH_MAPPING_BYTES else _new_float32(shape, True)
    status = emb_embedding(weight_address, EMB_DTYPE_FLOAT32, num_embeddings, embedding_dim,
                           indices_address, index_dtype, count, result.data_ptr(), count * embedding_dim)
    if status:
        raise _native_error(status)
    return result


class _TorchIndexDtypes(dict):
    """torch.int32 / torch.int64 → emb_dtype, filled on first use (torch is never imported here)."""

    def get(self, dtype, default=None):
        if not self:
            torch = sys.modules["torch"]
            self[torch.int32], self[torch.int64] = EMB_DTYPE_INT32, EMB_DTYPE_INT64
        return dict.get(self, dtype, default)


_TORCH_FAST_INDEX = _TorchIndexDtypes()


def _zero_width_index_error(indices, num_embeddings):
    """torch 1.13 reports a bad index into a table with no columns from another code path:
    a RuntimeError naming the first bad value. Reproduced here (only on the failure path)."""
    values = np.asarray(indices).reshape(-1)
    bad = values[(values < 0) | (values >= num_embeddings)][0]
    return _error(EmbeddingRuntimeError, EMB_ERROR_INDEX_OUT_OF_RANGE,
                  "INDICES element is out of DATA bounds, id=%d axis_dim=%d" % (bad, num_embeddings))


def build_info():
    """What was loaded: the library's ``emb_build_info()`` JSON as a dict, plus

    * ``library_path``: the file opened,
    * ``tier``: the tier name of the loaded build (``x86-64-v2`` / ``-v3`` / ``-v4``),
    * ``cpu_tier``: the best tier this CPU and OS run (CPUID + XGETBV, asked of the baseline
      build), or None when ``EMBEDDING_NATIVE_LIBRARY`` chose the library,
    * ``cpuinfo_tier``: the tier /proc/cpuinfo's flags name, a diagnostic only (some kernels
      omit flags the CPU has, so it may be lower than ``cpu_tier``; it never decides),
    * ``selected_by``: ``"cpu"``, ``"EMBEDDING_NATIVE_TIER"`` or ``"EMBEDDING_NATIVE_LIBRARY"``.
    """
    loaded = _bindings.LIBRARY
    info = json.loads(_bindings.emb_build_info().decode("utf-8"))
    info["library_path"] = loaded.path
    info["tier"] = loaded.tier_name
    info["cpu_tier"] = None if loaded.cpu_tier is None else TIER_NAMES.get(loaded.cpu_tier, str(loaded.cpu_tier))
    info["cpuinfo_tier"] = TIER_NAMES.get(loaded.cpuinfo_tier)
    info["selected_by"] = loaded.selected_by
    return info


def set_num_threads(num_threads):
    """Sets how many threads one library call may use, process-wide (``emb_set_num_threads``).

    1, the default, runs every call on the calling thread. With ``n > 1`` the library starts
    ``n - 1`` persistent worker threads (they block when idle) and splits large calls over them
    and the caller; results are bit-identical for every ``n``, and small calls stay on the calling
    thread. Like ``torch.set_num_threads``; ``n`` must be an integer in [1, 1024], else
    ``ValueError``.
    """
    n = operator.index(num_threads)
    if not 1 <= n <= 1024:
        raise ValueError(f"num_threads must be in [1, 1024], got {n}")
    status = _bindings.emb_set_num_threads(n)
    if status:
        raise _native_error(status)


def get_num_threads():
    """The thread count set by :func:`set_num_threads` (1 until it is called)."""
    return int(_bindings.emb_get_num_threads())


# ---- Training: gradients and renormalisation -----------------------------------------------------
#
# Every buffer below is a numpy array or a CPU torch tensor and is passed to the library by
# pointer. Read-only float32 inputs that are not C-contiguous are copied once; buffers written in
# place (weight, out=) are used as they are and must be C-contiguous (embedding_renorm_ alone
# takes any layout, like torch, by renormalising a contiguous copy and writing it back).
# Results are of the kind of the array they derive from (grad_output, values): a numpy array for
# numpy, a tensor for a tensor.


class _Buffer:
    """A float32 or int64 array as the library sees it: the object, its address and shape."""

    __slots__ = ("array", "address", "shape", "is_tensor")

    def __init__(self, array, address, shape, is_tensor):
        self.array = array
        self.address = address
        self.shape = shape
        self.is_tensor = is_tensor

    def empty(self, shape, dtype="float32"):
        """A new uninitialised array of this buffer's kind (numpy or torch)."""
        if self.is_tensor:
            torch = sys.modules["torch"]
            return torch.empty(shape, dtype=getattr(torch, dtype))
        return np.empty(shape, dtype=dtype)

    def zeros(self, shape):
        """A new float32 array of zeros of this buffer's kind (large ones from ``_results``' pool)."""
        return _new_float32(shape, self.is_tensor, zeroed=True)

    @staticmethod
    def address_of(array):
        return array.data_ptr() if not isinstance(array, np.ndarray) else array.ctypes.data


def _float_buffer(x, name, tensor_type, writable=False):
    """A float32 numpy array or CPU tensor as a _Buffer; a read-only one is made C-contiguous
    (copy) if needed, a writable one must already be, and must be writable."""
    if tensor_type is not None and isinstance(x, tensor_type):
        if str(x.dtype) != "torch.float32":
            raise _error(EmbeddingNotSupportedError, EMB_ERROR_UNSUPPORTED_DTYPE,
                         "embedding_native supports %s dtype float32 only in this version (got %s)" % (name, x.dtype))
        if x.device.type != "cpu":
            raise _error(EmbeddingNotSupportedError, EMB_ERROR_NOT_SUPPORTED,
                         "embedding_native runs on the CPU only; got %s on %s" % (name, x.device))
        try:
            if not x.is_contiguous():
                if writable:
                    raise _error(EmbeddingRuntimeError, EMB_ERROR_INVALID_ARGUMENT, "%s must be contiguous" % name)
                x = x.contiguous()
            address = x.data_ptr()
        except RuntimeError:  # a sparse tensor: no strides or no storage
            _require_strided(x, name)
            raise
        return _Buffer(x, address, tuple(x.shape), True)
    if isinstance(x, np.ndarray):
        if x.dtype != _FLOAT32:
            raise _error(EmbeddingNotSupportedError, EMB_ERROR_UNSUPPORTED_DTYPE,
                         "embedding_native supports %s dtype float32 only in this version (got %s)" % (name, x.dtype))
        if writable:
            if not x.flags.c_contiguous:
                raise _error(EmbeddingRuntimeError, EMB_ERROR_INVALID_ARGUMENT, "%s must be C-contiguous" % name)
            if not x.flags.writeable:
                raise _error(EmbeddingRuntimeError, EMB_ERROR_INVALID_ARGUMENT, "%s is read-only" % name)
        elif not x.flags.c_contiguous:
            x = np.ascontiguousarray(x)
        return _Buffer(x, x.ctypes.data, x.shape, False)
    raise TypeError("argument '%s' must be a numpy.ndarray or torch.Tensor, not %s" % (name, type(x).__name__))


def _index_buffer(x, tensor_type, op="embedding", argument=1):
    """int32/int64 indices (numpy, numpy scalar or CPU tensor) as (_Buffer, emb_dtype), contiguous."""
    if tensor_type is not None and isinstance(x, tensor_type):
        x, code = _tensor_indices(x, op, argument)
        try:
            address = x.data_ptr()
        except RuntimeError:  # a sparse COO tensor has no storage
            _require_strided(x, "indices")
            raise
        return _Buffer(x, address, tuple(x.shape), True), code
    if isinstance(x, (np.ndarray, np.generic)):
        x, code = _numpy_indices(x, op, argument)
        return _Buffer(x, x.ctypes.data, x.shape, False), code
    raise TypeError("argument 'indices' must be a numpy.ndarray or torch.Tensor, not %s" % type(x).__name__)


def _rows_buffer(rows, tensor_type):
    """Row numbers of a sparse gradient as a contiguous int64 _Buffer (other integer types are
    converted, a copy of the rows only)."""
    if tensor_type is not None and isinstance(rows, tensor_type):
        if rows.dtype.is_floating_point or rows.dtype.is_complex or str(rows.dtype) == "torch.bool":
            raise _error(EmbeddingRuntimeError, EMB_ERROR_UNSUPPORTED_DTYPE,
                         "rows must be an integer tensor, got %s" % rows.dtype)
        if rows.device.type != "cpu":
            raise _error(EmbeddingNotSupportedError, EMB_ERROR_NOT_SUPPORTED,
                         "embedding_native runs on the CPU only; got rows on %s" % rows.device)
        rows = rows.to(sys.modules["torch"].int64)
        try:
            rows = rows.contiguous()
            address = rows.data_ptr()
        except RuntimeError:  # a sparse tensor: no strides or no storage
            _require_strided(rows, "rows")
            raise
        return _Buffer(rows, address, tuple(rows.shape), True)
    rows = np.asarray(rows)
    if rows.dtype.kind not in "iu":
        raise _error(EmbeddingRuntimeError, EMB_ERROR_UNSUPPORTED_DTYPE, "rows must be integers, got %s" % rows.dtype)
    rows = np.ascontiguousarray(rows, dtype=np.int64)
    return _Buffer(rows, rows.ctypes.data, rows.shape, False)


def _padding_or_none(padding_idx, num_embeddings):
    """The normalised padding row, or EMB_NO_PADDING for None."""
    return EMB_NO_PADDING if padding_idx is None else normalize_padding_idx(padding_idx, num_embeddings)


def _grad_and_indices(grad_output, indices, num_embeddings, tensor_type):
    """Validates a (grad_output, indices) pair; returns (grad _Buffer, index _Buffer, index emb_dtype, D)."""
    num_embeddings = operator.index(num_embeddings)
    if num_embeddings < 0:
        raise _error(EmbeddingRuntimeError, EMB_ERROR_INVALID_ARGUMENT,
                     "num_embeddings must be non-negative, got %d" % num_embeddings)
    index, index_dtype = _index_buffer(indices, tensor_type)
    grad = _float_buffer(grad_output, "grad_output", tensor_type)
    if len(grad.shape) != len(index.shape) + 1 or tuple(grad.shape[:-1]) != tuple(index.shape):
        raise _error(EmbeddingRuntimeError, EMB_ERROR_INVALID_ARGUMENT,
                     "grad_output has shape %s; expected indices.shape + (embedding_dim,) = %s + (D,)"
                     % (tuple(grad.shape), tuple(index.shape)))
    return grad, index, index_dtype, grad.shape[-1]


def _gradient_out(grad, shape, out, accumulate, tensor_type, op):
    """Where a dense gradient goes: ``out`` (overwritten, or added into with ``accumulate``), or new
    zeros of grad's kind accumulated into, which gives the same bits as overwriting (+0.0 + g)
    without a second clear. Returns (result, its address, whether to accumulate)."""
    if out is not None:
        return out, _check_out(out, shape, tensor_type), accumulate
    if accumulate:
        raise ValueError("%s(): accumulate=True needs out=" % op)
    result = grad.zeros(shape)
    return result, _Buffer.address_of(result), True


def embedding_backward(grad_output, indices, num_embeddings, padding_idx=None, scale_grad_by_freq=False, *,
                       out=None, accumulate=False):
    """The dense gradient of :func:`embedding` with respect to ``weight`` (torch's
    ``embedding_dense_backward``, bit for bit)::

        D = grad_output.shape[-1];  c[k] = number of positions with indices == k
        grad_weight = zeros(V, D)                        # unless accumulate: add into out
        for i in flattened position order:
            k = indices[i];  if k == padding_idx: continue
            if scale_grad_by_freq: grad_weight[k] = fma(grad_output[i], fl(1/c[k]), grad_weight[k])
            else:                  grad_weight[k] += grad_output[i]

    Args:
        grad_output: float32 ``indices.shape + (D,)``, numpy or CPU tensor (any strides).
        indices: the int32/int64 indices of the forward call (any shape).
        num_embeddings: V, the number of rows of the table.
        padding_idx: None, or a row (negative counts from the end, as in torch) whose
            positions contribute nothing.
        scale_grad_by_freq: divide each contribution by its index's count in ``indices``.
        out: optional C-contiguous, writable float32 ``(V, D)`` buffer to write into.
        accumulate: add into ``out`` (required then) instead of overwriting it.

    Returns:
        ``out``, or a new float32 ``(V, D)`` array of grad_output's kind.

    Raises:
        EmbeddingIndexError (IndexError): an index outside ``[0, V)``; nothing is written.
        PaddingIndexError (AssertionError), EmbeddingRuntimeError (shapes, dtypes),
        EmbeddingNotSupportedError (non-float32 grad_output, non-CPU tensors).
    """
    tensor_type = _torch_tensor_type()
    grad, index, index_dtype, dim = _grad_and_indices(grad_output, indices, num_embeddings, tensor_type)
    padding = _padding_or_none(padding_idx, num_embeddings)
    shape = (num_embeddings, dim)
    result, out_address, accumulate = _gradient_out(grad, shape, out, accumulate, tensor_type, "embedding_backward")
    flags = (EMB_SCALE_GRAD_BY_FREQ if scale_grad_by_freq else 0) | (EMB_ACCUMULATE if accumulate else 0)
    num_indices = int(np.prod(index.shape, dtype=np.int64))
    status = emb_embedding_backward(grad.address, EMB_DTYPE_FLOAT32, num_indices, dim,
                                    index.address, index_dtype, num_embeddings, padding,
                                    flags, out_address, num_embeddings * dim)
    if status:
        raise _native_error(status)
    return result


def embedding_sparse_backward(grad_output, indices, num_embeddings, padding_idx=None, scale_grad_by_freq=False):
    """The sparse gradient of :func:`embedding` in torch's (uncoalesced) layout::

        rows, values = [], []
        for i in flattened position order: if indices[i] != padding_idx:
            rows.append(indices[i]);  values.append(grad_output[i] (* fl(1/c[k]) if scale_grad_by_freq))

    torch itself refuses ``scale_grad_by_freq`` with sparse gradients; it is allowed here.
    ``torch.sparse_coo_tensor(rows[None], values, (V, D))`` is torch's gradient (torch returns
    shapes ``(1, 0)``/``(0, D)`` when no entries remain, or when D == 0;
    ``embedding_native.torch`` does that).

    Returns:
        ``(rows, values)``: int64 ``(nnz,)`` and float32 ``(nnz, D)``, of grad_output's kind.
    """
    tensor_type = _torch_tensor_type()
    grad, index, index_dtype, dim = _grad_and_indices(grad_output, indices, num_embeddings, tensor_type)
    padding = _padding_or_none(padding_idx, num_embeddings)
    num_indices = int(np.prod(index.shape, dtype=np.int64))
    rows = grad.empty((num_indices,), "int64")
    values = _new_float32((num_indices, dim), grad.is_tensor)
    nnz = c_int64()
    status = emb_embedding_backward_sparse(grad.address, EMB_DTYPE_FLOAT32, num_indices, dim,
                                           index.address, index_dtype, num_embeddings, padding,
                                           EMB_SCALE_GRAD_BY_FREQ if scale_grad_by_freq else 0,
                                           _Buffer.address_of(rows), _Buffer.address_of(values), num_indices,
                                           byref(nnz))
    if status:
        raise _native_error(status)
    n = nnz.value
    return (rows, values) if n == num_indices else (rows[:n], values[:n])


def sparse_coalesce(rows, values, num_embeddings):
    """Sums the entries of a sparse gradient per row: ``torch.sparse_coo_tensor(...).coalesce()``::

        unique_rows = sorted(set(rows))
        summed[j] = +0.0 + sum of values[i] over i with rows[i] == unique_rows[j], in entry order

    Args:
        rows: integer ``(nnz,)`` row numbers in ``[0, num_embeddings)`` (converted to int64).
        values: float32 ``(nnz, D)``.

    Returns:
        ``(unique_rows, summed_values)``: int64 ``(n,)`` ascending and float32 ``(n, D)``, of
        values' kind. These are what the :mod:`embedding_native.optim` steps take.
    """
    tensor_type = _torch_tensor_type()
    row = _rows_buffer(rows, tensor_type)
    value = _float_buffer(values, "values", tensor_type)
    num_embeddings = operator.index(num_embeddings)
    if len(row.shape) != 1 or len(value.shape) != 2 or value.shape[0] != row.shape[0]:
        raise _error(EmbeddingRuntimeError, EMB_ERROR_INVALID_ARGUMENT,
                     "rows must be (nnz,) and values (nnz, D); got %s and %s" % (tuple(row.shape), tuple(value.shape)))
    nnz, dim = value.shape
    out_rows = value.empty((nnz,), "int64")
    out_values = _new_float32((nnz, dim), value.is_tensor)
    count = c_int64()
    status = emb_sparse_coalesce(row.address, value.address, EMB_DTYPE_FLOAT32, nnz, dim, num_embeddings,
                                 _Buffer.address_of(out_rows), _Buffer.address_of(out_values), nnz, byref(count))
    if status:
        raise _native_error(status)
    n = count.value
    return (out_rows, out_values) if n == nnz else (out_rows[:n], out_values[:n])


def _bump_version(tensor):
    """Marks ``tensor`` as modified in place for autograd (its version counter), as torch's own
    in-place renorm does, without touching its data: an in-place op on an empty view."""
    torch = sys.modules["torch"]
    with torch.no_grad():
        tensor.detach().view(-1)[:0].mul_(1)


def embedding_renorm_(weight, indices, max_norm, norm_type=2.0):
    """``torch.embedding_renorm_``: rescales referenced rows of ``weight`` in place::

        for each distinct k in indices, ascending:
            n = ||weight[k]||_p                  (p = norm_type; inf, -inf, 0, any real p)
            if n > max_norm: weight[k] *= fl32(max_norm / (n + 1e-7))

    The norm is computed in double; torch 1.13 computes ``row.norm(p)`` in float32 and then
    scales the same way. So a rescaled element differs from torch's only through torch's norm
    error e of that row: ``|ours - torch| <= (e + 2**-22) * |torch|``. Measured for D <= 768
    (bench/results/renorm-ulp.md), worst ulp and share of rescaled elements differing: p = 2:
    4 ulp, 36%; p = 3: 10, 74%; p = 1.5: 19, 85%; p = 1: 29, 87%; p = 0.5: 51, 93%; p = +-inf
    and 0 bit-identical (docs/exactness.md). Unlike torch 1.13, every index is checked before any
    row changes: a bad index raises IndexError and leaves ``weight`` untouched. ``indices`` is
    never modified.

    Args:
        weight: 2-D float32 numpy array or CPU tensor, written in place (a non-contiguous one
            through a contiguous copy that is written back). A tensor's autograd version
            counter is bumped, as torch's in-place op does (once, whenever indices is not empty).
        indices: int32/int64 indices of any shape.
        max_norm, norm_type: numbers (no range validation, as in torch: max_norm <= 0 is
            allowed; a string is torch's TypeError).

    Returns:
        ``weight``.
    """
    tensor_type = _torch_tensor_type()
    weight_is_tensor = tensor_type is not None and isinstance(weight, tensor_type)
    if not weight_is_tensor and not isinstance(weight, np.ndarray):
        raise TypeError("embedding_renorm_(): argument 'weight' must be a numpy.ndarray or torch.Tensor, not %s"
                        % type(weight).__name__)
    if type(max_norm) is not float:
        max_norm = _float_argument(max_norm, "embedding_renorm_", "max_norm", 3)
    if type(norm_type) is not float:
        norm_type = _float_argument(norm_type, "embedding_renorm_", "norm_type", 4)
    try:
        if weight.ndim != 2:
            raise _error(EmbeddingRuntimeError, EMB_ERROR_INVALID_ARGUMENT,
                         "Expected 2-dimensional tensor, but got %d-dimensional tensor for argument #1 'self' "
                         "(while checking arguments for embedding_renorm_)" % weight.ndim)
        index, index_dtype = _index_buffer(indices, tensor_type, "embedding_renorm_", 2)
        num_indices = int(np.prod(index.shape, dtype=np.int64))
        contiguous = weight.is_contiguous() if weight_is_tensor else weight.flags.c_contiguous
        if weight_is_tensor and not contiguous:
            target = _float_buffer(weight.detach().contiguous(), "weight", tensor_type, writable=True)
        elif weight_is_tensor:
            target = _float_buffer(weight.detach(), "weight", tensor_type, writable=True)
        else:
            target = _float_buffer(weight if contiguous else np.ascontiguousarray(weight), "weight", tensor_type,
                                   writable=True)
    except (RuntimeError, NotImplementedError):
        # torch has no sparse kernel: its NotImplementedError comes before the kernel's checks
        # (here, on the error path only: a sparse tensor fails in them).
        unsupported = _non_strided(weight, indices)
        if unsupported is None:
            raise
        raise _layout_error("embedding_renorm_", unsupported) from None
    num_embeddings, dim = target.shape
    status = emb_embedding_renorm(target.address, EMB_DTYPE_FLOAT32, num_embeddings, dim,
                                  index.address, index_dtype, num_indices, float(max_norm), float(norm_type))
    if status:
        raise _native_error(status)
    if not contiguous:
        if weight_is_tensor:
            with sys.modules["torch"].no_grad():
                weight.detach().copy_(target.array)
        else:
            np.copyto(weight, target.array)
    elif weight_is_tensor and num_indices:
        _bump_version(weight)
    return weight


# ---- EmbeddingBag ------------------------------------------------------------------------------------
#
# embedding_bag() runs torch 1.13's checks in torch's order (spec §3.7), with torch's exception
# types and texts, then the stricter offset rules of the native layout (emb_embedding_bag_count),
# then max_norm, then the kernel:
#
#   1. deprecated argument order (int64 weight, floating input): swap, warn
#   2. psw shape == input shape                                   ValueError
#   3. input 1-D with 1-D offsets, or 2-D without offsets         ValueError
#      (2-D (B, 0): RuntimeError "step must be nonzero", from torch's arange)
#   4. mode in sum/mean/max; max: no scale_grad_by_freq/sparse    ValueError
#   5. max_norm: the renorm's own index errors (torch renormalises here, in place)
#   6. psw with mode != sum                                       NotImplementedError
#   7. padding_idx range, index/offset dtypes (promoted together), weight dtype, psw dtype,
#      offsets[0] == 0, offsets[-1] <= L, include_last_offset count   RuntimeError
#   8. ours: offsets non-decreasing; include_last_offset: offsets[-1] == L  RuntimeError
#      ours: weight float32 (float16/float64 are torch-valid: EmbeddingNotSupportedError)
#   9. max_norm: every index in range (RuntimeError), then the rows renormalised in place
#  10. the kernel; a bad index is a RuntimeError (as torch's bag op), nothing written
#
# Unlike torch, a call that fails never renormalises anything (step 9 runs after every check).


_BAG_MODES = {"sum": EMB_BAG_SUM, "mean": EMB_BAG_MEAN, "max": EMB_BAG_MAX}
_FLOAT_WEIGHT_DTYPES = ("float16", "float32", "float64")

_WEIGHT_DTYPE_MESSAGE = ("Expected tensor for argument #1 'weight' to have one of the following scalar types: "
                         "Half, Float, Double; but got %s instead (while checking arguments for embedding_bag)")
_PSW_DTYPE_MESSAGE = ("Expected tensor for argument #1 'weight' to have the same type as tensor for argument #1 "
                      "'per_sample_weights'; but type %s does not equal %s (while checking arguments for embedding_bag)")
_OFFSETS0_MESSAGE = ("offsets[0] has to be 0, i.e., the first sequence in the mini-batch has to start from "
                     "position 0. However, got %d\n[ %s{} ]")
_OFFSETS_LAST_MESSAGE = "offsets[-1] can not be greater than input's length %d but got offsets[-1] of %d"


def _dtype_name(x):
    """numpy-style dtype name of a numpy array or torch tensor ("int64", "float32", "bfloat16", ...)."""
    name = str(x.dtype)
    return name[len("torch."):] if name.startswith("torch.") else np.dtype(x.dtype).name


def _torch_type_name(name):
    return _TORCH_TYPE_NAMES.get(name, name)


def _shape_text(shape):
    """A shape as torch prints it: ``torch.Size([2, 3])``."""
    return "torch.Size(%s)" % list(shape)


def _as_array(x, tensor_type, what):
    """A numpy array or tensor as it is; other sequences through numpy (like torch.as_tensor)."""
    if (tensor_type is not None and isinstance(x, tensor_type)) or isinstance(x, np.ndarray):
        return x
    if isinstance(x, np.generic):
        return np.asarray(x)
    raise TypeError("embedding_bag(): argument '%s' must be a numpy.ndarray or torch.Tensor, not %s"
                    % (what, type(x).__name__))


def _is_tensor(x, tensor_type):
    return tensor_type is not None and isinstance(x, tensor_type)


def _flat_contiguous(x, tensor_type, dtype_name=None):
    """``x`` flattened, C-contiguous and (optionally) converted, as a _Buffer; no copy if it already is."""
    if _is_tensor(x, tensor_type):
        torch = sys.modules["torch"]
        if x.device.type != "cpu":
            raise _error(EmbeddingNotSupportedError, EMB_ERROR_NOT_SUPPORTED,
                         "embedding_native runs on the CPU only; got a tensor on %s" % x.device)
        x = x.detach()
        if dtype_name is not None and _dtype_name(x) != dtype_name:
            x = x.to(getattr(torch, dtype_name))
        x = x.reshape(-1)
        if not x.is_contiguous():
            x = x.contiguous()
        return _Buffer(x, x.data_ptr(), tuple(x.shape), True)
    if dtype_name is not None and x.dtype != np.dtype(dtype_name):
        x = x.astype(dtype_name)
    elif x.dtype.byteorder not in ("=", "|"):
        x = x.astype(x.dtype.newbyteorder("="))
    x = np.ascontiguousarray(x).reshape(-1)
    return _Buffer(x, x.ctypes.data, x.shape, False)


def _result_dtype_name(a, b, tensor_type):
    """The dtype torch promotes indices and offsets to (torch.result_type / numpy's for numpy)."""
    if b is None:
        return _dtype_name(a)
    if _is_tensor(a, tensor_type) or _is_tensor(b, tensor_type):
        torch = sys.modules["torch"]
        ta = a if _is_tensor(a, tensor_type) else torch.from_numpy(np.ascontiguousarray(a))
        tb = b if _is_tensor(b, tensor_type) else torch.from_numpy(np.ascontiguousarray(b))
        return str(torch.result_type(ta, tb))[len("torch."):]
    kinds = (a.dtype.kind, b.dtype.kind)
    if kinds[0] in "fc" and kinds[1] not in "fc":   # torch: integer with floating -> that floating type
        return a.dtype.name
    if kinds[1] in "fc" and kinds[0] not in "fc":
        return b.dtype.name
    return np.result_type(a.dtype, b.dtype).name


def _bag_padding(padding_idx, num_embeddings):
    """torch's C++ padding_idx check for embedding_bag (negatives wrap); EMB_NO_PADDING for None."""
    if padding_idx is None:
        return EMB_NO_PADDING
    value = _int_argument(padding_idx, "embedding_bag", "padding_idx", 9)
    if not -num_embeddings <= value < num_embeddings:
        raise _error(EmbeddingRuntimeError, EMB_ERROR_INDEX_OUT_OF_RANGE,
                     "padding_idx must be within the number of embeddings, -%d through %d, but got %d"
                     % (num_embeddings, num_embeddings - 1, value))
    return value + num_embeddings if value < 0 else value


class _BagLayout:
    """A validated ``emb_bags`` and the buffers its pointers refer to (kept alive here).

    Attributes: bags (the emb_bags Structure), num_bags, num_indices, input_shape (of the index
    array as given), indices (the flat index _Buffer), is_tensor (whether the input was a tensor).
    """

    __slots__ = ("bags", "num_bags", "num_indices", "input_shape", "indices", "offsets", "psw", "is_tensor")


def _build_layout(index, index_code, offset, offset_code, bag_size, include_last_offset, psw, padding, input_shape,
                  is_tensor):
    """Fills an emb_bags and asks the library how many bags it describes (validating the offsets
    with our rules: start at 0, non-decreasing, <= L; include_last_offset: last == L)."""
    layout = _BagLayout()
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
    if status:
        raise _native_error(status)
    layout.bags = bags
    layout.num_bags = count.value
    layout.num_indices = index.shape[0]
    layout.input_shape = tuple(input_shape)
    layout.indices = index
    layout.offsets = offset
    layout.psw = psw
    layout.is_tensor = is_tensor
    return layout


def _index_code(name):
    return EMB_DTYPE_INT32 if name == "int32" else EMB_DTYPE_INT64


def _bag_indices(input, offsets, tensor_type, op="embedding_bag"):
    """Step 7's index/offset dtype check (promoted together, as torch does) and their flat
    contiguous buffers. Returns (index _Buffer, code, offset _Buffer or None, code, promoted name)."""
    promoted = _result_dtype_name(input, offsets, tensor_type)
    if promoted not in ("int32", "int64"):
        raise _error(EmbeddingRuntimeError, EMB_ERROR_UNSUPPORTED_DTYPE,
                     _INDEX_DTYPE_MESSAGE % (1, _torch_type_name(promoted), op))
    index_name = _dtype_name(input)
    index = _flat_contiguous(input, tensor_type, None if index_name in ("int32", "int64") else promoted)
    index_code = _index_code(_dtype_name(index.array))
    offset = offset_code = None
    if offsets is not None:
        offset_name = _dtype_name(offsets)
        offset = _flat_contiguous(offsets, tensor_type, None if offset_name in ("int32", "int64") else promoted)
        offset_code = _index_code(_dtype_name(offset.array))
    return index, index_code, offset, offset_code, promoted


def _check_offsets_like_torch(offset, num_indices, include_last_offset, promoted):
    """torch's own offset checks (offsets[0], offsets[-1], include_last_offset count), its texts."""
    if offset is None:
        return
    n = offset.shape[0]
    if n:
        first = int(offset.array[0])
        if first != 0:
            raise _error(EmbeddingRuntimeError, EMB_ERROR_INVALID_ARGUMENT,
                         _OFFSETS0_MESSAGE % (first, _torch_type_name(promoted)))
        last = int(offset.array[n - 1])
        if last > num_indices:
            raise _error(EmbeddingRuntimeError, EMB_ERROR_INVALID_ARGUMENT, _OFFSETS_LAST_MESSAGE % (num_indices, last))
    elif include_last_offset:
        raise _error(EmbeddingRuntimeError, EMB_ERROR_INVALID_ARGUMENT,
                     "include_last_offset: number of offset should be at least 1")


def _bag_layout_error(weight, tensor):
    """torch's NotImplementedError for a sparse ``tensor`` (default: the weight) in embedding_bag:
    no '_embedding_bag' kernel (the op when the table needs a gradient), or '_forward_only' one."""
    grad = getattr(weight, "requires_grad", False)
    return _layout_error("_embedding_bag" if grad else "_embedding_bag_forward_only",
                         weight if tensor is None else tensor)


def _bag_index_error(layout, num_embeddings, status):
    """A bad index inside a bag: torch's bag op raises RuntimeError (not embedding's IndexError).
    The text starts like torch's slow-path message and adds the library's detail."""
    detail = _bindings.emb_last_error().decode("utf-8", "replace")
    values = np.asarray(layout.indices.array.numpy() if layout.is_tensor else layout.indices.array)
    bad = values[(values < 0) | (values >= num_embeddings)]
    if bad.size:
        detail = "embedding_bag: Expected idx >= 0 && idx < num_embeddings but found idx to be %d (%s)" % (bad[0], detail)
    return EmbeddingRuntimeError(status, _bindings.emb_status_string(status).decode("ascii"), detail)


class _BagCall:
    """A fully validated embedding_bag call (steps 1–8 above); ``run()`` does steps 9–10."""

    __slots__ = ("weight", "num_embeddings", "embedding_dim", "mode", "mode_name", "layout",
                 "max_norm", "norm_type", "scale_grad_by_freq", "sparse", "padding", "is_tensor")

    def renorm(self):
        """Step 9: max_norm's in-place renormalisation of every referenced row (torch's order:
        before the reduction), after checking every index (a RuntimeError, nothing changed)."""
        if self.max_norm is None:
            return
        index = self.layout.indices
        if index.shape[0]:
            values = index.array.numpy() if index.is_tensor else index.array
            if int(values.min()) < 0 or int(values.max()) >= self.num_embeddings:
                raise _bag_index_error(self.layout, self.num_embeddings, EMB_ERROR_INDEX_OUT_OF_RANGE)
        weight = self.weight.detach() if self.is_tensor else self.weight
        embedding_renorm_(weight, index.array, self.max_norm, self.norm_type)

    def forward(self, out=None, want_max_indices=False):
        """Step 10: the native forward. Returns (result, max_indices or None)."""
        shape = (self.layout.num_bags, self.embedding_dim)
        tensor_type = _torch_tensor_type()
        if out is not None:
            result = out
            out_address = _check_out(out, shape, tensor_type)
        elif self.is_tensor:
            result = sys.modules["torch"].empty(shape, dtype=sys.modules["torch"].float32)
            out_address = result.data_ptr()
        else:
            result = np.empty(shape, dtype=_FLOAT32)
            out_address = result.ctypes.data
        max_indices = None
        max_address = None
        capacity = shape[0] * shape[1]
        # Without a consumer for the arg-max the max forward tracks none (the values are the same).
        if self.mode == EMB_BAG_MAX and want_max_indices:
            if self.is_tensor:
                max_indices = sys.modules["torch"].empty(shape, dtype=sys.modules["torch"].int64)
                max_address = max_indices.data_ptr()
            else:
                max_indices = np.empty(shape, dtype=np.int64)
                max_address = max_indices.ctypes.data
        # The table by pointer; a non-contiguous one through a contiguous copy (documented), taken
        # here, after the renormalisation.
        if self.is_tensor:
            table = self.weight.detach()
            try:
                if not table.is_contiguous():
                    table = table.contiguous()
                weight_address = table.data_ptr()
            except RuntimeError:
                raise _bag_layout_error(self.weight, None) from None  # a sparse table: no strides or storage
        else:
            table = self.weight if self.weight.flags.c_contiguous else np.ascontiguousarray(self.weight)
            weight_address = table.ctypes.data
        status = emb_embedding_bag(weight_address, EMB_DTYPE_FLOAT32, self.num_embeddings, self.embedding_dim,
                                   byref(self.layout.bags), self.mode, out_address, capacity,
                                   max_address, capacity if max_address is not None else 0)
        if status:
            if status == EMB_ERROR_INDEX_OUT_OF_RANGE:
                raise _bag_index_error(self.layout, self.num_embeddings, status)
            raise _native_error(status)
        return result, (max_indices if want_max_indices else None)


def _prepare_embedding_bag(input, weight, offsets, max_norm, norm_type, scale_grad_by_freq, mode, sparse,
                           per_sample_weights, include_last_offset, padding_idx):
    """Steps 1–8 (see above): every check, in torch's order; returns a _BagCall."""
    import warnings

    tensor_type = _torch_tensor_type()
    input = _as_array(input, tensor_type, "input")
    weight = _as_array(weight, tensor_type, "weight")
    if offsets is not None:
        offsets = _as_array(offsets, tensor_type, "offsets")
    if per_sample_weights is not None:
        per_sample_weights = _as_array(per_sample_weights, tensor_type, "per_sample_weights")

    # 1. The deprecated order embedding_bag(weight, input, ...).
    if _dtype_name(weight) == "int64" and _dtype_name(input).startswith(("float", "bfloat")):
        warnings.warn("Argument order of nn.functional.embedding_bag was changed. "
                      "Usage `embedding_bag(weight, input, ...)` is deprecated, "
                      "and should now be `embedding_bag(input, weight, ...)`.")
        weight, input = input, weight

    input_shape = tuple(input.shape)
    # 2. psw shape.
    if per_sample_weights is not None and input_shape != tuple(per_sample_weights.shape):
        raise ValueError("embedding_bag: If per_sample_weights (%s) is not None, then it must have the same shape "
                         "as the input (%s)" % (_shape_text(per_sample_weights.shape), _shape_text(input_shape)))
    # 3. input and offsets dimensions.
    bag_size = 0
    if len(input_shape) == 2:
        if offsets is not None:
            raise ValueError("if input is 2D, then offsets has to be None, as input is treated is a mini-batch of "
                             "fixed length sequences. However, found offsets of type %s" % str(type(offsets)))
        bag_size = input_shape[1]
        if bag_size == 0:
            raise _error(EmbeddingRuntimeError, EMB_ERROR_INVALID_ARGUMENT, "step must be nonzero")
        # torch flattens input and per_sample_weights next: a sparse one fails in reshape.
        if type(input) is not np.ndarray:
            strided = sys.modules["torch"].strided
            if input.layout is not strided:
                raise _reshape_error(input)
            if per_sample_weights is not None and _non_strided(per_sample_weights) is not None:
                raise _reshape_error(per_sample_weights)
    elif len(input_shape) == 1:
        if offsets is None:
            raise ValueError("offsets has to be a 1D Tensor but got None")
        if len(offsets.shape) != 1:
            raise ValueError("offsets has to be a 1D Tensor")
    else:
        raise ValueError("input has to be 1D or 2D Tensor, but got Tensor of dimension %d" % len(input_shape))
    # 4. mode.
    if mode not in ("sum", "mean", "max"):  # torch compares with ==: an unhashable mode is just not one of them
        raise ValueError("mode has to be one of sum, mean or max")
    if mode == "max":
        if scale_grad_by_freq:
            raise ValueError("max mode does not support scaling the gradient by the frequency")
        if sparse:
            raise ValueError("max mode does not support sparse weights")
    weight_shape = tuple(weight.shape)
    # 5. torch renormalises here; only its errors are raised here (the rows change in step 9):
    #    its argument types, its layouts, its index errors.
    if max_norm is not None:
        max_norm, norm_type = _renorm_arguments(max_norm, norm_type, weight, input)
        renorm_index, _ = _index_buffer(input, tensor_type, "embedding_renorm_", 2)
        values = renorm_index.array.numpy() if renorm_index.is_tensor else renorm_index.array
        rows = weight_shape[0] if weight_shape else 0
        if values.size and (int(values.max()) >= rows or int(values.min()) < -rows):
            bad = values.reshape(-1)[(values.reshape(-1) >= rows) | (values.reshape(-1) < -rows)]
            raise _error(EmbeddingIndexError, EMB_ERROR_INDEX_OUT_OF_RANGE,
                         "select(): index %d out of range for tensor of size %s at dimension 0"
                         % (int(bad.max()) if int(bad.max()) >= rows else int(bad.min()), list(weight_shape)))
    # 6. psw only with sum.
    if per_sample_weights is not None and mode != "sum":
        # torch's own NotImplementedError and text (EmbeddingNotSupportedError is a NotImplementedError).
        raise _error(EmbeddingNotSupportedError, EMB_ERROR_NOT_SUPPORTED,
                     "embedding_bag: per_sample_weights was not None. per_sample_weights is only "
                     "supported for mode='sum' (got mode='%s'). Please open a feature request on GitHub." % mode)
    # 7. torch's C++ op: its argument types, the padding_idx range, then no kernel for sparse
    #    tensors, then the kernel's checks.
    if len(weight_shape) != 2:
        raise ValueError("weight has to be a 2D Tensor, but got Tensor of dimension %d" % len(weight_shape))
    if not ((scale_grad_by_freq is False or scale_grad_by_freq is True) and (sparse is False or sparse is True)
            and (include_last_offset is False or include_last_offset is True)):
        _check_bool_argument(scale_grad_by_freq, "embedding_bag", "scale_grad_by_freq", 4)
        _check_bool_argument(sparse, "embedding_bag", "sparse", 6)
        _check_bool_argument(include_last_offset, "embedding_bag", "include_last_offset", 8)
    num_embeddings, embedding_dim = weight_shape
    padding = _bag_padding(padding_idx, num_embeddings)
    try:
        index, index_code, offset, offset_code, promoted = _bag_indices(input, offsets, tensor_type)
        weight_dtype = _dtype_name(weight)
        if weight_dtype not in _FLOAT_WEIGHT_DTYPES:
            raise _error(EmbeddingRuntimeError, EMB_ERROR_UNSUPPORTED_DTYPE,
                         _WEIGHT_DTYPE_MESSAGE % _torch_type_name(weight_dtype))
        if per_sample_weights is not None and _dtype_name(per_sample_weights) != weight_dtype:
            raise _error(EmbeddingRuntimeError, EMB_ERROR_UNSUPPORTED_DTYPE,
                         _PSW_DTYPE_MESSAGE % (_torch_type_name(weight_dtype),
                                               _torch_type_name(_dtype_name(per_sample_weights))))
        _check_offsets_like_torch(offset, index.shape[0], include_last_offset, promoted)
        # 8. Ours: the native layout rules, then float32 on the CPU.
        psw = None if per_sample_weights is None else _flat_contiguous(per_sample_weights, tensor_type)
    except RuntimeError:
        # torch has no kernel for a sparse tensor: its NotImplementedError comes before the
        # kernel's checks (here, on the error path only: a sparse tensor fails in them; a sparse
        # table that passes them fails when the forward takes its data pointer).
        unsupported = _non_strided(input, offsets, per_sample_weights, weight)
        if unsupported is None:
            raise
        raise _bag_layout_error(weight, unsupported) from None
    weight_is_tensor = _is_tensor(weight, tensor_type)
    layout = _build_layout(index, index_code, offset, offset_code, bag_size, include_last_offset, psw, padding,
                           input_shape, weight_is_tensor)
    if weight_dtype != "float32":
        raise _error(EmbeddingNotSupportedError, EMB_ERROR_UNSUPPORTED_DTYPE,
                     "embedding_native supports weight dtype float32 only in this version (got %s)" % weight.dtype)
    if weight_is_tensor and weight.device.type != "cpu":
        raise _error(EmbeddingNotSupportedError, EMB_ERROR_NOT_SUPPORTED,
                     "embedding_native runs on the CPU only; got weight on %s" % weight.device)
    call = _BagCall()
    call.weight = weight
    call.num_embeddings = num_embeddings
    call.embedding_dim = embedding_dim
    call.mode = _BAG_MODES[mode]
    call.mode_name = mode
    call.layout = layout
    call.max_norm = max_norm
    call.norm_type = norm_type
    call.scale_grad_by_freq = bool(scale_grad_by_freq)
    call.sparse = bool(sparse)
    call.padding = padding
    call.is_tensor = weight_is_tensor
    return call


def embedding_bag(input, weight, offsets=None, max_norm=None, norm_type=2, scale_grad_by_freq=False, mode="mean",
                  sparse=False, per_sample_weights=None, include_last_offset=False, padding_idx=None, *, out=None):
    """``torch.nn.functional.embedding_bag`` on numpy arrays and CPU torch tensors.

    Semantics (spec §3; the reductions are the native kernel's, bit-identical to torch 1.13)::

        bags: 1-D input of length L with 1-D offsets (K bags; K - 1 with include_last_offset,
              whose last offset must then be L), or a 2-D (B, N) input: B bags of N positions
        for each bag b, P = its positions whose index != padding_idx:
            sum:  Σ W[idx[i]]   (× per_sample_weights[i] when given: sum mode only)
            mean: that sum / max(|P|, 1)
            max:  per column the first maximum (strictly greater replaces)
            P empty: +0.0 in every mode
        returns (num_bags, embedding_dim) float32, of weight's kind (numpy or tensor)

    Arguments, defaults (mode='mean'), the order of the checks and the exceptions are torch
    1.13's (module comment above). Where torch 1.13 crashes or returns garbage (offsets that
    decrease, include_last_offset with offsets[-1] < L) this raises EmbeddingRuntimeError;
    2-D input with include_last_offset gives B bags (torch 2.x; 1.13 gives B - 1); zero
    offsets give zero bags. See docs/divergences.md.

    Indices, offsets, per_sample_weights and weight are passed by pointer (a copy only when one
    is not contiguous, or an index array is neither int32 nor int64); int32 and int64 mix
    freely. With max_norm the referenced rows of ``weight`` are renormalised in place first —
    only once every check has passed. ``out=`` writes into a C-contiguous float32 buffer of the
    result's shape.
    """
    if (out is None and max_norm is None and per_sample_weights is None and padding_idx is None
            and include_last_offset is False and sparse is False and scale_grad_by_freq is False
            and type(input).__name__ == "Tensor"):
        result = _embedding_bag_tensor_fast(input, weight, offsets, mode)
        if result is not None:
            return result
    call = _prepare_embedding_bag(input, weight, offsets, max_norm, norm_type, scale_grad_by_freq, mode, sparse,
                                  per_sample_weights, include_last_offset, padding_idx)
    call.renorm()
    return call.forward(out)[0]


def _embedding_bag_tensor_fast(input, weight, offsets, mode):
    """The common bag call — contiguous CPU tensors, 1-D int32/int64 indices and offsets, a non-empty
    float32 table, no options (not even the gradient ones: max mode refuses them) — with as little Python as possible (the general path spends ~15 µs
    in its checks). None when any condition does not hold or the library refuses the call: it then
    has written nothing, and the general path raises torch's error for it."""
    torch = sys.modules["torch"]
    mode_code = _BAG_MODES.get(mode) if type(mode) is str else None
    index_code = _TORCH_FAST_INDEX.get(input.dtype)
    if (mode_code is None or index_code is None or type(offsets).__name__ != "Tensor"
            or not isinstance(weight, torch.Tensor)):
        return None
    offset_code = _TORCH_FAST_INDEX.get(offsets.dtype)
    if (offset_code is None or weight.dtype is not torch.float32 or weight.dim() != 2 or input.dim() != 1
            or offsets.dim() != 1 or not (input.is_cpu and offsets.is_cpu and weight.is_cpu)):
        return None
    try:
        if not (input.is_contiguous() and offsets.is_contiguous() and weight.is_contiguous()):
            return None
        weight_address = weight.data_ptr()
        indices_address = input.data_ptr()
        offsets_address = offsets.data_ptr()
    except RuntimeError:
        return None  # a sparse tensor: no strides or no storage (the general path reports torch's error)
    num_embeddings, embedding_dim = weight.shape
    num_bags = offsets.numel()
    if num_embeddings == 0 or embedding_dim == 0 or num_bags == 0:
        return None
    bags = emb_bags()
    bags.indices = indices_address
    bags.num_indices = input.numel()
    bags.index_dtype = index_code
    bags.offsets_dtype = offset_code
    bags.offsets = offsets_address
    bags.num_offsets = num_bags
    bags.padding_idx = EMB_NO_PADDING
    count = num_bags * embedding_dim
    result = (weight.new_empty((num_bags, embedding_dim)) if count * 4 < FRESH_MAPPING_BYTES
              else _new_float32((num_bags, embedding_dim), True))
    status = emb_embedding_bag(weight_address, EMB_DTYPE_FLOAT32, num_embeddings, embedding_dim, byref(bags),
                               mode_code, result.data_ptr(), count, None, 0)
    return None if status else result


def _backward_layout(grad_output, input, num_embeddings, offsets, mode, per_sample_weights, include_last_offset,
                     padding_idx, tensor_type):
    """The bag layout of a backward call (the forward's arguments) and the grad_output buffer."""
    if mode not in ("sum", "mean", "max"):  # torch compares with ==: an unhashable mode is just not one of them
        raise ValueError("mode has to be one of sum, mean or max")
    num_embeddings = operator.index(num_embeddings)
    if num_embeddings < 0:
        raise _error(EmbeddingRuntimeError, EMB_ERROR_INVALID_ARGUMENT,
                     "num_embeddings must be non-negative, got %d" % num_embeddings)
    input = _as_array(input, tensor_type, "input")
    if offsets is not None:
        offsets = _as_array(offsets, tensor_type, "offsets")
    unsupported = _non_strided(input, offsets, per_sample_weights)
    if unsupported is not None:
        _require_strided(unsupported, "a tensor")
    input_shape = tuple(input.shape)
    bag_size = 0
    if len(input_shape) == 2:
        if offsets is not None:
            raise ValueError("offsets must be None for a 2-D input")
        bag_size = input_shape[1]
        if bag_size == 0:
            raise _error(EmbeddingRuntimeError, EMB_ERROR_INVALID_ARGUMENT, "step must be nonzero")
    elif len(input_shape) != 1 or offsets is None or len(offsets.shape) != 1:
        raise ValueError("input must be 1-D with 1-D offsets, or 2-D without offsets")
    padding = _bag_padding(padding_idx, num_embeddings)
    index, index_code, offset, offset_code, promoted = _bag_indices(input, offsets, tensor_type)
    _check_offsets_like_torch(offset, index.shape[0], include_last_offset, promoted)
    psw = None
    if per_sample_weights is not None:
        per_sample_weights = _as_array(per_sample_weights, tensor_type, "per_sample_weights")
        if tuple(per_sample_weights.shape) != input_shape:
            raise ValueError("per_sample_weights must have the input's shape %s, got %s"
                             % (input_shape, tuple(per_sample_weights.shape)))
        if _dtype_name(per_sample_weights) != "float32":
            raise _error(EmbeddingNotSupportedError, EMB_ERROR_UNSUPPORTED_DTYPE,
                         "per_sample_weights must be float32, got %s" % per_sample_weights.dtype)
        psw = _flat_contiguous(per_sample_weights, tensor_type)
    grad = _float_buffer(grad_output, "grad_output", tensor_type)
    layout = _build_layout(index, index_code, offset, offset_code, bag_size, include_last_offset, psw, padding,
                           input_shape, grad.is_tensor)
    if len(grad.shape) != 2 or grad.shape[0] != layout.num_bags:
        raise _error(EmbeddingRuntimeError, EMB_ERROR_INVALID_ARGUMENT,
                     "grad_output has shape %s; expected (num_bags, embedding_dim) with num_bags = %d"
                     % (tuple(grad.shape), layout.num_bags))
    return grad, layout, num_embeddings, grad.shape[1]


def _raise_bag_status(status, layout, num_embeddings):
    if status == EMB_ERROR_INDEX_OUT_OF_RANGE:
        raise _bag_index_error(layout, num_embeddings, status)
    raise _native_error(status)


def embedding_bag_backward(grad_output, input, num_embeddings, offsets=None, mode="mean", per_sample_weights=None,
                           include_last_offset=False, padding_idx=None, scale_grad_by_freq=False, max_indices=None,
                           *, out=None, accumulate=False):
    """The dense gradient of :func:`embedding_bag` with respect to ``weight`` (``emb_embedding_bag_backward``)::

        grad_weight = zeros(V, D)                              # unless accumulate: add into out
        sum/mean: for each bag b, for i in its non-padding positions, in position order:
                      s = psw[i] (or 1);  scale_grad_by_freq: s /= count of indices[i] in the call
                      mean: s /= |P_b|;   grad_weight[indices[i]] = fma(grad_output[b], fl(s), ...)
        max:      for each non-empty bag b and column d: grad_weight[max_indices[b][d]][d] += grad_output[b][d]

    max is torch's bit for bit; sum/mean match torch to rounding (torch adds duplicate rows in the
    order of an unstable sort). scale_grad_by_freq divides by each row's own count, as torch
    documents (torch <= 2.13 divides by another row's count: docs/divergences.md).

    Args: ``grad_output`` float32 (num_bags, D); ``input``, ``offsets``, ``mode``,
    ``per_sample_weights``, ``include_last_offset``, ``padding_idx`` as given to the forward;
    ``max_indices``: the int64 (num_bags, D) the max forward produced (required for max; see
    :func:`embedding_bag_max_indices`). Returns ``out`` or a new float32 (V, D) of grad_output's kind.
    """
    tensor_type = _torch_tensor_type()
    grad, layout, num_embeddings, dim = _backward_layout(grad_output, input, num_embeddings, offsets, mode,
                                                         per_sample_weights, include_last_offset, padding_idx,
                                                         tensor_type)
    max_address = None
    if _BAG_MODES[mode] == EMB_BAG_MAX:
        if max_indices is None:
            raise ValueError("embedding_bag_backward(): mode='max' needs the forward's max_indices")
        max_buffer = _rows_buffer(max_indices, tensor_type)
        if tuple(max_buffer.shape) != (layout.num_bags, dim):
            raise _error(EmbeddingRuntimeError, EMB_ERROR_INVALID_ARGUMENT,
                         "max_indices has shape %s, expected %s" % (tuple(max_buffer.shape), (layout.num_bags, dim)))
        max_address = max_buffer.address
    shape = (num_embeddings, dim)
    result, out_address, accumulate = _gradient_out(grad, shape, out, accumulate, tensor_type, "embedding_bag_backward")
    flags = (EMB_SCALE_GRAD_BY_FREQ if scale_grad_by_freq else 0) | (EMB_ACCUMULATE if accumulate else 0)
    status = emb_embedding_bag_backward(grad.address, EMB_DTYPE_FLOAT32, num_embeddings, dim, byref(layout.bags),
                                        _BAG_MODES[mode], max_address, flags, out_address, num_embeddings * dim)
    if status:
        _raise_bag_status(status, layout, num_embeddings)
    return result


def embedding_bag_sparse_backward(grad_output, input, num_embeddings, offsets=None, mode="mean",
                                  per_sample_weights=None, include_last_offset=False, padding_idx=None,
                                  scale_grad_by_freq=False):
    """The sparse gradient of :func:`embedding_bag` (sum and mean) in torch's uncoalesced layout::

        for each non-padding position i, in position order:
            rows.append(indices[i]); values.append(grad_output[bag(i)] * fl(1/|P_b|) (mean) * psw[i])

    ``torch.sparse_coo_tensor(rows[None], values, (V, D))`` is torch's gradient (torch refuses
    scale_grad_by_freq with sparse gradients; allowed here, dividing by each row's count).

    Returns ``(rows, values)``: int64 ``(nnz,)`` and float32 ``(nnz, D)``, of grad_output's kind.
    """
    tensor_type = _torch_tensor_type()
    grad, layout, num_embeddings, dim = _backward_layout(grad_output, input, num_embeddings, offsets, mode,
                                                         per_sample_weights, include_last_offset, padding_idx,
                                                         tensor_type)
    if mode == "max":
        raise ValueError("max mode does not support sparse weights")
    n_max = layout.num_indices
    rows = grad.empty((n_max,), "int64")
    values = _new_float32((n_max, dim), grad.is_tensor)
    nnz = c_int64()
    status = emb_embedding_bag_backward_sparse(grad.address, EMB_DTYPE_FLOAT32, num_embeddings, dim,
                                               byref(layout.bags), _BAG_MODES[mode],
                                               EMB_SCALE_GRAD_BY_FREQ if scale_grad_by_freq else 0,
                                               _Buffer.address_of(rows), _Buffer.address_of(values), n_max,
                                               byref(nnz))
    if status:
        _raise_bag_status(status, layout, num_embeddings)
    n = nnz.value
    return (rows, values) if n == n_max else (rows[:n], values[:n])


def embedding_bag_per_sample_weights_backward(grad_output, weight, input, offsets=None, mode="sum",
                                              include_last_offset=False, padding_idx=None):
    """The gradient of :func:`embedding_bag` (mode='sum') with respect to per_sample_weights::

        grad[i] = Σ_d grad_output[bag(i)][d] * weight[indices[i]][d]   (sequential over d, products
                  rounded before each add: torch's BLAS dot, bit for bit); 0 at padding positions

    Returns a float32 array of ``input``'s shape, of grad_output's kind.
    """
    tensor_type = _torch_tensor_type()
    if mode != "sum":
        raise _error(EmbeddingNotSupportedError, EMB_ERROR_NOT_SUPPORTED,
                     "embedding_bag: per_sample_weights is only supported for mode='sum' (got mode='%s')" % mode)
    table = _float_buffer(weight, "weight", tensor_type)
    if len(table.shape) != 2:
        raise ValueError("weight has to be a 2D Tensor, but got Tensor of dimension %d" % len(table.shape))
    grad, layout, num_embeddings, dim = _backward_layout(grad_output, input, table.shape[0], offsets, mode, None,
                                                         include_last_offset, padding_idx, tensor_type)
    if dim != table.shape[1]:
        raise _error(EmbeddingRuntimeError, EMB_ERROR_INVALID_ARGUMENT,
                     "grad_output has %d columns, weight has %d" % (dim, table.shape[1]))
    result = grad.empty((layout.num_indices,))
    status = emb_embedding_bag_per_sample_weights_backward(grad.address, EMB_DTYPE_FLOAT32, table.address,
                                                           num_embeddings, dim, byref(layout.bags), EMB_BAG_SUM,
                                                           _Buffer.address_of(result), layout.num_indices)
    if status:
        _raise_bag_status(status, layout, num_embeddings)
    return result.reshape(layout.input_shape)


def embedding_bag_max_indices(input, weight, offsets=None, include_last_offset=False, padding_idx=None):
    """The max forward and its arg-max rows: ``(result, max_indices)``, max_indices int64
    (num_bags, D), -1 for empty bags (torch's raw op reports 0 there). What the max backward needs."""
    call = _prepare_embedding_bag(input, weight, offsets, None, 2, False, "max", False, None, include_last_offset,
                                  padding_idx)
    return call.forward(None, want_max_indices=True)
