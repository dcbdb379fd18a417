"""``embedding_native.torch``: drop-ins for ``torch.nn.Embedding`` and ``F.embedding`` whose
forward and backward run the native kernels, through ``torch.autograd.Function``::

    from embedding_native.torch import Embedding      # instead of torch.nn.Embedding
    model.embedding = Embedding(10_000, 64, padding_idx=0, sparse=True)

This module imports torch (``import embedding_native`` does not). Its submodule
``embedding_native.torch.quantized`` has the drop-ins for ``torch.ao.nn.quantized.Embedding`` and
``EmbeddingBag`` (8- and 4-bit tables). Everything else follows torch
1.13 (spec §1.1–§1.11, §2): constructor arguments and defaults, validation and error types,
``reset_parameters`` (``init.normal_`` then the padding row zeroed, consuming the RNG stream as
torch does), ``from_pretrained`` (storage shared), ``extra_repr``, the ``weight`` Parameter (so a
state dict loads into ``torch.nn.Embedding`` and back), and the gradients::

    forward(input):
        if max_norm is not None:                    # under no_grad, on weight.detach(), in place
            embedding_renorm_(weight, input.contiguous(), max_norm, norm_type)
        return rows of weight                       # emb_embedding, on the tensors' memory
    backward(grad_output):
        sparse=False: emb_embedding_backward on contiguous grad_output -> dense (V, D), bit-identical
        sparse=True:  torch.sparse_coo_tensor(rows[None], values, (V, D)), uncoalesced, one entry
                      per non-padding position, exactly torch's layout (views of indices and
                      grad_output without a padding row, emb_embedding_backward_sparse with one);
                      with scale_grad_by_freq torch's RuntimeError
                      "embedding_backward: scale_grad_by_freq not supported with sparse gradients"

Differences from torch, all of them errors rather than silent fallbacks:

* weight must be on the CPU. Embedding trains float32, float64, float16 and bfloat16 tables;
  EmbeddingBag float16, float32 and float64 (bfloat16: torch 1.13's own RuntimeError); the types
  come from the library's build_info()["table_dtypes"].
* The gradient is not differentiable again (``once_differentiable``): double backward through
  the embedding raises. torch's is linear with a zero second derivative.
* EmbeddingBag: see ``EmbeddingBag`` below and docs/divergences.md (stricter offsets, 2-D input
  with include_last_offset gives B bags as in torch 2.x, scale_grad_by_freq divides by each row's
  own count, a failing call never renormalises, per_sample_weights may require grad with a frozen
  weight).
* With max_norm, a bad index raises IndexError before any row is renormalised (torch 1.13
  renormalises the rows sorted before it), and the weight's autograd version counter is bumped
  once per forward with a non-empty input (torch bumps it once per rescaled row), so reusing a
  saved weight still raises torch's "modified by an inplace operation" error. Likewise an
  argument of the wrong type (``sparse=1``) raises torch's TypeError before the renorm.

Arguments are checked as torch checks them: F.embedding's own Python code runs on the objects
as given (a numpy weight fails in ``weight.size(0)`` or ``weight.detach()`` where torch's does),
then the types torch's argument parser requires, with its TypeError and text ("embedding():
argument 'padding_idx' (position 3) must be int, not float"). A sparse table (``weight`` a
sparse COO tensor) has no native kernel: ``torch.embedding`` itself runs, so the result is
torch's sparse tensor, with torch's gradient node; sparse indices and the bag's sparse
arguments raise torch's errors (IndexError, RuntimeError, NotImplementedError).
"""

import ctypes

import torch
from torch.nn import Parameter, init

from .. import _bindings as _native
from .. import functional as _functional
from .._ops import arguments as _arguments
from .._ops.embedding import lookup as _lookup
from .._ops.embedding_bag import prepare_embedding_bag as _prepare_embedding_bag
from .._ops.failures import error as _error, layout_error as _layout_error, non_strided as _non_strided, \
    raise_bag_status as _raise_bag_status
from .._ops.padding import module_range_error, padding_row
from .._ops.buffers import TABLE_DTYPES as _TABLE_DTYPES
from .._results import new_result as _new_result
from ..errors import (
    EMB_ERROR_INVALID_ARGUMENT, EMB_ERROR_UNSUPPORTED_DTYPE,
    BagPaddingIndexError, EmbeddingNotSupportedError, EmbeddingRuntimeError, PaddingIndexError,
)
from .._repr import embedding_bag_extra_repr, embedding_extra_repr

