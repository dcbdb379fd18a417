"""embedding_bag: ``torch.nn.functional.embedding_bag`` on numpy arrays and CPU torch tensors.

embedding_bag() runs torch 1.13's checks in torch's order (spec §3.7), with torch's exception
types and texts, then the stricter offset rules of the native layout (emb_embedding_bag_count),
then max_norm, then the kernel:

  1. deprecated argument order (int64 weight, floating input): swap, warn
  2. psw shape == input shape                                   ValueError
  3. input 1-D with 1-D offsets, or 2-D without offsets         ValueError
     (2-D (B, 0): RuntimeError "step must be nonzero", from torch's arange)
  4. mode in sum/mean/max; max: no scale_grad_by_freq/sparse    ValueError
  5. max_norm: the renorm's own index errors (torch renormalises here, in place)
  6. psw with mode != sum                                       NotImplementedError
  7. padding_idx range, index/offset dtypes (promoted together), weight dtype, psw dtype,
     offsets[0] == 0, offsets[-1] <= L, include_last_offset count   RuntimeError
  8. ours: offsets non-decreasing; include_last_offset: offsets[-1] == L  RuntimeError
     (7.'s offset rules and 8.'s are checked once, by the library: bag_layout.py)
     (float16, float32, float64: the library takes all three; bfloat16 is torch 1.13's refusal)
  9. max_norm: every index in range (RuntimeError), then the rows renormalised in place
 10. the kernel; a bad index is a RuntimeError (as torch's bag op), nothing written

Unlike torch, a call that fails never renormalises anything (step 9 runs after every check).


A plain call — 1-D contiguous int32/int64 indices and offsets into a non-empty contiguous float32
table, all of one kind, no options — takes the short way (:func:`_plain_embedding_bag`): one
native call, which validates the layout; when it refuses anything, the checked path runs and
raises torch's error.
"""

import warnings
from ctypes import byref

from .. import _numpy_extension, _torch_operators as _operators
from .._bindings import EMB_BAG_MAX, EMB_BAG_MEAN, EMB_BAG_SUM, EMB_NO_PADDING, emb_bags, emb_embedding_bag
from ..errors import (
    EMB_ERROR_INVALID_ARGUMENT, EMB_ERROR_NOT_SUPPORTED, EMB_ERROR_UNSUPPORTED_DTYPE, EmbeddingIndexError,
    EmbeddingNotSupportedError, EmbeddingRuntimeError, EMB_ERROR_INDEX_OUT_OF_RANGE,
)
from .arguments import check_bool_argument, renorm_arguments, shape_text, torch_type_name
from .bag_layout import bag_indices, bag_layout_error, build_layout, torch_offsets_error
from .buffers import NUMPY, TABLE_DTYPES, TORCH, as_array, check_out, dtype_name, flat_buffer, index_buffer, is_tensor
from .embedding import plain_kind
from .failures import bag_index_error, error, native_error, non_strided, raise_bag_status, reshape_error
from .padding import bag_padding
from .renorm import embedding_renorm_

BAG_MODES = {"sum": EMB_BAG_SUM, "mean": EMB_BAG_MEAN, "max": EMB_BAG_MAX}
_FLOAT_WEIGHT_DTYPES = ("float16", "float32", "float64")

_WEIGHT_DTYPE_MESSAGE = ("Expected tensor for argument #1 'weight' to have one of the following scalar types: "
                         "Half, Float, Double; but got %s instead (while checking arguments for embedding_bag)")
_PSW_DTYPE_MESSAGE = ("Expected tensor for argument #1 'weight' to have the same type as tensor for argument #1 "
                      "'per_sample_weights'; but type %s does not equal %s (while checking arguments for embedding_bag)")


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
    if (out is None and max_norm is None and padding_idx is None
            and include_last_offset is False and sparse is False and scale_grad_by_freq is False):
        result = _plain_embedding_bag(input, weight, offsets, mode, per_sample_weights)
        if result is not None:
            return result
    call = prepare_embedding_bag(input, weight, offsets, max_norm, norm_type, scale_grad_by_freq, mode, sparse,
                                 per_sample_weights, include_last_offset, padding_idx)
    call.renorm()
    return call.forward(out)[0]


