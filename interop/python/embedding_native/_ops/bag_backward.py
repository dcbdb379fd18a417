"""The gradients of :func:`embedding_bag`: dense and sparse for the weight, and for per_sample_weights.

Each takes the forward's arguments (input, offsets, mode, ...), so each builds the same bag
layout the forward did (:func:`_backward_layout`); results are of grad_output's kind.
"""

from ctypes import byref, c_int64

from .. import _torch_operators as _operators
from .._bindings import (
    EMB_BAG_MAX, EMB_BAG_SUM, emb_embedding_bag_backward, emb_embedding_bag_backward_sparse,
    emb_embedding_bag_per_sample_weights_backward,
)
from .._tables import read_only
from ..errors import EMB_ERROR_INVALID_ARGUMENT, EMB_ERROR_NOT_SUPPORTED, EMB_ERROR_UNSUPPORTED_DTYPE, \
    EmbeddingNotSupportedError, EmbeddingRuntimeError
from .backward import gradient_out, grad_flags, non_negative_rows
from .bag_layout import bag_indices, build_layout, torch_offsets_error
from .buffers import as_array, dtype_name, flat_buffer, float_buffer, rows_buffer
from .embedding_bag import BAG_MODES
from .failures import error, native_error, non_strided, raise_bag_status, require_strided
from .padding import bag_padding


def _backward_layout(grad_output, input, num_embeddings, offsets, mode, per_sample_weights, include_last_offset,
                     padding_idx):
    """The bag layout of a backward call (the forward's arguments) and the grad_output buffer."""
    if mode not in ("sum", "mean", "max"):  # torch compares with ==: an unhashable mode is just not one of them
        raise ValueError("mode has to be one of sum, mean or max")
    num_embeddings = non_negative_rows(num_embeddings)
    input = as_array(input, "input")
    if offsets is not None:
        offsets = as_array(offsets, "offsets")
    unsupported = non_strided(input, offsets, per_sample_weights)
    if unsupported is not None:
        require_strided(unsupported, "a tensor")
    input_shape = tuple(input.shape)
    bag_size = 0
    if len(input_shape) == 2:
        if offsets is not None:
            raise ValueError("offsets must be None for a 2-D input")
        bag_size = input_shape[1]
        if bag_size == 0:
            raise error(EmbeddingRuntimeError, EMB_ERROR_INVALID_ARGUMENT, "step must be nonzero")
    elif len(input_shape) != 1 or offsets is None or len(offsets.shape) != 1:
        raise ValueError("input must be 1-D with 1-D offsets, or 2-D without offsets")
    padding = bag_padding(padding_idx, num_embeddings)
    index, index_code, offset, offset_code, promoted = bag_indices(input, offsets)
    # The library validates the layout here (torch's rules worded as torch's, now); a refusal for
    # one of its own stricter rules is raised after the per-sample weights and grad_output checks.
    layout, status = build_layout(index, index_code, offset, offset_code, bag_size, include_last_offset, None, padding,
                                  input_shape, False)
    if status:
        torch_error = torch_offsets_error(offset, index.shape[0], include_last_offset, promoted)
        if torch_error is not None:
            raise torch_error
        failure = native_error(status)
    grad = float_buffer(grad_output, "grad_output", any_type=True)
    if per_sample_weights is not None:
        per_sample_weights = as_array(per_sample_weights, "per_sample_weights")
        if tuple(per_sample_weights.shape) != input_shape:
            raise ValueError("per_sample_weights must have the input's shape %s, got %s"
                             % (input_shape, tuple(per_sample_weights.shape)))
        if dtype_name(per_sample_weights) != grad.dtype_name:
            raise error(EmbeddingNotSupportedError, EMB_ERROR_UNSUPPORTED_DTYPE,
                        "per_sample_weights must have grad_output's type %s, got %s"
                        % (grad.dtype_name, per_sample_weights.dtype))
        layout.psw = flat_buffer(per_sample_weights)
        layout.bags.per_sample_weights = layout.psw.address
    if status:
        raise failure
    layout.is_tensor = grad.is_tensor
    if len(grad.shape) != 2 or grad.shape[0] != layout.num_bags:
        raise error(EmbeddingRuntimeError, EMB_ERROR_INVALID_ARGUMENT,
                    "grad_output has shape %s; expected (num_bags, embedding_dim) with num_bags = %d"
                    % (grad.shape, layout.num_bags))
    return grad, layout, num_embeddings, grad.shape[1]


