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
    double backward (the gradient is linear in grad_output, so its derivative is a lookup again):
        d/d grad_output = the native lookup of the incoming (V, D) gradient's rows, zero at padding
                          positions, scale_grad_by_freq ignored (torch's embedding_dense_double_backward);
                          differentiable again (dense), torch's RuntimeError at a third order (sparse)

EmbeddingBag's gradients are differentiable where torch 1.13's are: the sparse weight gradient
(sum, mean, with per_sample_weights) has the bag of the incoming rows (the native bag forward)
as its derivative with respect to grad_output, and the native per_sample_weights backward with
respect to per_sample_weights. The dense weight gradient (any mode) and the per_sample_weights
gradient are not differentiable in torch 1.13: the second derivative raises torch's RuntimeError
("derivative for _embedding_bag_dense_backward is not implemented", and for
aten::_embedding_bag_per_sample_weights_backward) when it is taken.

The modules pickle, deep-copy and ``torch.save`` as torch's do, and their state dicts are torch's
(keys, dtypes, shapes), so checkpoints load strictly both ways. For torch.jit the functions are
also the dispatcher's operators ``torch.ops.embedding_native.embedding`` / ``embedding_bag``
(see _library): ``torch.jit.trace`` records them, TorchScript compiles the modules' and the
functionals' calls to them, and a saved graph loads after ``import embedding_native.torch``.

Differences from torch, all of them errors rather than silent fallbacks:

* weight must be on the CPU. Embedding trains float32, float64, float16 and bfloat16 tables;
  EmbeddingBag float16, float32 and float64 (bfloat16: torch 1.13's own RuntimeError); the types
  come from the library's build_info()["table_dtypes"].
* A sparse bag's double backward rounds like the forward (an FMA per weighted term, the mean's
  sum divided once), where torch rounds each term first: within the bag bound, bit for bit for
  unweighted sums (docs/divergences.md).
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
from typing import Optional

import torch
from torch.nn import Parameter, init

from .. import _bindings as _native
from .. import functional as _functional
from .._ops import arguments as _arguments
from .. import _torch_operators as _operators
from .._ops.embedding import lookup as _lookup
from .._ops.embedding_bag import prepare_embedding_bag as _prepare_embedding_bag
from .._ops.failures import error as _error, layout_error as _layout_error, non_strided as _non_strided, \
    raise_bag_status as _raise_bag_status
from .._ops.padding import module_range_error, padding_row
from .._progress import Progress, blocks
from .._tables import read_only as _read_only_mapping
from .._ops.buffers import TABLE_DTYPES as _TABLE_DTYPES
from .._results import new_result as _new_result
from ..errors import (
    EMB_ERROR_INVALID_ARGUMENT, EMB_ERROR_NOT_SUPPORTED, EMB_ERROR_UNSUPPORTED_DTYPE,
    BagPaddingIndexError, EmbeddingNotSupportedError, EmbeddingRuntimeError, PaddingIndexError,
)
from .._repr import embedding_bag_extra_repr, embedding_extra_repr
from . import _library

__all__ = ["Embedding", "embedding", "EmbeddingBag", "embedding_bag"]

_Tensor = torch.Tensor
_STRIDED = torch.strided
_get_tracing_state = torch._C._get_tracing_state
_operators.load()  # torch is imported: the torch extension serves the drop-ins from their first call
#: ``reset_parameters`` draws this many bytes of samples at a time (rounded to 16 elements).
_INIT_BLOCK_BYTES = 16 << 20
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


def _check_trainable(embeddings, freeze, max_norm):
    """``from_pretrained`` of a tensor over a read-only table mapping (``tables.load``'s default)
    works for inference; training it or renormalising its rows would write into the mapping, which
    crashes the process, so that is refused here with the way out."""
    if freeze and max_norm is None:
        return
    if embeddings.layout == _STRIDED and _read_only_mapping.overlaps(
            embeddings.data_ptr(), embeddings.numel() * embeddings.element_size()):
        use = "freeze=False (training)" if not freeze else "max_norm (rows renormalised in place)"
        raise ValueError("embeddings lie in a read-only table mapping, so %s would write into it; load the "
                         "table with embedding_native.tables.load(path, writable=True)" % use)


class _Table(torch.nn.Module):
    """What the two drop-in modules share: torch's initialisation of ``weight`` and ``padding_idx``."""

    def reset_parameters(self):
        """``init.normal_(weight)`` (the same RNG stream as torch), then the padding row zeroed.

        A contiguous CPU table is drawn a block at a time, so a table of a gigabyte or more shows
        a progress bar on a terminal (_progress). The values are ``init.normal_``'s, bit for bit:
        torch 1.13's CPU ``normal_`` draws its uniforms in order and transforms them 16 at a time,
        redrawing the last 16 of a tensor whose size is not a multiple of 16, so blocks of a
        multiple of 16 elements, the last one at least 16 long, consume the stream exactly as one
        call does (tests/python/test_table_init.py checks it against torch.nn.Embedding)."""
        weight = self.weight
        if weight.device.type != "cpu" or not weight.is_contiguous():
            init.normal_(weight)
        else:
            flat = weight.detach().view(-1)
            block = max(_INIT_BLOCK_BYTES // flat.element_size() // 16, 1) * 16
            label = "initialising %s(%d, %d)" % (type(self).__name__, self.num_embeddings, self.embedding_dim)
            with torch.no_grad(), Progress(label, flat.numel() * flat.element_size()) as progress:
                for start, stop in blocks(flat.numel(), block):
                    flat[start:stop].normal_()
                    progress.advance((stop - start) * flat.element_size())
        self._fill_padding_idx_with_zero()

    def _fill_padding_idx_with_zero(self):
        if self.padding_idx is not None:
            with torch.no_grad():
                self.weight[self.padding_idx].fill_(0)


class _Gradient(torch.autograd.Function):
    """A gradient that is itself differentiable: ``compute(*inputs)`` the numbers, ``forward``
    what its backward needs besides. ``of(*inputs)`` records the node only when a graph of the
    gradient is being built (``create_graph=True``: grad mode is on inside a backward then);
    otherwise the first-order backward runs the computation alone, as before."""

    @classmethod
    def of(cls, *inputs):
        return cls.apply(*inputs) if torch.is_grad_enabled() else cls.compute(*inputs)


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
    def backward(ctx, grad_output):
        indices, = ctx.saved_tensors
        if not ctx.needs_input_grad[0]:
            return None, None, None, None, None
        gradient = _EmbeddingSparseGradient if ctx.sparse else _EmbeddingDenseGradient
        grad = gradient.of(grad_output, indices, ctx.num_weights, ctx.embedding_dim, ctx.padding_idx,
                           ctx.scale_grad_by_freq)
        return grad, None, None, None, None


class _EmbeddingDenseGradient(_Gradient):
    """torch's embedding_dense_backward: the dense (V, D) weight gradient, linear in grad_output;
    its own backward is torch's embedding_dense_double_backward (see _embedding_double_backward)."""

    @staticmethod
    def compute(grad_output, indices, num_weights, embedding_dim, padding_idx, scale_grad_by_freq):
        return _functional.embedding_backward(grad_output.contiguous(), indices, num_weights, padding_idx,
                                              scale_grad_by_freq)

    @staticmethod
    def forward(ctx, grad_output, indices, num_weights, embedding_dim, padding_idx, scale_grad_by_freq):
        ctx.save_for_backward(indices)
        ctx.padding_idx = padding_idx
        return _EmbeddingDenseGradient.compute(grad_output, indices, num_weights, embedding_dim, padding_idx,
                                               scale_grad_by_freq)

    @staticmethod
    def backward(ctx, grad_grad_weight):
        indices, = ctx.saved_tensors
        return _embedding_double_backward(grad_grad_weight, indices, ctx.padding_idx), None, None, None, None, None


class _EmbeddingSparseGradient(_Gradient):
    """torch's embedding_sparse_backward (see _sparse_gradient); its backward is the dense one's, as
    torch's (sparse_coo_tensor's values backward, then index's) gives the same gather."""

    @staticmethod
    def compute(grad_output, indices, num_weights, embedding_dim, padding_idx, scale_grad_by_freq):
        return _sparse_gradient(grad_output, indices, num_weights, embedding_dim, padding_idx, scale_grad_by_freq)

    @staticmethod
    def forward(ctx, grad_output, indices, num_weights, embedding_dim, padding_idx, scale_grad_by_freq):
        ctx.save_for_backward(indices)
        ctx.padding_idx = padding_idx
        return _EmbeddingSparseGradient.compute(grad_output, indices, num_weights, embedding_dim, padding_idx,
                                                scale_grad_by_freq)

    @staticmethod
    def backward(ctx, grad_grad_weight):
        indices, = ctx.saved_tensors
        return (_embedding_double_backward(_sparse_incoming_rows(grad_grad_weight), indices, ctx.padding_idx),
                None, None, None, None, None)


_SPARSE_TRIPLE_BACKWARD_MESSAGE = "derivative for aten::_sparse_mask_helper is not implemented"


class _SparseIncomingRows(torch.autograd.Function):
    """The gradient arriving at a sparse weight gradient, as a dense table. torch differentiates
    it no further (sparse_coo_tensor's values backward, _sparse_mask_helper, has no derivative):
    a derivative with respect to it raises torch's RuntimeError."""

    @staticmethod
    def forward(ctx, grad_grad_weight):
        return grad_grad_weight.to_dense() if grad_grad_weight.layout is not _STRIDED else grad_grad_weight.clone()

    @staticmethod
    def backward(ctx, grad):
        raise _error(EmbeddingRuntimeError, EMB_ERROR_NOT_SUPPORTED, _SPARSE_TRIPLE_BACKWARD_MESSAGE)


def _sparse_incoming_rows(grad_grad_weight):
    """``grad_grad_weight`` dense, through _SparseIncomingRows when a graph is being recorded for it."""
    if grad_grad_weight.requires_grad and torch.is_grad_enabled():
        return _SparseIncomingRows.apply(grad_grad_weight)
    return grad_grad_weight.to_dense() if grad_grad_weight.layout is not _STRIDED else grad_grad_weight


def _embedding_double_backward(grad_grad_weight, indices, padding_idx):
    """torch's embedding_dense_double_backward: the rows of grad_grad_weight at ``indices`` (the
    native lookup, itself differentiable again), zero at padding positions. Like torch's (which
    takes no scale argument) it ignores scale_grad_by_freq, so with it the second derivative is
    torch's, not the transpose of the first (docs/divergences.md)."""
    if grad_grad_weight.layout is not _STRIDED:
        grad_grad_weight = grad_grad_weight.to_dense()
    rows = _EmbeddingFunction.apply(grad_grad_weight, indices, -1, False, False)
    if padding_idx is not None:
        rows = rows.masked_fill((indices == padding_idx).unsqueeze(-1), 0)
    return rows


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


def embedding(input: _Tensor, weight: _Tensor, padding_idx: Optional[int] = None, max_norm: Optional[float] = None,
              norm_type: float = 2.0, scale_grad_by_freq: bool = False, sparse: bool = False) -> _Tensor:
    """``torch.nn.functional.embedding`` with the native forward and backward (see the module doc).

    Same arguments, order of checks and errors as F.embedding in torch 1.13; ``weight`` must be a
    float32, float64, float16 or bfloat16 CPU tensor. With ``max_norm`` the referenced rows of
    ``weight`` are renormalised in place before the lookup. Under ``torch.jit.trace`` the call
    goes through the operator ``torch.ops.embedding_native.embedding`` (see _library), which
    the graph records; TorchScript compiles the call to that operator (the annotations are its
    schema's types).
    """
    if torch.jit.is_scripting():
        return torch.ops.embedding_native.embedding(
            weight, input, _library.operator_padding_idx(padding_idx, weight.size(0)), max_norm, norm_type,
            scale_grad_by_freq, sparse)
    else:
        if (padding_idx is None and max_norm is None and scale_grad_by_freq is False and sparse is False
                and type(input) is _Tensor and isinstance(weight, _Tensor) and _operators.Tensor is not None
                and _get_tracing_state() is None):
            # A plain call straight to the operators (the checks below pass it unchanged; a refusal goes
            # on to them): a tiny lookup costs little more than torch's.
            result = (_operators.trainable_embedding(weight, input, -1, False)
                      if weight.requires_grad and torch.is_grad_enabled() else _operators.embedding(weight, input, None))
            if result is not None:
                return result
        return _traced_or_eager_embedding(input, weight, padding_idx, max_norm, norm_type, scale_grad_by_freq,
                                          sparse)


def _traced_or_eager_embedding(input, weight, padding_idx, max_norm, norm_type, scale_grad_by_freq, sparse):
    if _library.is_tracing() and isinstance(weight, _Tensor) and (padding_idx is None or type(padding_idx) is int):
        # (Untraced: a traced weight's size would be recorded, and compared as a tensor.)
        padding = _library.untraced(_normalize_padding_idx, padding_idx, weight.shape[0]) \
            if padding_idx is not None else -1
        if _library.traceable_embedding(weight, input, padding, max_norm, norm_type, scale_grad_by_freq, sparse):
            return _library.operators.embedding(weight, input, padding, max_norm, norm_type, scale_grad_by_freq,
                                                sparse)
    return _eager_embedding(input, weight, padding_idx, max_norm, norm_type, scale_grad_by_freq, sparse)


def _eager_embedding(input, weight, padding_idx, max_norm, norm_type, scale_grad_by_freq, sparse):
    """:func:`embedding` itself (also the kernel of the dispatcher's operator)."""
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
    if sparse is False and _operators.trainable_embedding is not None and type(input) is _Tensor:
        # The C++ autograd function (interop/torch): the same kernels, no Python in forward or backward.
        result = _operators.trainable_embedding(weight, input, padding_idx, scale_grad_by_freq)
        if result is not None:
            return result
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


    def forward(self, input: _Tensor) -> _Tensor:
        if torch.jit.is_scripting():
            # TorchScript compiles this branch only: the dispatcher's operator (see _library).
            return torch.ops.embedding_native.embedding(
                self.weight, input, -1 if self.padding_idx is None else self.padding_idx, self.max_norm,
                self.norm_type, self.scale_grad_by_freq, self.sparse)
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
        _check_trainable(embeddings, freeze, max_norm)
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
    def backward(ctx, grad_output):
        weight, per_sample_weights = ctx.saved_tensors
        call = ctx.call
        grad_weight = grad_psw = None
        if ctx.needs_input_grad[0]:
            if call.sparse:
                grad_weight = _BagSparseWeightGradient.of(grad_output, per_sample_weights, call)
            else:
                grad_weight = _BagDenseWeightGradient.of(grad_output, per_sample_weights, call, ctx.max_indices)
        if ctx.needs_input_grad[1]:
            grad_psw = _BagPerSampleWeightsGradient.of(grad_output, weight, call, ctx.psw_shape)
        return grad_weight, grad_psw, None


#: torch 1.13's texts (RuntimeError) for the bag gradients it cannot differentiate again: the
#: dense weight gradient (_embedding_bag_dense_backward) and the per_sample_weights gradient.
_DENSE_DOUBLE_BACKWARD_MESSAGE = "derivative for _embedding_bag_dense_backward is not implemented"
_PSW_DOUBLE_BACKWARD_MESSAGE = "derivative for aten::_embedding_bag_per_sample_weights_backward is not implemented"


class _BagDenseWeightGradient(_Gradient):
    """torch's _embedding_bag_dense_backward natively (inputs that can need a gradient:
    grad_output, per_sample_weights). Its derivative is not implemented in torch 1.13: like
    torch's NotImplemented node, the graph is recorded and differentiating it raises torch's
    RuntimeError (docs/divergences.md)."""

    @staticmethod
    def forward(ctx, grad_output, per_sample_weights, call, max_indices):
        return _BagDenseWeightGradient.compute(grad_output, per_sample_weights, call, max_indices)

    @staticmethod
    def compute(grad_output, per_sample_weights, call, max_indices):
        grad_output = grad_output.contiguous()
        # New zeros accumulated into: the same bits as overwriting, without a second clear.
        grad_weight = _new_result((call.num_embeddings, call.embedding_dim), _type_name(grad_output), True,
                                  zeroed=True)
        flags = _native.EMB_ACCUMULATE | (_native.EMB_SCALE_GRAD_BY_FREQ if call.scale_grad_by_freq else 0)
        max_address = max_indices.data_ptr() if max_indices is not None else None
        status = _native.emb_embedding_bag_backward(
            grad_output.data_ptr(), _type_code(grad_output), call.num_embeddings, call.embedding_dim,
            ctypes.byref(call.layout.bags), call.mode, max_address, flags, grad_weight.data_ptr(), grad_weight.numel())
        if status:
            _raise_bag_status(status)
        return grad_weight

    @staticmethod
    def backward(ctx, grad_grad_weight):
        raise _error(EmbeddingRuntimeError, EMB_ERROR_NOT_SUPPORTED, _DENSE_DOUBLE_BACKWARD_MESSAGE)


class _BagPerSampleWeightsGradient(_Gradient):
    """torch's _embedding_bag_per_sample_weights_backward natively: per position, the dot product
    of its table row with its bag's gradient (0 at padding positions). Not differentiable again
    in torch 1.13: differentiating it raises torch's RuntimeError."""

    @staticmethod
    def forward(ctx, grad_output, table, call, psw_shape):
        return _BagPerSampleWeightsGradient.compute(grad_output, table, call, psw_shape)

    @staticmethod
    def compute(grad_output, table, call, psw_shape):
        grad_output = grad_output.contiguous()
        table = table.detach().contiguous()
        layout = call.layout
        grad_psw = torch.empty((layout.num_indices,), dtype=grad_output.dtype)
        status = _native.emb_embedding_bag_per_sample_weights_backward(
            grad_output.data_ptr(), _type_code(grad_output), table.data_ptr(), call.num_embeddings,
            call.embedding_dim, ctypes.byref(layout.bags), call.mode, grad_psw.data_ptr(), layout.num_indices)
        if status:
            _raise_bag_status(status)
        return grad_psw.reshape(psw_shape)

    @staticmethod
    def backward(ctx, grad_grad_psw):
        raise _error(EmbeddingRuntimeError, EMB_ERROR_NOT_SUPPORTED, _PSW_DOUBLE_BACKWARD_MESSAGE)


class _BagSparseWeightGradient(_Gradient):
    """torch's _embedding_bag_sparse_backward (see _bag_sparse_gradient), linear in grad_output
    and in per_sample_weights. torch builds it from differentiable ops, so it has a derivative:
    with respect to grad_output, the bag (same mode, offsets, padding and weights) of the
    incoming gradient's rows; with respect to per_sample_weights, per position the dot product
    of that gradient's row with its bag's grad_output (the per_sample_weights backward with the
    incoming gradient as the table)."""

    @staticmethod
    def forward(ctx, grad_output, per_sample_weights, call):
        ctx.call = call
        ctx.psw_shape = None if per_sample_weights is None else per_sample_weights.shape
        ctx.save_for_backward(grad_output if ctx.needs_input_grad[1] else None,
                              per_sample_weights if ctx.needs_input_grad[0] else None)
        return _BagSparseWeightGradient.compute(grad_output, per_sample_weights, call)

    @staticmethod
    def compute(grad_output, per_sample_weights, call):
        return _bag_sparse_gradient(grad_output.contiguous(), call)

    @staticmethod
    def backward(ctx, grad_grad_weight):
        grad_output, per_sample_weights = ctx.saved_tensors
        table = _sparse_incoming_rows(grad_grad_weight)
        grad_grad_output = grad_grad_psw = None
        if ctx.needs_input_grad[0]:
            grad_grad_output = _EmbeddingBagFunction.apply(table, per_sample_weights, _bag_call_on(ctx.call, table))
        if ctx.needs_input_grad[1]:
            grad_grad_psw = _BagPerSampleWeightsGradient.of(grad_output, table, ctx.call, ctx.psw_shape)
        return grad_grad_output, grad_grad_psw, None


def _bag_call_on(call, table):
    """``call`` (its bags, mode, padding and per_sample_weights) over another table of the same
    shape and dtype, without max_norm."""
    other = type(call)()
    for name in type(call).__slots__:
        setattr(other, name, getattr(call, name))
    other.weight = table
    other.max_norm = None
    return other


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


def embedding_bag(input: _Tensor, weight: _Tensor, offsets: Optional[_Tensor] = None, max_norm: Optional[float] = None,
                  norm_type: float = 2, scale_grad_by_freq: bool = False, mode: str = "mean", sparse: bool = False,
                  per_sample_weights: Optional[_Tensor] = None, include_last_offset: bool = False,
                  padding_idx: Optional[int] = None) -> _Tensor:
    """``torch.nn.functional.embedding_bag`` with the native forward and backward.

    The checks, their order and the exceptions are torch 1.13's (``functional.embedding_bag``);
    ``weight`` must be a float16/32/64 CPU tensor. Gradients: weight (dense, or torch's uncoalesced
    sparse COO with ``sparse=True``) and ``per_sample_weights`` when it requires grad (also with
    a frozen weight, which torch 1.13 rejects with an INTERNAL ASSERT). With ``max_norm`` the
    referenced rows of ``weight`` are renormalised in place once every check has passed. Under
    ``torch.jit.trace`` the call goes through ``torch.ops.embedding_native.embedding_bag``, and
    TorchScript compiles the call to it.
    """
    if torch.jit.is_scripting():
        return torch.ops.embedding_native.embedding_bag(weight, input, offsets, max_norm, norm_type,
                                                        scale_grad_by_freq, mode, sparse, per_sample_weights,
                                                        include_last_offset, padding_idx)
    else:
        return _traced_or_eager_embedding_bag(input, weight, offsets, max_norm, norm_type, scale_grad_by_freq, mode,
                                              sparse, per_sample_weights, include_last_offset, padding_idx)


def _traced_or_eager_embedding_bag(input, weight, offsets, max_norm, norm_type, scale_grad_by_freq, mode, sparse,
                                   per_sample_weights, include_last_offset, padding_idx):
    if _library.is_tracing() and _library.traceable_embedding_bag(
            input, weight, offsets, max_norm, norm_type, scale_grad_by_freq, mode, sparse, per_sample_weights,
            include_last_offset, padding_idx):
        return _library.operators.embedding_bag(weight, input, offsets, max_norm, norm_type, scale_grad_by_freq,
                                                mode, sparse, per_sample_weights, include_last_offset, padding_idx)
    return _eager_embedding_bag(input, weight, offsets, max_norm, norm_type, scale_grad_by_freq, mode, sparse,
                                per_sample_weights, include_last_offset, padding_idx)


def _eager_embedding_bag(input, weight, offsets, max_norm, norm_type, scale_grad_by_freq, mode, sparse,
                         per_sample_weights, include_last_offset, padding_idx):
    """:func:`embedding_bag` itself (also the kernel of the dispatcher's operator)."""
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


    def forward(self, input: _Tensor, offsets: Optional[_Tensor] = None,
                per_sample_weights: Optional[_Tensor] = None) -> _Tensor:
        if torch.jit.is_scripting():
            # TorchScript compiles this branch only: the dispatcher's operator (see _library).
            return torch.ops.embedding_native.embedding_bag(
                self.weight, input, offsets, self.max_norm, self.norm_type, self.scale_grad_by_freq, self.mode,
                self.sparse, per_sample_weights, self.include_last_offset, self.padding_idx)
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
        _check_trainable(embeddings, freeze, max_norm)
        module = cls(num_embeddings=rows, embedding_dim=cols, _weight=embeddings, max_norm=max_norm,
                     norm_type=norm_type, scale_grad_by_freq=scale_grad_by_freq, mode=mode, sparse=sparse,
                     include_last_offset=include_last_offset, padding_idx=padding_idx)
        module.weight.requires_grad = not freeze
        return module