def embedding_bag_max_indices(input, weight, offsets=None, include_last_offset=False, padding_idx=None):
    """The max forward and its arg-max rows: ``(result, max_indices)``, max_indices int64
    (num_bags, D), -1 for empty bags (torch's raw op reports 0 there). What the max backward needs."""
    call = prepare_embedding_bag(input, weight, offsets, None, 2, False, "max", False, None, include_last_offset,
                                 padding_idx)
    return call.forward(None, want_max_indices=True)


def _plain_embedding_bag(input, weight, offsets, mode, per_sample_weights=None):
    """:func:`embedding_bag` of a plain call (see the module doc), with as little Python as
    possible (the checked path spends ~15 µs in its checks). None when it is not one, or when the
    library refuses the call: it then has written nothing, and the checked path raises torch's error.
    Per-sample weights count as plain in sum mode when they are 1-D, C-contiguous, of the input's
    kind and the table's type, one per index (anything else goes the checked way for torch's error)."""
    kind = plain_kind(type(input))
    if kind is None or type(offsets) is not type(input):
        return None
    mode_code = BAG_MODES.get(mode) if type(mode) is str else None
    if mode_code is None or input.ndim != 1 or offsets.ndim != 1:
        return None
    if kind is TORCH and _operators.embedding_bag is not None and isinstance(weight, _operators.Tensor) \
            and (per_sample_weights is None or isinstance(per_sample_weights, _operators.Tensor)):
        result = _operators.embedding_bag(weight, input, offsets, mode_code, per_sample_weights)
        if result is not None:
            return result
    elif kind is NUMPY and _numpy_extension.embedding_bag is not None:
        result = _numpy_extension.embedding_bag(weight, input, offsets, mode_code, per_sample_weights)
        if result is not None:
            return result
    operands = kind.plain_lookup(input, weight)
    offset = kind.plain_indices(offsets)
    if operands is None or offset is None:
        return None
    weight_address, num_embeddings, embedding_dim, weight_dtype, index_address, index_dtype, num_indices = operands
    num_bags = offset[2]
    if num_bags == 0:
        return None
    weights_address = None
    if per_sample_weights is not None:
        if mode_code != EMB_BAG_SUM or type(per_sample_weights) is not type(weight):
            return None
        weights_address = kind.plain_weights(per_sample_weights, weight, num_indices)
        if weights_address is None:
            return None
    bags = emb_bags()
    bags.indices = index_address
    bags.index_dtype = index_dtype
    bags.num_indices = num_indices
    bags.offsets = offset[0]
    bags.offsets_dtype = offset[1]
    bags.num_offsets = num_bags
    bags.padding_idx = EMB_NO_PADDING
    bags.per_sample_weights = weights_address
    count = num_bags * embedding_dim
    result, out_address = kind.result((num_bags, embedding_dim), count, weight_dtype)
    status = emb_embedding_bag(weight_address, weight_dtype, num_embeddings, embedding_dim, byref(bags),
                               mode_code, out_address, count, None, 0)
    return None if status else result