__all__ = ["Embedding", "embedding", "EmbeddingBag", "embedding_bag"]

_Tensor = torch.Tensor
_STRIDED = torch.strided
_SPARSE_SCALE_MESSAGE = "embedding_backward: scale_grad_by_freq not supported with sparse gradients"


def _trained_types(*operations):
    """The weight dtypes every one of ``operations`` takes, as the library reports them."""
    table = _functional.build_info()["table_dtypes"]
    return tuple(getattr(torch, name) for name in table[operations[0]] if all(name in table[op] for op in operations))


#: The weight dtypes each module trains with, as the library reports them: Embedding all of
#: torch's float types; EmbeddingBag those its backward takes (its forward takes float16/32/64).
_EMBEDDING_TYPES = _trained_types("embedding", "embedding_backward", "renorm")
_BAG_TRAINING_TYPES = _trained_types("embedding_bag", "embedding_bag_backward")


def _check_table_type(dtype, types=_EMBEDDING_TYPES):
    if dtype not in types:
        raise _error(EmbeddingNotSupportedError, EMB_ERROR_UNSUPPORTED_DTYPE,
                     "embedding_native supports weight dtype %s only in this version (got %s)"
                     % (", ".join(str(t)[len("torch."):] for t in types), dtype))


def _type_name(tensor):
    return str(tensor.dtype)[len("torch."):]


def _type_code(tensor):
    """The emb_dtype of a float tensor."""
    return _TABLE_DTYPES[_type_name(tensor)]


def _normalize_padding_idx(padding_idx, num_embeddings):
    """torch's Python-level check, comparisons included (a float padding_idx passes as in torch)."""
    return padding_row(padding_idx, num_embeddings, module_range_error(PaddingIndexError))


class _Table(torch.nn.Module):
    """What the two drop-in modules share: torch's initialisation of ``weight`` and ``padding_idx``."""

    def reset_parameters(self):
        """``init.normal_(weight)`` (the same RNG stream as torch), then the padding row zeroed."""
        init.normal_(self.weight)
        self._fill_padding_idx_with_zero()

    def _fill_padding_idx_with_zero(self):
        if self.padding_idx is not None:
            with torch.no_grad():
                self.weight[self.padding_idx].fill_(0)


class _EmbeddingFunction(torch.autograd.Function):
    """``torch.embedding(weight, indices, padding_idx, scale_grad_by_freq, sparse)`` natively;
    ``padding_idx`` is normalised, -1 meaning none (torch's convention at this level)."""

    @staticmethod
    def forward(ctx, weight, indices, padding_idx, scale_grad_by_freq, sparse):
        if weight.dim() == 2:
            _check_table_type(weight.dtype)
        output = _functional.embedding(indices, weight)
        if not indices.is_contiguous():
            indices = indices.contiguous()
        ctx.save_for_backward(indices)
        ctx.num_weights, ctx.embedding_dim = weight.shape
        ctx.padding_idx = None if padding_idx == -1 else padding_idx
        ctx.scale_grad_by_freq = scale_grad_by_freq
        ctx.sparse = sparse
        return output

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_output):
        indices, = ctx.saved_tensors
        if not ctx.needs_input_grad[0]:
            return None, None, None, None, None
        if ctx.sparse:
            grad = _sparse_gradient(grad_output, indices, ctx.num_weights, ctx.embedding_dim, ctx.padding_idx,
                                    ctx.scale_grad_by_freq)
        else:
            grad = _functional.embedding_backward(grad_output.contiguous(), indices, ctx.num_weights,
                                                  ctx.padding_idx, ctx.scale_grad_by_freq)
        return grad, None, None, None, None


def _sparse_gradient(grad_output, indices, num_weights, embedding_dim, padding_idx, scale_grad_by_freq):
    """torch's embedding_sparse_backward: uncoalesced COO, (1, 0)/(0, D) when nothing remains.

    Without a padding row torch's entries are views, ``indices.reshape(1, -1)`` (as int64) and
    ``grad_output.reshape(-1, D)``, so they are built the same way here (no copy, nothing to
    compute natively): the layout matters beyond the values, because torch's sparse ``+=``
    (gradient accumulation over several backward calls) merges contiguous values and
    concatenates non-contiguous ones. With a padding row torch copies the kept entries, and the
    native emb_embedding_backward_sparse does the same.
    """
    if scale_grad_by_freq:
        raise _error(EmbeddingRuntimeError, EMB_ERROR_INVALID_ARGUMENT, _SPARSE_SCALE_MESSAGE)
    if padding_idx is None and grad_output.numel():
        rows = indices.reshape(-1).to(torch.int64)
        values = grad_output.reshape(-1, embedding_dim)
    elif grad_output.numel():
        rows, values = _functional.embedding_sparse_backward(grad_output.contiguous(), indices, num_weights,
                                                             padding_idx)
    if not grad_output.numel() or not values.numel():
        # torch tests grad.numel() == 0 (after dropping padding), so a zero-width table also
        # gets the empty layout.
        rows = torch.empty((0,), dtype=torch.int64)
        values = torch.empty((0, embedding_dim), dtype=grad_output.dtype)
    return torch.sparse_coo_tensor(rows.unsqueeze(0), values, (num_weights, embedding_dim))


