"""The gradients of :func:`embedding`: dense, sparse (torch's uncoalesced COO), and coalescing.

Every buffer is a numpy array or a CPU torch tensor passed by pointer; results are of
grad_output's (or values') kind.
"""

import math
import operator
from ctypes import byref, c_int64

from .. import _torch_operators as _operators
from .._bindings import (
    EMB_ACCUMULATE, EMB_NO_PADDING, EMB_SCALE_GRAD_BY_FREQ, emb_embedding_backward, emb_embedding_backward_sparse,
    emb_sparse_coalesce,
)
from .._tables import read_only
from ..errors import EMB_ERROR_INVALID_ARGUMENT, EmbeddingRuntimeError
from .buffers import check_out, float_buffer, index_buffer, rows_buffer
from .failures import error, native_error
from .padding import native_padding


def non_negative_rows(num_embeddings):
    """num_embeddings of a gradient call as an int, >= 0."""
    num_embeddings = operator.index(num_embeddings)
    if num_embeddings < 0:
        raise error(EmbeddingRuntimeError, EMB_ERROR_INVALID_ARGUMENT,
                    "num_embeddings must be non-negative, got %d" % num_embeddings)
    return num_embeddings


def _grad_and_indices(grad_output, indices, num_embeddings):
    """Validates a (grad_output, indices) pair; returns (grad Buffer, index Buffer, index emb_dtype, D)."""
    non_negative_rows(num_embeddings)
    index, index_dtype = index_buffer(indices)
    grad = float_buffer(grad_output, "grad_output", any_type=True)
    if len(grad.shape) != len(index.shape) + 1 or grad.shape[:-1] != index.shape:
        raise error(EmbeddingRuntimeError, EMB_ERROR_INVALID_ARGUMENT,
                    "grad_output has shape %s; expected indices.shape + (embedding_dim,) = %s + (D,)"
                    % (grad.shape, index.shape))
    return grad, index, index_dtype, grad.shape[-1]


def gradient_out(grad, shape, out, accumulate, op):
    """Where a dense gradient goes: ``out`` (overwritten, or added into with ``accumulate``), or new
    zeros of grad's kind accumulated into, which gives the same bits as overwriting (+0.0 + g)
    without a second clear. Returns (result, its address, whether to accumulate)."""
    if out is not None:
        return out, check_out(out, shape, grad.dtype_name), accumulate
    if accumulate:
        raise ValueError("%s(): accumulate=True needs out=" % op)
    result = grad.zeros(shape)
    return result, grad.kind.address(result), True


