"""embedding_renorm_: ``torch.embedding_renorm_``, rows of a table rescaled in place."""

import math
import sys

import numpy as np

from .. import _torch_operators as _operators
from .._bindings import emb_embedding_renorm, emb_embedding_renorm_strided_rows
from .._tables import read_only
from ..errors import EMB_ERROR_INVALID_ARGUMENT, EmbeddingRuntimeError
from .arguments import float_argument
from .buffers import float_buffer, index_buffer, kind_of
from .failures import error, layout_error, native_error, non_strided

# The argument types the operator takes as they are (anything else goes the checked way).
_NUMBERS = (float, int)


def embedding_renorm_(weight, indices, max_norm, norm_type=2.0):
    """``torch.embedding_renorm_``: rescales referenced rows of ``weight`` in place::

        for each distinct k in indices, ascending:
            n = ||weight[k]||_p                  (p = norm_type; inf, -inf, 0, any real p)
            if n > max_norm: weight[k] *= fl32(max_norm / (n + 1e-7))

    Every table type (float32, float64, float16, bfloat16) is bit-identical to torch 1.13: the norm
    is computed as torch's ``row.norm(p)`` computes it for the type, ``norm_type`` taken as a float
    (docs/table-types.md, docs/exactness.md#max_norm). The float32 2-norm follows the ATen kernels
    torch runs in this process (``ATEN_CPU_CAPABILITY``, else AVX2 on an AVX2 + FMA CPU, else the
    default ones). A non-contiguous ``weight`` is renormalised through a contiguous copy; when its
    rows are strided (a transposed view) the copy is renormalised with torch's norms of strided rows
    (its scalar 2-norm kernel, emb_embedding_renorm_strided_rows).
    Unlike torch 1.13, every index is checked before any row changes: a bad index raises IndexError
    and leaves ``weight`` untouched. ``indices`` is never modified.

    Args:
        weight: 2-D float32/float64/float16 numpy array or CPU tensor (also bfloat16), written in place (a non-contiguous one
            through a contiguous copy that is written back). A tensor's autograd version
            counter is bumped, as torch's in-place op does (once, whenever indices is not empty).
        indices: int32/int64 indices of any shape.
        max_norm, norm_type: numbers (no range validation, as in torch: max_norm <= 0 is
            allowed; a string is torch's TypeError).

    Returns:
        ``weight``.
    """
    if (_operators.embedding_renorm is not None and isinstance(weight, _operators.Tensor)
            and type(indices) is _operators.Tensor and type(max_norm) in _NUMBERS and type(norm_type) in _NUMBERS
            and not read_only.any_live() and _operators.embedding_renorm(weight, indices, max_norm, norm_type)):
        return weight
    kind = kind_of(weight)
    if kind is None:
        raise TypeError("embedding_renorm_(): argument 'weight' must be a numpy.ndarray or torch.Tensor, not %s"
                        % type(weight).__name__)
    if type(max_norm) is not float:
        max_norm = float_argument(max_norm, "embedding_renorm_", "max_norm", 3)
    if type(norm_type) is not float:
        norm_type = float_argument(norm_type, "embedding_renorm_", "norm_type", 4)
    try:
        if weight.ndim != 2:
            raise error(EmbeddingRuntimeError, EMB_ERROR_INVALID_ARGUMENT,
                        "Expected 2-dimensional tensor, but got %d-dimensional tensor for argument #1 'self' "
                        "(while checking arguments for embedding_renorm_)" % weight.ndim)
        index, index_dtype = index_buffer(indices, "embedding_renorm_", 2)
        num_indices = math.prod(index.shape)
        table = weight.detach() if kind.is_tensor else weight
        contiguous = kind.is_contiguous(table)
        # A non-contiguous table is renormalised through a contiguous copy, written back below.
        target = float_buffer(table if contiguous else kind.contiguous(table), "weight", writable=True, any_type=True)
    except (RuntimeError, NotImplementedError):
        # torch has no sparse kernel: its NotImplementedError comes before the kernel's checks
        # (here, on the error path only: a sparse tensor fails in them).
        unsupported = non_strided(weight, indices)
        if unsupported is None:
            raise
        raise layout_error("embedding_renorm_", unsupported) from None
    num_embeddings, dim = target.shape
    # torch's 2-norm of a row with a column stride is its scalar kernel, not the vectorised one.
    renorm = emb_embedding_renorm if contiguous or not _strided_rows(table, kind) else emb_embedding_renorm_strided_rows
    status = renorm(target.address, target.code, num_embeddings, dim,
                    index.address, index_dtype, num_indices, float(max_norm), float(norm_type))
    if status:
        raise native_error(status)
    if not contiguous:
        if kind.is_tensor:
            with sys.modules["torch"].no_grad():
                weight.detach().copy_(target.array)
        else:
            np.copyto(weight, target.array)
    elif kind.is_tensor and num_indices:
        _bump_version(weight)
    return weight


def _strided_rows(table, kind):
    """Whether torch sees the rows of ``table`` (2-D) with a column stride other than one element."""
    if table.shape[1] <= 1:
        return False
    if kind.is_tensor:
        return table.stride(1) != 1
    return table.strides[1] != table.itemsize


def _bump_version(tensor):
    """Marks ``tensor`` as modified in place for autograd (its version counter), as torch's own
    in-place renorm does, without touching its data: an in-place op on an empty view."""
    torch = sys.modules["torch"]
    with torch.no_grad():
        tensor.detach().view(-1)[:0].mul_(1)