def embedding(input, weight, padding_idx=None, max_norm=None, norm_type=2.0, scale_grad_by_freq=False,
              sparse=False):
    """``torch.nn.functional.embedding`` with the native forward and backward (see the module doc).

    Same arguments, order of checks and errors as F.embedding in torch 1.13; ``weight`` must be a
    float32, float64, float16 or bfloat16 CPU tensor. With ``max_norm`` the referenced rows of
    ``weight`` are renormalised in place before the lookup.
    """
    # F.embedding's Python code, on the objects as given (so a numpy weight fails in weight.size
    # or weight.detach as it does there).
    padding_idx = _normalize_padding_idx(padding_idx, weight.size(0)) if padding_idx is not None else -1
    if max_norm is not None:
        # F.embedding: "input = input.contiguous()", then embedding_renorm_ under no_grad on
        # weight.detach() (which shares the version counter, so the bump reaches weight). Every
        # argument is checked first: a call that fails renormalises nothing (torch 1.13 does).
        input = input.contiguous()
        table = weight.detach()
        max_norm = _arguments.float_argument(max_norm, "embedding_renorm_", "max_norm", 3)
        norm_type = _arguments.float_argument(norm_type, "embedding_renorm_", "norm_type", 4)
        unsupported = _non_strided(table, input)
        if unsupported is not None:
            raise _layout_error("embedding_renorm_", unsupported)
        padding_idx = _check_embedding_arguments(weight, input, padding_idx, scale_grad_by_freq, sparse)
        with torch.no_grad():
            _functional.embedding_renorm_(table, input, max_norm, norm_type)
    elif not (type(input) is _Tensor and type(padding_idx) is int
              and (scale_grad_by_freq is False or scale_grad_by_freq is True) and (sparse is False or sparse is True)):
        padding_idx = _check_embedding_arguments(weight, input, padding_idx, scale_grad_by_freq, sparse)
    try:
        needs_grad = weight.requires_grad and torch.is_grad_enabled()
    except AttributeError:
        needs_grad = None  # not a tensor
    if needs_grad is None:
        _check_embedding_arguments(weight, input, padding_idx, scale_grad_by_freq, sparse)  # torch's TypeError
    if not needs_grad:
        # Nothing to differentiate (inference, a frozen table): the lookup alone, without the
        # autograd node torch would not record either.
        result = _lookup(input, weight)
        if result is not None:
            return result
    if weight.layout is not _STRIDED:
        # A sparse table: torch's own op, which is index_select on that layout, and its gradient
        # (no native kernel applies); its result, or its error. (Sparse indices with a dense table
        # reach torch's error through the functional lookup.)
        return torch.embedding(weight, input, padding_idx, scale_grad_by_freq, sparse)
    if not needs_grad:
        if weight.dim() == 2:
            _check_table_type(weight.dtype)
        return _functional.embedding(input, weight)
    return _EmbeddingFunction.apply(weight, input, padding_idx, scale_grad_by_freq, sparse)


def _check_embedding_arguments(weight, input, padding_idx, scale_grad_by_freq, sparse):
    """The argument checks of ``torch.embedding(weight, input, padding_idx, scale_grad_by_freq,
    sparse)``, in its order and with its TypeErrors; returns padding_idx as an int."""
    if not isinstance(weight, _Tensor):
        raise _arguments.argument_type_error("embedding", "weight", 1, "Tensor", weight)
    if not isinstance(input, _Tensor):
        raise _arguments.argument_type_error("embedding", "indices", 2, "Tensor", input)
    padding_idx = _arguments.int_argument(padding_idx, "embedding", "padding_idx", 3)
    _arguments.check_bool_argument(scale_grad_by_freq, "embedding", "scale_grad_by_freq", 4)
    _arguments.check_bool_argument(sparse, "embedding", "sparse", 5)
    return padding_idx