class BagCall:
    """A fully validated embedding_bag call (steps 1–8 above); ``renorm()`` and ``forward()`` do
    steps 9–10."""

    __slots__ = ("weight", "num_embeddings", "embedding_dim", "mode", "mode_name", "layout",
                 "max_norm", "norm_type", "scale_grad_by_freq", "sparse", "padding", "is_tensor")

    def renorm(self):
        """Step 9: max_norm's in-place renormalisation of every referenced row (torch's order:
        before the reduction). The library checks every index first: a bad one is the bag op's
        RuntimeError, and nothing has changed."""
        if self.max_norm is None:
            return
        weight = self.weight.detach() if self.is_tensor else self.weight
        try:
            embedding_renorm_(weight, self.layout.indices.array, self.max_norm, self.norm_type)
        except EmbeddingIndexError:
            raise bag_index_error() from None

    def forward(self, out=None, want_max_indices=False):
        """Step 10: the native forward. Returns (result, max_indices or None)."""
        kind = TORCH if self.is_tensor else NUMPY
        shape = (self.layout.num_bags, self.embedding_dim)
        table_type = dtype_name(self.weight)
        if out is not None:
            result = out
            out_address = check_out(out, shape, table_type)
        else:
            result = kind.empty(shape, table_type)
            out_address = kind.address(result)
        max_indices = None
        max_address = None
        capacity = shape[0] * shape[1]
        # Without a consumer for the arg-max the max forward tracks none (the values are the same).
        if self.mode == EMB_BAG_MAX and want_max_indices:
            max_indices = kind.empty(shape, "int64")
            max_address = kind.address(max_indices)
        # The table by pointer; a non-contiguous one through a contiguous copy (documented), taken
        # here, after the renormalisation.
        table = self.weight.detach() if self.is_tensor else self.weight
        try:
            table = kind.contiguous(table)
            weight_address = kind.address(table)
        except RuntimeError:
            raise bag_layout_error(self.weight, None) from None  # a sparse table: no strides or storage
        status = emb_embedding_bag(weight_address, TABLE_DTYPES[table_type], self.num_embeddings, self.embedding_dim,
                                   byref(self.layout.bags), self.mode, out_address, capacity,
                                   max_address, capacity if max_address is not None else 0)
        if status:
            raise_bag_status(status)
        return result, (max_indices if want_max_indices else None)