def embedding_bag_backward(grad_output, input, num_embeddings, offsets=None, mode="mean", per_sample_weights=None,
                           include_last_offset=False, padding_idx=None, scale_grad_by_freq=False, max_indices=None,
                           *, out=None, accumulate=False):
    """The dense gradient of :func:`embedding_bag` with respect to ``weight`` (``emb_embedding_bag_backward``)::

        grad_weight = zeros(V, D)                              # unless accumulate: add into out
        sum/mean: for i in torch.sort(indices)[1] (every position, padding included, in the order of
                  torch's unstable sort), if indices[i] != padding_idx, with b = the bag of i:
                      s = psw[i] (or 1);  scale_grad_by_freq: s /= count of indices[i] in the call
                      mean: s /= |P_b|;   grad_weight[indices[i]] = fma(grad_output[b], fl(s), ...)
        max:      for each non-empty bag b and column d: grad_weight[max_indices[b][d]][d] += grad_output[b][d]

    Every mode is torch's bit for bit: torch's sort is reproduced step for step, so duplicate rows
    are added in its order. scale_grad_by_freq divides by each row's own count, as torch documents
    (torch <= 2.13 divides by another row's count: docs/divergences.md).

    Args: ``grad_output`` float32 (num_bags, D); ``input``, ``offsets``, ``mode``,
    ``per_sample_weights``, ``include_last_offset``, ``padding_idx`` as given to the forward;
    ``max_indices``: the int64 (num_bags, D) the max forward produced (required for max; see
    :func:`embedding_bag_max_indices`). Returns ``out`` or a new float32 (V, D) of grad_output's kind.
    """
    tensor = _operators.Tensor
    if (_operators.embedding_bag_backward is not None and padding_idx is None and include_last_offset is False
            and type(grad_output) is tensor and type(input) is tensor and type(offsets) is tensor
            and type(num_embeddings) is int and type(scale_grad_by_freq) is bool and type(accumulate) is bool
            and type(mode) is str and mode in BAG_MODES
            and (per_sample_weights is None or type(per_sample_weights) is tensor)
            and (max_indices is None or type(max_indices) is tensor)
            and (out is None or (type(out) is tensor and not read_only.any_live()))):
        result = _operators.embedding_bag_backward(grad_output, input, num_embeddings, offsets, BAG_MODES[mode],
                                                   per_sample_weights, scale_grad_by_freq, max_indices, out, accumulate)
        if result is not None:
            return result
    grad, layout, num_embeddings, dim = _backward_layout(grad_output, input, num_embeddings, offsets, mode,
                                                         per_sample_weights, include_last_offset, padding_idx)
    max_address = None
    if BAG_MODES[mode] == EMB_BAG_MAX:
        if max_indices is None:
            raise ValueError("embedding_bag_backward(): mode='max' needs the forward's max_indices")
        max_buffer = rows_buffer(max_indices)
        if max_buffer.shape != (layout.num_bags, dim):
            raise error(EmbeddingRuntimeError, EMB_ERROR_INVALID_ARGUMENT,
                        "max_indices has shape %s, expected %s" % (max_buffer.shape, (layout.num_bags, dim)))
        max_address = max_buffer.address
    shape = (num_embeddings, dim)
    result, out_address, accumulate = gradient_out(grad, shape, out, accumulate, "embedding_bag_backward")
    status = emb_embedding_bag_backward(grad.address, grad.code, num_embeddings, dim,
                                        byref(layout.bags), BAG_MODES[mode], max_address,
                                        grad_flags(scale_grad_by_freq, accumulate), out_address, num_embeddings * dim)
    if status:
        raise_bag_status(status)
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
    grad, layout, num_embeddings, dim = _backward_layout(grad_output, input, num_embeddings, offsets, mode,
                                                         per_sample_weights, include_last_offset, padding_idx)
    if mode == "max":
        raise ValueError("max mode does not support sparse weights")
    n_max = layout.num_indices
    rows = grad.empty((n_max,), "int64")
    values = grad.like((n_max, dim))
    nnz = c_int64()
    address = grad.kind.address
    status = emb_embedding_bag_backward_sparse(grad.address, grad.code, num_embeddings, dim,
                                               byref(layout.bags), BAG_MODES[mode], grad_flags(scale_grad_by_freq),
                                               address(rows), address(values), n_max, byref(nnz))
    if status:
        raise_bag_status(status)
    n = nnz.value
    return (rows, values) if n == n_max else (rows[:n], values[:n])


def embedding_bag_per_sample_weights_backward(grad_output, weight, input, offsets=None, mode="sum",
                                              include_last_offset=False, padding_idx=None):
    """The gradient of :func:`embedding_bag` (mode='sum') with respect to per_sample_weights::

        grad[i] = Σ_d grad_output[bag(i)][d] * weight[indices[i]][d]   (sequential over d, products
                  rounded before each add: torch's BLAS dot, bit for bit); 0 at padding positions

    Returns a float32 array of ``input``'s shape, of grad_output's kind.
    """
    if mode != "sum":
        raise error(EmbeddingNotSupportedError, EMB_ERROR_NOT_SUPPORTED,
                    "embedding_bag: per_sample_weights is only supported for mode='sum' (got mode='%s')" % mode)
    table = float_buffer(weight, "weight", any_type=True)
    if len(table.shape) != 2:
        raise ValueError("weight has to be a 2D Tensor, but got Tensor of dimension %d" % len(table.shape))
    grad, layout, num_embeddings, dim = _backward_layout(grad_output, input, table.shape[0], offsets, mode, None,
                                                         include_last_offset, padding_idx)
    if dim != table.shape[1]:
        raise error(EmbeddingRuntimeError, EMB_ERROR_INVALID_ARGUMENT,
                    "grad_output has %d columns, weight has %d" % (dim, table.shape[1]))
    result = grad.empty((layout.num_indices,), grad.dtype_name)
    status = emb_embedding_bag_per_sample_weights_backward(grad.address, grad.code,
                                                           table.address, num_embeddings, dim, byref(layout.bags),
                                                           EMB_BAG_SUM, grad.kind.address(result), layout.num_indices)
    if status:
        raise_bag_status(status)
    return result.reshape(layout.input_shape)