class Embedding(_Table):
    """``torch.nn.Embedding`` with native kernels; a drop-in (see the module doc).

    ``Embedding(num_embeddings, embedding_dim, padding_idx=None, max_norm=None, norm_type=2.0,
    scale_grad_by_freq=False, sparse=False, _weight=None, device=None, dtype=None)``

    Attributes:
        weight: the ``(num_embeddings, embedding_dim)`` float32 Parameter, N(0, 1) initialised
            with the padding row zeroed (or ``_weight`` itself, not zeroed).
        num_embeddings, embedding_dim, padding_idx (normalised), max_norm, norm_type,
        scale_grad_by_freq, sparse: as in torch.
    """

    __constants__ = ["num_embeddings", "embedding_dim", "padding_idx", "max_norm", "norm_type",
                     "scale_grad_by_freq", "sparse"]

    def __init__(self, num_embeddings, embedding_dim, padding_idx=None, max_norm=None, norm_type=2.0,
                 scale_grad_by_freq=False, sparse=False, _weight=None, device=None, dtype=None):
        factory_kwargs = {"device": device, "dtype": dtype}
        super().__init__()
        self.num_embeddings = num_embeddings
        self.embedding_dim = embedding_dim
        self.padding_idx = _normalize_padding_idx(padding_idx, num_embeddings)
        self.max_norm = max_norm
        self.norm_type = norm_type
        self.scale_grad_by_freq = scale_grad_by_freq
        if _weight is None:
            # Created as torch does first, so torch's own errors (negative sizes, integer dtypes)
            # come out unchanged; then the table-type check.
            weight = torch.empty((num_embeddings, embedding_dim), **factory_kwargs)
            self.weight = Parameter(weight)
            _check_table_type(self.weight.dtype)
            self.reset_parameters()
        else:
            if list(_weight.shape) != [num_embeddings, embedding_dim]:
                raise AssertionError("Shape of weight does not match num_embeddings and embedding_dim")
            self.weight = Parameter(_weight)
            _check_table_type(self.weight.dtype)
        self.sparse = sparse


    def forward(self, input):
        return embedding(input, self.weight, self.padding_idx, self.max_norm, self.norm_type,
                         self.scale_grad_by_freq, self.sparse)

    def extra_repr(self):
        """torch's argument list (see _repr)."""
        return embedding_extra_repr(self)

    @classmethod
    def from_pretrained(cls, embeddings, freeze=True, padding_idx=None, max_norm=None, norm_type=2.0,
                        scale_grad_by_freq=False, sparse=False):
        """An Embedding whose weight shares ``embeddings``' storage; ``freeze`` sets
        ``weight.requires_grad = not freeze``; the padding row is not zeroed (as in torch)."""
        if embeddings.dim() != 2:
            raise AssertionError("Embeddings parameter is expected to be 2-dimensional")
        rows, cols = embeddings.shape
        module = cls(num_embeddings=rows, embedding_dim=cols, _weight=embeddings, padding_idx=padding_idx,
                     max_norm=max_norm, norm_type=norm_type, scale_grad_by_freq=scale_grad_by_freq, sparse=sparse)
        module.weight.requires_grad = not freeze
        return module


# ---- EmbeddingBag ------------------------------------------------------------------------------------


def _bag_normalize_padding_idx(padding_idx, num_embeddings):
    """nn.EmbeddingBag's Python-level check: lower-case "padding_idx must be within num_embeddings"."""
    return padding_row(padding_idx, num_embeddings, module_range_error(BagPaddingIndexError))