def grad_flags(scale_grad_by_freq, accumulate=False):
    return (EMB_SCALE_GRAD_BY_FREQ if scale_grad_by_freq else 0) | (EMB_ACCUMULATE if accumulate else 0)


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
        grad_output: ``indices.shape + (D,)`` of the table's type (float32, float64, float16 or
            bfloat16, as far as the library takes it), numpy or CPU tensor (any strides).
        indices: the int32/int64 indices of the forward call (any shape).
        num_embeddings: V, the number of rows of the table.
        padding_idx: None, or a row (negative counts from the end, as in torch) whose
            positions contribute nothing.
        scale_grad_by_freq: divide each contribution by its index's count in ``indices``.
        out: optional C-contiguous, writable ``(V, D)`` buffer of grad_output's type to write into.
        accumulate: add into ``out`` (required then) instead of overwriting it.

    Returns:
        ``out``, or a new ``(V, D)`` array of grad_output's kind and type.

    Raises:
        EmbeddingIndexError (IndexError): an index outside ``[0, V)``; nothing is written.
        PaddingIndexError (AssertionError), EmbeddingRuntimeError (shapes, dtypes),
        EmbeddingNotSupportedError (a type the library does not take here, non-CPU tensors).
    """
    if (_operators.embedding_backward is not None and padding_idx is None and type(grad_output) is _operators.Tensor
            and type(indices) is _operators.Tensor and type(num_embeddings) is int and type(scale_grad_by_freq) is bool
            and type(accumulate) is bool and (out is None or (type(out) is _operators.Tensor and not read_only.any_live()))):
        result = _operators.embedding_backward(grad_output, indices, num_embeddings, scale_grad_by_freq, out, accumulate)
        if result is not None:
            return result
    grad, index, index_dtype, dim = _grad_and_indices(grad_output, indices, num_embeddings)
    num_embeddings = operator.index(num_embeddings)
    padding = native_padding(padding_idx, num_embeddings)
    shape = (num_embeddings, dim)
    result, out_address, accumulate = gradient_out(grad, shape, out, accumulate, "embedding_backward")
    status = emb_embedding_backward(grad.address, grad.code, math.prod(index.shape), dim,
                                    index.address, index_dtype, num_embeddings, padding,
                                    grad_flags(scale_grad_by_freq, accumulate), out_address, num_embeddings * dim)
    if status:
        raise native_error(status)
    return result


# From this many gradient elements on, a sparse gradient without a padding row or scaling is returned
# as views (torch's layout, no copy of grad_output): the range check of the indices that replaces the
# native call costs a few microseconds, the copy it saves 2 ms at N = 8192, D = 768 (25 MB).
VIEW_MIN_ELEMENTS = 1 << 16


def embedding_sparse_backward(grad_output, indices, num_embeddings, padding_idx=None, scale_grad_by_freq=False):
    """The sparse gradient of :func:`embedding` in torch's (uncoalesced) layout::

        rows, values = [], []
        for i in flattened position order: if indices[i] != padding_idx:
            rows.append(indices[i]);  values.append(grad_output[i] (* fl(1/c[k]) if scale_grad_by_freq))

    torch itself refuses ``scale_grad_by_freq`` with sparse gradients; it is allowed here.
    ``torch.sparse_coo_tensor(rows[None], values, (V, D))`` is torch's gradient (torch returns
    shapes ``(1, 0)``/``(0, D)`` when no entries remain, or when D == 0;
    ``embedding_native.torch`` does that).

    Without a padding row and without scaling, a large gradient (``VIEW_MIN_ELEMENTS`` values or
    more) is returned as torch returns it: ``values`` is a view of a C-contiguous grad_output and
    ``rows`` of contiguous int64 indices of the same kind, so writing into them writes into those.

    Returns:
        ``(rows, values)``: int64 ``(nnz,)`` and ``(nnz, D)`` of grad_output's type, of its kind.
    """
    if (_operators.embedding_sparse_backward is not None and padding_idx is None
            and type(grad_output) is _operators.Tensor and type(indices) is _operators.Tensor
            and type(num_embeddings) is int and type(scale_grad_by_freq) is bool
            and grad_output.numel() < VIEW_MIN_ELEMENTS):
        result = _operators.embedding_sparse_backward(grad_output, indices, num_embeddings, scale_grad_by_freq)
        if result:
            return tuple(result)
    grad, index, index_dtype, dim = _grad_and_indices(grad_output, indices, num_embeddings)
    num_embeddings = operator.index(num_embeddings)
    padding = native_padding(padding_idx, num_embeddings)
    num_indices = math.prod(index.shape)
    if (padding == EMB_NO_PADDING and not scale_grad_by_freq and num_indices * dim >= VIEW_MIN_ELEMENTS
            and index.kind is grad.kind and index.kind.all_below(index.array, num_embeddings)):
        return index.kind.flat(index.array, "int64"), grad.array.reshape(num_indices, dim)
    rows = grad.empty((num_indices,), "int64")
    values = grad.like((num_indices, dim))
    nnz = c_int64()
    address = grad.kind.address
    status = emb_embedding_backward_sparse(grad.address, grad.code, num_indices, dim,
                                           index.address, index_dtype, num_embeddings, padding,
                                           grad_flags(scale_grad_by_freq), address(rows), address(values), num_indices,
                                           byref(nnz))
    if status:
        raise native_error(status)
    n = nnz.value
    return (rows, values) if n == num_indices else (rows[:n], values[:n])


def sparse_coalesce(rows, values, num_embeddings):
    """Sums the entries of a sparse gradient per row: ``torch.sparse_coo_tensor(...).coalesce()``::

        unique_rows = sorted(set(rows))
        summed[j] = +0.0 + sum of values[i] over i with rows[i] == unique_rows[j], in entry order

    Args:
        rows: integer ``(nnz,)`` row numbers in ``[0, num_embeddings)`` (converted to int64).
        values: ``(nnz, D)`` of a table type.

    Returns:
        ``(unique_rows, summed_values)``: int64 ``(n,)`` ascending and ``(n, D)`` of values' type
        and kind. These are what the :mod:`embedding_native.optim` steps take.
    """
    if (_operators.sparse_coalesce is not None and type(rows) is _operators.Tensor and type(values) is _operators.Tensor
            and type(num_embeddings) is int):
        result = _operators.sparse_coalesce(rows, values, num_embeddings)
        if result:
            return tuple(result)
    row = rows_buffer(rows)
    value = float_buffer(values, "values", any_type=True)
    num_embeddings = operator.index(num_embeddings)
    if len(row.shape) != 1 or len(value.shape) != 2 or value.shape[0] != row.shape[0]:
        raise error(EmbeddingRuntimeError, EMB_ERROR_INVALID_ARGUMENT,
                    "rows must be (nnz,) and values (nnz, D); got %s and %s" % (row.shape, value.shape))
    nnz, dim = value.shape
    out_rows = value.empty((nnz,), "int64")
    out_values = value.like((nnz, dim))
    count = c_int64()
    address = value.kind.address
    status = emb_sparse_coalesce(row.address, value.address, value.code, nnz, dim,
                                 num_embeddings, address(out_rows), address(out_values), nnz, byref(count))
    if status:
        raise native_error(status)
    n = count.value
    return (out_rows, out_values) if n == nnz else (out_rows[:n], out_values[:n])
