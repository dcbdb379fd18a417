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
from ._cpu import TIER_NAMES
from ._bindings import (
    EMB_ACCUMULATE, EMB_DTYPE_FLOAT32, EMB_DTYPE_INT32, EMB_DTYPE_INT64, EMB_NO_PADDING, EMB_SCALE_GRAD_BY_FREQ,
    emb_embedding, emb_embedding_backward, emb_embedding_backward_sparse, emb_embedding_renorm, emb_sparse_coalesce,
)
from .errors import (
    EMB_ERROR_BUFFER_TOO_SMALL, EMB_ERROR_INDEX_OUT_OF_RANGE, EMB_ERROR_INVALID_ARGUMENT,
    EMB_ERROR_NOT_SUPPORTED, EMB_ERROR_UNSUPPORTED_DTYPE, EmbeddingNotSupportedError,
    EmbeddingRuntimeError, error_for_status,
)

__all__ = ["embedding", "embedding_backward", "embedding_sparse_backward", "sparse_coalesce", "embedding_renorm_",
           "normalize_padding_idx", "build_info"]

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
    if not indices.is_contiguous():
        indices = indices.contiguous()
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
            (the padding row is returned as stored).
        max_norm: if not None, first rescales **in place** every distinct row of ``weight``
            that ``input`` references and whose ``norm_type``-norm exceeds ``max_norm``
            (:func:`embedding_renorm_`), as torch does; the result holds the rescaled rows.
        norm_type: the p of the p-norm for max_norm (default 2; inf, -inf, 0 and any real p).
        scale_grad_by_freq, sparse: accepted for torch's signature; they only concern gradients.
        out: optional C-contiguous, writable float32 buffer of shape ``input.shape + (D,)``
            (numpy array or torch tensor) to write the result into.

    Returns:
        ``out`` if given, else a new array of shape ``input.shape + (embedding_dim,)``: numpy
        for a numpy weight, a torch tensor for a torch weight.

    Raises:
        EmbeddingIndexError (IndexError): an index is outside the table.
        PaddingIndexError (AssertionError): padding_idx outside ``[-V, V)``.
        EmbeddingRuntimeError (RuntimeError): weight not 2-D, index dtype not int32/int64,
            an empty table with non-empty input, an invalid ``out``.
        EmbeddingNotSupportedError (NotImplementedError): weight dtype other than float32,
            tensors not on the CPU.
        TypeError: input, weight or out is neither a numpy array nor a torch tensor.
    """
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
    # then the weight's rank and the index dtype in the ATen op, then index_select's own checks.
    if padding_idx is not None and padding_idx != 0:
        if not weight_shape:
            raise IndexError("Dimension specified as 0 but tensor has no dimensions")
        normalize_padding_idx(padding_idx, weight_shape[0])
    if max_norm is not None:
        # F.embedding renormalises before the gather (and before the gather's own checks), on
        # the contiguous input; embedding_renorm_ makes it contiguous the same way.
        embedding_renorm_(weight, input, max_norm, norm_type)
    if len(weight_shape) != 2:
        raise _error(EmbeddingRuntimeError, EMB_ERROR_INVALID_ARGUMENT, "'weight' must be 2-D")
    num_embeddings, embedding_dim = weight_shape

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

    out_shape = index_shape + (embedding_dim,)
    if out is not None:
        result = out
        out_address = _check_out(out, out_shape, tensor_type)
    elif weight_is_tensor:
        result = sys.modules["torch"].empty(out_shape, dtype=weight.dtype)
        out_address = result.data_ptr()
    else:
        result = np.empty(out_shape, dtype=_FLOAT32)
        out_address = result.ctypes.data

    status = emb_embedding(weight_address, EMB_DTYPE_FLOAT32, num_embeddings, embedding_dim,
                           indices_address, index_dtype, num_indices,
                           out_address, num_indices * embedding_dim)
    if status:
        if status == EMB_ERROR_INDEX_OUT_OF_RANGE and embedding_dim == 0:
            raise _zero_width_index_error(indices, num_embeddings)
        raise _native_error(status)
    return result


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
    * ``cpu_tier``: min(/proc/cpuinfo, CPUID) tier name if the loader needed it, else None,
    * ``selected_by``: ``"cpu"``, ``"EMBEDDING_NATIVE_TIER"`` or ``"EMBEDDING_NATIVE_LIBRARY"``.
    """
    loaded = _bindings.LIBRARY
    info = json.loads(_bindings.emb_build_info().decode("utf-8"))
    info["library_path"] = loaded.path
    info["tier"] = loaded.tier_name
    info["cpu_tier"] = None if loaded.cpu_tier is None else TIER_NAMES.get(loaded.cpu_tier, str(loaded.cpu_tier))
    info["selected_by"] = loaded.selected_by
    return info


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
        if not x.is_contiguous():
            if writable:
                raise _error(EmbeddingRuntimeError, EMB_ERROR_INVALID_ARGUMENT, "%s must be contiguous" % name)
            x = x.contiguous()
        return _Buffer(x, x.data_ptr(), tuple(x.shape), True)
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
        return _Buffer(x, x.data_ptr(), tuple(x.shape), True), code
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
        rows = rows.to(sys.modules["torch"].int64).contiguous()
        return _Buffer(rows, rows.data_ptr(), tuple(rows.shape), True)
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
    if out is None:
        if accumulate:
            raise ValueError("embedding_backward(): accumulate=True needs out=")
        result = grad.empty(shape)
        out_address = _Buffer.address_of(result)
    else:
        result = out
        out_address = _check_out(out, shape, tensor_type)
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
    values = grad.empty((num_indices, dim))
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
    out_values = value.empty((nnz, dim))
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

    The norm is computed in double (torch: in float), so a rescaled row may differ from torch's
    by 1 ulp. Unlike torch 1.13, every index is checked before any row changes: a bad index
    raises IndexError and leaves ``weight`` untouched. ``indices`` is never modified.

    Args:
        weight: 2-D float32 numpy array or CPU tensor, written in place (a non-contiguous one
            through a contiguous copy that is written back). A tensor's autograd version
            counter is bumped, as torch's in-place op does (once, whenever indices is not empty).
        indices: int32/int64 indices of any shape.
        max_norm, norm_type: floats (no validation, as in torch: max_norm <= 0 is allowed).

    Returns:
        ``weight``.
    """
    tensor_type = _torch_tensor_type()
    weight_is_tensor = tensor_type is not None and isinstance(weight, tensor_type)
    if not weight_is_tensor and not isinstance(weight, np.ndarray):
        raise TypeError("embedding_renorm_(): argument 'weight' must be a numpy.ndarray or torch.Tensor, not %s"
                        % type(weight).__name__)
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