class _EmbeddingBagFunction(torch.autograd.Function):
    """``F.embedding_bag`` after its checks: ``call`` is a validated ``_ops.embedding_bag.BagCall`` (it
    holds the indices, offsets and the emb_bags pointing into them). Inputs that can need a
    gradient: ``weight`` and ``per_sample_weights`` (None when not given)."""

    @staticmethod
    def forward(ctx, weight, per_sample_weights, call):
        # The max backward needs the arg-max rows only when the weight wants a gradient.
        output, max_indices = call.forward(want_max_indices=ctx.needs_input_grad[0])
        ctx.call = call
        ctx.max_indices = max_indices
        ctx.psw_shape = None if per_sample_weights is None else per_sample_weights.shape
        # Saved (so an in-place change before backward raises torch's error): the weight when the
        # psw gradient needs it, the psw when the weight gradient is scaled by it.
        ctx.save_for_backward(weight if ctx.needs_input_grad[1] else None,
                              per_sample_weights if ctx.needs_input_grad[0] else None)
        return output

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_output):
        weight, _ = ctx.saved_tensors
        call = ctx.call
        layout = call.layout
        grad_output = grad_output.contiguous()
        grad_weight = grad_psw = None
        if ctx.needs_input_grad[0]:
            if call.sparse:
                grad_weight = _bag_sparse_gradient(grad_output, call)
            else:
                # New zeros accumulated into: the same bits as overwriting, without a second clear.
                grad_weight = _new_result((call.num_embeddings, call.embedding_dim), _type_name(grad_output), True,
                                          zeroed=True)
                flags = _native.EMB_ACCUMULATE | (_native.EMB_SCALE_GRAD_BY_FREQ if call.scale_grad_by_freq else 0)
                max_address = ctx.max_indices.data_ptr() if ctx.max_indices is not None else None
                status = _native.emb_embedding_bag_backward(
                    grad_output.data_ptr(), _type_code(grad_output), call.num_embeddings, call.embedding_dim,
                    ctypes.byref(layout.bags), call.mode, max_address, flags, grad_weight.data_ptr(), grad_weight.numel())
                if status:
                    _raise_bag_status(status)
        if ctx.needs_input_grad[1]:
            table = weight.detach().contiguous()
            grad_psw = torch.empty((layout.num_indices,), dtype=grad_output.dtype)
            status = _native.emb_embedding_bag_per_sample_weights_backward(
                grad_output.data_ptr(), _type_code(grad_output), table.data_ptr(), call.num_embeddings,
                call.embedding_dim, ctypes.byref(layout.bags), call.mode, grad_psw.data_ptr(), layout.num_indices)
            if status:
                _raise_bag_status(status)
            grad_psw = grad_psw.reshape(ctx.psw_shape)
        return grad_weight, grad_psw, None


def _bag_sparse_gradient(grad_output, call):
    """torch's _embedding_bag_sparse_backward: uncoalesced COO, one entry per non-padding position
    in position order; (1, 0)/(0, D) when nothing remains."""
    if call.scale_grad_by_freq:
        raise _error(EmbeddingRuntimeError, EMB_ERROR_INVALID_ARGUMENT, _SPARSE_SCALE_MESSAGE)
    layout = call.layout
    dim = call.embedding_dim
    capacity = layout.num_indices
    rows = torch.empty((capacity,), dtype=torch.int64)
    values = torch.empty((capacity, dim), dtype=grad_output.dtype)
    nnz = ctypes.c_int64()
    status = _native.emb_embedding_bag_backward_sparse(
        grad_output.data_ptr(), _type_code(grad_output), call.num_embeddings, dim, ctypes.byref(layout.bags),
        call.mode, 0, rows.data_ptr(), values.data_ptr(), capacity, ctypes.byref(nnz))
    if status:
        _raise_bag_status(status)
    n = nnz.value
    if n == 0 or dim == 0:
        rows = torch.empty((0,), dtype=torch.int64)
        values = torch.empty((0, dim), dtype=grad_output.dtype)
    elif n != capacity:
        rows, values = rows[:n], values[:n]
    return torch.sparse_coo_tensor(rows.unsqueeze(0), values, (call.num_embeddings, dim))


def embedding_bag(input, weight, offsets=None, max_norm=None, norm_type=2, scale_grad_by_freq=False, mode="mean",
                  sparse=False, per_sample_weights=None, include_last_offset=False, padding_idx=None):
    """``torch.nn.functional.embedding_bag`` with the native forward and backward.

    The checks, their order and the exceptions are torch 1.13's (``functional.embedding_bag``);
    ``weight`` must be a float16/32/64 CPU tensor. Gradients: weight (dense, or torch's uncoalesced
    sparse COO with ``sparse=True``) and ``per_sample_weights`` when it requires grad (also with
    a frozen weight, which torch 1.13 rejects with an INTERNAL ASSERT). With ``max_norm`` the
    referenced rows of ``weight`` are renormalised in place once every check has passed.
    """
    if not (isinstance(input, _Tensor) and isinstance(weight, _Tensor)
            and (offsets is None or isinstance(offsets, _Tensor))
            and (per_sample_weights is None or isinstance(per_sample_weights, _Tensor))):
        # Not tensors (numpy arrays, lists): F.embedding_bag fails on them in its Python code
        # (AttributeError, TypeError, ValueError, depending on which it touches first) or in its
        # argument parser, before it changes anything; it is run for that error (or, for objects
        # that override torch functions, for their result).
        return torch.nn.functional.embedding_bag(input, weight, offsets, max_norm, norm_type, scale_grad_by_freq,
                                                 mode, sparse, per_sample_weights, include_last_offset, padding_idx)
    call = _prepare_embedding_bag(input, weight, offsets, max_norm, norm_type, scale_grad_by_freq, mode,
                                              sparse, per_sample_weights, include_last_offset, padding_idx)
    if torch.is_grad_enabled() and (weight.requires_grad or (per_sample_weights is not None
                                                             and per_sample_weights.requires_grad)):
        _check_table_type(weight.dtype, _BAG_TRAINING_TYPES)
    if max_norm is not None:
        with torch.no_grad():
            call.renorm()
    return _EmbeddingBagFunction.apply(call.weight, per_sample_weights, call)


