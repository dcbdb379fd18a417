"""embedding: ``torch.nn.functional.embedding`` (the lookup), on numpy arrays and CPU tensors.

A call is either *plain* — C-contiguous int32/int64 indices into a non-empty C-contiguous float32
table of the same kind, no options — or *checked*: every check in torch's order first. Both end
in the same native call (:func:`_gather`); the plain one gets there with as little Python as
possible, because a tiny lookup is dominated by it, and leaves every failure of its guard to the
checked path, which reports it.
"""

import math
import sys

import numpy as np

from .. import _numpy_extension, _torch_operators as _operators
from .._bindings import emb_embedding
from .._tables import read_only
from ..errors import EMB_ERROR_INDEX_OUT_OF_RANGE, EMB_ERROR_INVALID_ARGUMENT, EmbeddingRuntimeError
from .arguments import check_bool_argument, int_argument, renorm_arguments
from .buffers import NUMPY, TABLE_DTYPE_NAMES, TORCH, check_out, index_buffer, is_tensor, kind_of
from .failures import error, last_bad_index, native_error, non_strided
from .padding import functional_range_error, padding_row
from .renorm import embedding_renorm_


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
        EmbeddingNotSupportedError (NotImplementedError): weight dtype other than float32, float64,
            float16 or bfloat16 (numpy has no bfloat16),
            tensors not on the CPU, max_norm with a sparse tensor (torch's text).
        TypeError: input, weight or out is neither a numpy array nor a torch tensor; an
            argument of a type torch refuses (torch's text: "embedding(): argument 'sparse'
            (position 5) must be bool, not int").
        Sparse indices raise torch's own error (IndexError for 1-D, RuntimeError otherwise).
    """
    if padding_idx is None and max_norm is None and sparse is False and scale_grad_by_freq is False:
        # Arrays in, an array out: the extension, when it is in use and takes the call.
        if type(input) is _ndarray:
            if _numpy_extension.embedding is not None:
                result = _numpy_extension.embedding(weight, input, out)
                if result is not None:
                    return result
        # Tensors in, a tensor out: the torch extension, when it is in use and takes the call.
        elif _operators.embedding is not None and type(input) is _operators.Tensor and isinstance(weight, _operators.Tensor) \
                and (out is None or (type(out) is _operators.Tensor and not read_only.any_live())):
            result = _operators.embedding(weight, input, out)
            if result is not None:
                return result if out is None else out
        # lookup(input, weight, out), written out: a tiny call pays for every Python call.
        kind = _PLAIN_KINDS.get(type(input)) or plain_kind(type(input))
        operands = None if kind is None else kind.plain_lookup(input, weight)
        if operands is not None:
            shape = input.shape
            return _gather(kind, shape if kind is NUMPY else tuple(shape), out, *operands)
    return _checked_embedding(input, weight, padding_idx, max_norm, norm_type, scale_grad_by_freq, sparse, out)


_ndarray = np.ndarray

# The array types whose plain calls take the short way; torch.Tensor joins when first seen.
_PLAIN_KINDS = {np.ndarray: NUMPY}


def plain_kind(cls):
    """NUMPY for ``numpy.ndarray``, TORCH for ``torch.Tensor`` (exactly these types), else None."""
    kind = _PLAIN_KINDS.get(cls)
    if kind is None and cls.__name__ == "Tensor":
        torch = sys.modules.get("torch")
        if torch is not None and cls is torch.Tensor:
            _PLAIN_KINDS[cls] = kind = TORCH
            _operators.load()
    return kind


def lookup(indices, weight, out=None):
    """:func:`embedding` without options for a plain call (see the module doc), else None: the
    caller then takes the checked path, which handles and reports everything else. A native
    failure, or an unfit ``out``, is raised exactly as the checked path raises it."""
    kind = _PLAIN_KINDS.get(type(indices)) or plain_kind(type(indices))
    if kind is None:
        return None
    operands = kind.plain_lookup(indices, weight)
    if operands is None:
        return None
    shape = indices.shape
    return _gather(kind, shape if kind is NUMPY else tuple(shape), out, *operands)


def _gather(kind, index_shape, out, weight_address, num_embeddings, embedding_dim, weight_dtype,
            index_address, index_dtype, count):
    """The native lookup, for both paths: the result is ``out`` (checked here) or a new array of
    ``kind``. The operands are flat arguments, as the library takes them (tiny calls pay for
    every tuple)."""
    shape = index_shape + (embedding_dim,)
    elements = count * embedding_dim
    if out is None:
        out, out_address = kind.result(shape, elements, weight_dtype)
    else:
        out_address = check_out(out, shape, TABLE_DTYPE_NAMES[weight_dtype])
    status = emb_embedding(weight_address, weight_dtype, num_embeddings, embedding_dim,
                           index_address, index_dtype, count, out_address, elements)
    if status:
        if status == EMB_ERROR_INDEX_OUT_OF_RANGE and embedding_dim == 0:
            raise _zero_width_index_error(num_embeddings)
        raise native_error(status)
    return out


def _checked_embedding(input, weight, padding_idx, max_norm, norm_type, scale_grad_by_freq, sparse, out):
    """Every check in torch's order, then the lookup: padding_idx and max_norm in F.embedding's
    Python code, then the argument types (torch's parser), the weight's rank and the index dtype
    in the ATen op, then index_select's own checks."""
    weight_kind = kind_of(weight)
    if weight_kind is None:
        raise TypeError("embedding(): argument 'weight' must be a numpy.ndarray or torch.Tensor, not %s"
                        % type(weight).__name__)
    weight_shape = tuple(weight.shape)
    if padding_idx is not None and padding_idx != 0:
        if not weight_shape:
            raise IndexError("Dimension specified as 0 but tensor has no dimensions")
        # F.embedding's own assertion, by comparisons as in torch (its type is judged below).
        padding_row(padding_idx, weight_shape[0], functional_range_error)
    if max_norm is not None:
        # embedding_renorm_'s parser and layouts first; then ours for torch.embedding, so that a
        # call that fails renormalises nothing (torch 1.13 renormalises, then raises).
        max_norm, norm_type = renorm_arguments(max_norm, norm_type, weight, input)
    if padding_idx is not None and type(padding_idx) is not int:
        padding_idx = int_argument(padding_idx, "embedding", "padding_idx", 3)
    if not ((scale_grad_by_freq is False or scale_grad_by_freq is True) and (sparse is False or sparse is True)):
        check_bool_argument(scale_grad_by_freq, "embedding", "scale_grad_by_freq", 4)
        check_bool_argument(sparse, "embedding", "sparse", 5)
    if max_norm is not None:
        # F.embedding renormalises before the gather (and before the gather's own checks), on
        # the contiguous input; embedding_renorm_ makes it contiguous the same way.
        embedding_renorm_(weight, input, max_norm, norm_type)
    if len(weight_shape) != 2:
        raise error(EmbeddingRuntimeError, EMB_ERROR_INVALID_ARGUMENT, "'weight' must be 2-D")
    num_embeddings, embedding_dim = weight_shape

    try:
        if not (is_tensor(input) or isinstance(input, (np.ndarray, np.generic))):
            raise TypeError("embedding(): argument 'input' must be a numpy.ndarray or torch.Tensor, not %s"
                            % type(input).__name__)
        index, index_dtype = index_buffer(input)
        count = math.prod(index.shape)
        if num_embeddings == 0 and count != 0:
            raise error(EmbeddingRuntimeError, EMB_ERROR_INDEX_OUT_OF_RANGE,
                        "index_select(): self indexing axis dim should be positive")
        weight_dtype = weight_kind.lookup_code(weight)
        if weight_dtype is None:
            raise weight_kind.unsupported_table(weight, "weight", lookup=True)
        weight_kind.check_device(weight, "weight")
        weight = weight_kind.contiguous(weight)  # documented copy of a non-contiguous table
        weight_address = weight_kind.address(weight)
    except (RuntimeError, NotImplementedError):
        # A sparse (non-strided) weight or input fails in the checks above (no strides, no storage,
        # or a dtype message without torch's "sparse"): what torch does with it instead is
        # torch.embedding's own (its result for a sparse table, its error for sparse indices).
        if non_strided(weight, input) is None:
            raise
        return _embedding_non_strided(input, weight, padding_idx, scale_grad_by_freq, sparse, out)
    return _gather(weight_kind, index.shape, out, weight_address, num_embeddings, embedding_dim, weight_dtype,
                   index.address, index_dtype, count)


def _embedding_non_strided(input, weight, padding_idx, scale_grad_by_freq, sparse, out):
    """A sparse (or other non-strided) weight or input: what torch.embedding does with it, which is
    torch's index_select on those layouts (no native kernel applies). A sparse weight gives torch's
    sparse result; a sparse input, torch's error (IndexError for 1-D, RuntimeError otherwise)."""
    torch = sys.modules["torch"]
    if isinstance(weight, np.ndarray):
        weight = torch.from_numpy(weight)
    if not is_tensor(input):
        if not isinstance(input, (np.ndarray, np.generic)):
            raise TypeError("embedding(): argument 'input' must be a numpy.ndarray or torch.Tensor, not %s"
                            % type(input).__name__)
        input = torch.from_numpy(NUMPY.indices(input, "embedding", 1)[0])
    row = padding_row(padding_idx, weight.shape[0], functional_range_error)
    result = torch.embedding(weight.detach(), input, -1 if row is None else row, scale_grad_by_freq, sparse)
    if out is not None:
        raise error(EmbeddingRuntimeError, EMB_ERROR_INVALID_ARGUMENT,
                    "out= cannot hold the %s result of a %s weight" % (result.layout, weight.layout))
    return result


def _zero_width_index_error(num_embeddings):
    """torch 1.13 reports a bad index into a table with no columns from another code path: a
    RuntimeError naming the first bad value, which the library reports (no scan here)."""
    bad = last_bad_index()
    if bad is None:
        return native_error(EMB_ERROR_INDEX_OUT_OF_RANGE)
    return error(EmbeddingRuntimeError, EMB_ERROR_INDEX_OUT_OF_RANGE,
                 "INDICES element is out of DATA bounds, id=%d axis_dim=%d" % (bad[1], num_embeddings))
