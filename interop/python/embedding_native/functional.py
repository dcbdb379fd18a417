"""``torch.nn.functional.embedding`` on numpy arrays and CPU torch tensors, without copying.

Semantics (torch 1.13; see the header's pseudocode for the native part)::

    embedding(input, weight, padding_idx=None, max_norm=None, norm_type=2.0,
              scale_grad_by_freq=False, sparse=False, *, out=None):
        if padding_idx is not None:                       # Python-level check, as in torch
            require -V <= padding_idx < V  (0 always passes)   else PaddingIndexError
        if max_norm is not None:  EmbeddingNotSupportedError   # renorm is not implemented yet
        require weight.ndim == 2                          else RuntimeError "'weight' must be 2-D"
        require input.dtype in (int32, int64)             else RuntimeError "Expected tensor ..."
        V, D = weight.shape
        require V > 0 or input.size == 0                  else RuntimeError "index_select(): ..."
        require weight.dtype == float32                   else EmbeddingNotSupportedError
        result[i..., :] = weight[input[i...], :]          # every index in [0, V), else IndexError
        return result                                     # shape input.shape + (D,)

``padding_idx``, ``scale_grad_by_freq`` and ``sparse`` change only gradients in torch; this
package has no backward yet, so they are validated (padding_idx) or accepted and have no effect
on the values. The padding row is returned as stored.

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
from ._bindings import EMB_DTYPE_FLOAT32, EMB_DTYPE_INT32, EMB_DTYPE_INT64, emb_embedding
from .errors import (
    EMB_ERROR_BUFFER_TOO_SMALL, EMB_ERROR_INDEX_OUT_OF_RANGE, EMB_ERROR_INVALID_ARGUMENT,
    EMB_ERROR_NOT_SUPPORTED, EMB_ERROR_UNSUPPORTED_DTYPE, EmbeddingNotSupportedError,
    EmbeddingRuntimeError, error_for_status,
)

__all__ = ["embedding", "normalize_padding_idx", "build_info"]

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

_INDEX_DTYPE_MESSAGE = ("Expected tensor for argument #1 'indices' to have one of the following scalar types: "
                        "Long, Int; but got %s instead (while checking arguments for embedding)")


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


def _numpy_indices(indices):
    """(contiguous int32/int64 array, emb_dtype) for a numpy index array or scalar."""
    if not isinstance(indices, np.ndarray):
        indices = np.asarray(indices)
    code = _NUMPY_INDEX_DTYPES.get(indices.dtype)
    if code is None:
        native = indices.dtype.newbyteorder("=") if indices.dtype.byteorder not in ("=", "|") else None
        code = _NUMPY_INDEX_DTYPES.get(native)
        if code is None:
            name = indices.dtype.name
            raise _error(EmbeddingRuntimeError, EMB_ERROR_UNSUPPORTED_DTYPE,
                         _INDEX_DTYPE_MESSAGE % _TORCH_TYPE_NAMES.get(name, "numpy." + name))
        # Byte-swapped integers: the native side reads native-order values.
        indices = indices.astype(native)
    if not indices.flags.c_contiguous:
        indices = np.ascontiguousarray(indices)
    return indices, code


def _tensor_indices(indices):
    """(contiguous int32/int64 CPU tensor, emb_dtype) for a torch index tensor."""
    dtype_name = str(indices.dtype)
    code = _TORCH_INDEX_DTYPES.get(dtype_name)
    if code is None:
        raise _error(EmbeddingRuntimeError, EMB_ERROR_UNSUPPORTED_DTYPE,
                     _INDEX_DTYPE_MESSAGE % _TORCH_TYPE_NAMES.get(dtype_name[len("torch."):], dtype_name))
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
        max_norm: must be None; renormalisation is not implemented yet and raises
            EmbeddingNotSupportedError rather than being ignored.
        norm_type, scale_grad_by_freq, sparse: accepted for torch's signature; they only
            concern renormalisation and gradients.
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
            max_norm, tensors not on the CPU.
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
        raise _error(EmbeddingNotSupportedError, EMB_ERROR_NOT_SUPPORTED,
                     "max_norm is not supported yet: it renormalises weight rows in place; pass max_norm=None")
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