def prepare_embedding_bag(input, weight, offsets, max_norm, norm_type, scale_grad_by_freq, mode, sparse,
                          per_sample_weights, include_last_offset, padding_idx):
    """Steps 1–8 (see the module doc): every check, in torch's order; returns a BagCall."""
    input = as_array(input, "input")
    weight = as_array(weight, "weight")
    if offsets is not None:
        offsets = as_array(offsets, "offsets")
    if per_sample_weights is not None:
        per_sample_weights = as_array(per_sample_weights, "per_sample_weights")

    # 1. The deprecated order embedding_bag(weight, input, ...).
    if dtype_name(weight) == "int64" and dtype_name(input).startswith(("float", "bfloat")):
        warnings.warn("Argument order of nn.functional.embedding_bag was changed. "
                      "Usage `embedding_bag(weight, input, ...)` is deprecated, "
                      "and should now be `embedding_bag(input, weight, ...)`.")
        weight, input = input, weight

    input_shape = tuple(input.shape)
    # 2. psw shape.
    if per_sample_weights is not None and input_shape != tuple(per_sample_weights.shape):
        raise ValueError("embedding_bag: If per_sample_weights (%s) is not None, then it must have the same shape "
                         "as the input (%s)" % (shape_text(per_sample_weights.shape), shape_text(input_shape)))
    # 3. input and offsets dimensions.
    bag_size = 0
    if len(input_shape) == 2:
        if offsets is not None:
            raise ValueError("if input is 2D, then offsets has to be None, as input is treated is a mini-batch of "
                             "fixed length sequences. However, found offsets of type %s" % str(type(offsets)))
        bag_size = input_shape[1]
        if bag_size == 0:
            raise error(EmbeddingRuntimeError, EMB_ERROR_INVALID_ARGUMENT, "step must be nonzero")
        # torch flattens input and per_sample_weights next: a sparse one fails in reshape.
        if is_tensor(input):
            if non_strided(input) is not None:
                raise reshape_error(input)
            if per_sample_weights is not None and non_strided(per_sample_weights) is not None:
                raise reshape_error(per_sample_weights)
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
        max_norm, norm_type = renorm_arguments(max_norm, norm_type, weight, input)
        renorm_index, _ = index_buffer(input, "embedding_renorm_", 2)
        values = renorm_index.array.numpy() if renorm_index.is_tensor else renorm_index.array
        rows = weight_shape[0] if weight_shape else 0
        if values.size and (int(values.max()) >= rows or int(values.min()) < -rows):
            bad = values.reshape(-1)[(values.reshape(-1) >= rows) | (values.reshape(-1) < -rows)]
            raise error(EmbeddingIndexError, EMB_ERROR_INDEX_OUT_OF_RANGE,
                         "select(): index %d out of range for tensor of size %s at dimension 0"
                         % (int(bad.max()) if int(bad.max()) >= rows else int(bad.min()), list(weight_shape)))
    # 6. psw only with sum.
    if per_sample_weights is not None and mode != "sum":
        # torch's own NotImplementedError and text (EmbeddingNotSupportedError is a NotImplementedError).
        raise error(EmbeddingNotSupportedError, EMB_ERROR_NOT_SUPPORTED,
                     "embedding_bag: per_sample_weights was not None. per_sample_weights is only "
                     "supported for mode='sum' (got mode='%s'). Please open a feature request on GitHub." % mode)
    # 7. torch's C++ op: its argument types, the padding_idx range, then no kernel for sparse
    #    tensors, then the kernel's checks.
    if len(weight_shape) != 2:
        raise ValueError("weight has to be a 2D Tensor, but got Tensor of dimension %d" % len(weight_shape))
    if not ((scale_grad_by_freq is False or scale_grad_by_freq is True) and (sparse is False or sparse is True)
            and (include_last_offset is False or include_last_offset is True)):
        check_bool_argument(scale_grad_by_freq, "embedding_bag", "scale_grad_by_freq", 4)
        check_bool_argument(sparse, "embedding_bag", "sparse", 6)
        check_bool_argument(include_last_offset, "embedding_bag", "include_last_offset", 8)
    num_embeddings, embedding_dim = weight_shape
    padding = bag_padding(padding_idx, num_embeddings)
    try:
        index, index_code, offset, offset_code, promoted = bag_indices(input, offsets)
        weight_dtype = dtype_name(weight)
        if weight_dtype not in _FLOAT_WEIGHT_DTYPES:
            raise error(EmbeddingRuntimeError, EMB_ERROR_UNSUPPORTED_DTYPE,
                         _WEIGHT_DTYPE_MESSAGE % torch_type_name(weight_dtype))
        if per_sample_weights is not None and dtype_name(per_sample_weights) != weight_dtype:
            raise error(EmbeddingRuntimeError, EMB_ERROR_UNSUPPORTED_DTYPE,
                         _PSW_DTYPE_MESSAGE % (torch_type_name(weight_dtype),
                                               torch_type_name(dtype_name(per_sample_weights))))
        # torch's offset rules, then (8.) ours: the library validates the layout, and a refusal is
        # worded as torch words it where torch refuses it too.
        psw = None if per_sample_weights is None else flat_buffer(per_sample_weights)
        weight_kind = TORCH if is_tensor(weight) else NUMPY
        layout, status = build_layout(index, index_code, offset, offset_code, bag_size, include_last_offset, psw,
                                      padding, input_shape, weight_kind.is_tensor)
        if status:
            torch_error = torch_offsets_error(offset, index.shape[0], include_last_offset, promoted)
            if torch_error is not None:
                raise torch_error
    except RuntimeError:
        # torch has no kernel for a sparse tensor: its NotImplementedError comes before the
        # kernel's checks (here, on the error path only: a sparse tensor fails in them; a sparse
        # table that passes them fails when the forward takes its data pointer).
        unsupported = non_strided(input, offsets, per_sample_weights, weight)
        if unsupported is None:
            raise
        raise bag_layout_error(weight, unsupported) from None
    if status:
        raise native_error(status)
    weight_kind.check_device(weight, "weight")
    call = BagCall()
    call.weight = weight
    call.num_embeddings = num_embeddings
    call.embedding_dim = embedding_dim
    call.mode = BAG_MODES[mode]
    call.mode_name = mode
    call.layout = layout
    call.max_norm = max_norm
    call.norm_type = norm_type
    call.scale_grad_by_freq = bool(scale_grad_by_freq)
    call.sparse = bool(sparse)
    call.padding = padding
    call.is_tensor = weight_kind.is_tensor
    return call