class EmbeddingBag(_Table):
    """``torch.nn.EmbeddingBag`` with native kernels; a drop-in.

    ``EmbeddingBag(num_embeddings, embedding_dim, max_norm=None, norm_type=2.0,
    scale_grad_by_freq=False, mode='mean', sparse=False, _weight=None, include_last_offset=False,
    padding_idx=None, device=None, dtype=None)``; ``forward(input, offsets=None,
    per_sample_weights=None)``. Constructor checks (padding_idx: AssertionError "padding_idx must
    be within num_embeddings"), ``reset_parameters`` (N(0, 1), torch's RNG stream, padding row
    zeroed), ``from_pretrained`` (shared, not zeroed), ``extra_repr`` and the state dict are
    torch's; weight float16, float32 or float64.
    """

    __constants__ = ["num_embeddings", "embedding_dim", "max_norm", "norm_type", "scale_grad_by_freq", "mode",
                     "sparse", "include_last_offset", "padding_idx"]

    def __init__(self, num_embeddings, embedding_dim, max_norm=None, norm_type=2.0, scale_grad_by_freq=False,
                 mode="mean", sparse=False, _weight=None, include_last_offset=False, padding_idx=None,
                 device=None, dtype=None):
        factory_kwargs = {"device": device, "dtype": dtype}
        super().__init__()
        self.num_embeddings = num_embeddings
        self.embedding_dim = embedding_dim
        self.max_norm = max_norm
        self.norm_type = norm_type
        self.scale_grad_by_freq = scale_grad_by_freq
        self.padding_idx = _bag_normalize_padding_idx(padding_idx, num_embeddings)
        # Any float dtype is accepted, as torch does: the forward takes float16, float32 and float64
        # (bfloat16 gets torch 1.13's own refusal) and training checks the type when it starts.
        if _weight is None:
            self.weight = Parameter(torch.empty((num_embeddings, embedding_dim), **factory_kwargs))
            self.reset_parameters()
        else:
            if list(_weight.shape) != [num_embeddings, embedding_dim]:
                raise AssertionError("Shape of weight does not match num_embeddings and embedding_dim")
            self.weight = Parameter(_weight)
        self.mode = mode
        self.sparse = sparse
        self.include_last_offset = include_last_offset


    def forward(self, input, offsets=None, per_sample_weights=None):
        return embedding_bag(input, self.weight, offsets, self.max_norm, self.norm_type, self.scale_grad_by_freq,
                             self.mode, self.sparse, per_sample_weights, self.include_last_offset, self.padding_idx)

    def extra_repr(self):
        """torch's argument list (see _repr)."""
        return embedding_bag_extra_repr(self)

    @classmethod
    def from_pretrained(cls, embeddings, freeze=True, max_norm=None, norm_type=2.0, scale_grad_by_freq=False,
                        mode="mean", sparse=False, include_last_offset=False, padding_idx=None):
        """An EmbeddingBag whose weight shares ``embeddings``' storage; ``freeze`` sets
        ``weight.requires_grad = not freeze``; the padding row is not zeroed (as in torch)."""
        if embeddings.dim() != 2:
            raise AssertionError("Embeddings parameter is expected to be 2-dimensional")
        rows, cols = embeddings.shape
        module = cls(num_embeddings=rows, embedding_dim=cols, _weight=embeddings, max_norm=max_norm,
                     norm_type=norm_type, scale_grad_by_freq=scale_grad_by_freq, mode=mode, sparse=sparse,
                     include_last_offset=include_last_offset, padding_idx=padding_idx)
        module.weight.requires_grad = not freeze
        return module
