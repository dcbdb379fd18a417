"""``Embedding``: torch.nn.Embedding's interface on a numpy float32 table.

Constructor, attributes, ``from_pretrained``, ``reset_parameters``, ``extra_repr`` and the repr
follow torch 1.13 (spec §1.1, §1.5, §1.9–§1.11); ``forward`` is
:func:`embedding_native.functional.embedding`. There is no autograd here: the module holds a
plain numpy array in ``weight`` and computes no gradients, so ``scale_grad_by_freq`` and
``sparse`` are recorded for the repr only (gradients: ``embedding_native.functional`` and
``embedding_native.optim`` at the numpy level, ``embedding_native.torch`` with autograd). With
``max_norm`` set, ``forward`` renormalises the referenced rows of ``weight`` in place first, as
torch does.
"""

import operator

import numpy as np

from .errors import (
    EMB_ERROR_INVALID_ARGUMENT, EMB_ERROR_UNSUPPORTED_DTYPE,
    BagPaddingIndexError, EmbeddingNotSupportedError, EmbeddingRuntimeError,
)
from ._ops.arguments import int_argument
from ._ops.failures import error
from ._ops.padding import functional_range_error, module_range_error, padding_row
from .functional import embedding, embedding_bag
from ._repr import embedding_bag_extra_repr, embedding_extra_repr
from ._progress import Progress
from .tables import empty_table

__all__ = ["Embedding", "EmbeddingBag"]

_FLOAT32 = np.dtype(np.float32)
#: ``reset_parameters`` draws this many bytes of samples at a time.
_INIT_BLOCK_BYTES = 16 << 20

#: The table types of the numpy modules: numpy's float types (numpy has no bfloat16).
_TABLE_TYPES = (np.dtype(np.float32), np.dtype(np.float64), np.dtype(np.float16))


def _table_type(dtype):
    """The numpy table type for ``dtype`` (None: float32; numpy or torch spelling), or
    EmbeddingNotSupportedError; TypeError (as torch's factory raises) for what is no dtype at all."""
    if dtype is None:
        return _FLOAT32
    if type(dtype).__module__ == "torch" and type(dtype).__name__ == "dtype":
        # Checked first: numpy reads some torch dtypes as other types (torch.bfloat16 as float64).
        name = str(dtype)[len("torch."):]
        table = np.dtype(name) if name in ("float32", "float64", "float16") else None
    else:
        try:
            table = np.dtype(dtype)
        except TypeError:
            raise TypeError("dtype must be a numpy or torch dtype, not %s" % type(dtype).__name__) from None
    if table is None or table not in _TABLE_TYPES:  # (numpy compares None equal to float64)
        raise error(EmbeddingNotSupportedError, EMB_ERROR_UNSUPPORTED_DTYPE,
                    "embedding_native's numpy modules take float32, float64 and float16 tables (got %s)" % dtype)
    return table


def _fill_normal(rng, table, label):
    """Fills ``table`` in place with N(0, 1) samples of its type, a block of rows at a time.

    The values are those of one ``rng.standard_normal(table.shape, dtype)`` call (the generator
    draws element by element, so blocks do not change the stream; float16 samples are drawn in
    float32 and rounded), but no table-sized temporary is made: the peak memory is the table plus
    one block, and a table of a gigabyte or more shows a progress bar on a terminal (_progress)."""
    rows, cols = table.shape
    row_bytes = max(cols * table.itemsize, 1)
    rows_per_block = max(_INIT_BLOCK_BYTES // row_bytes, 1)
    direct = table.dtype in (np.float32, np.float64)
    with Progress(label, table.nbytes) as progress:
        for start in range(0, rows, rows_per_block):
            block = table[start:start + rows_per_block]
            if direct and block.flags.c_contiguous:
                rng.standard_normal(out=block, dtype=table.dtype)
            else:
                draw_type = np.float64 if table.dtype == np.float64 else np.float32
                block[...] = rng.standard_normal(block.shape, dtype=draw_type)
            progress.advance(block.nbytes)


def _sizes(num_embeddings, embedding_dim):
    """The table's sizes as ints; torch's factory refuses a bool as the first size (TypeError)."""
    if isinstance(num_embeddings, bool):
        raise TypeError("num_embeddings must be an int, not %s" % type(num_embeddings).__name__)
    return operator.index(num_embeddings), operator.index(embedding_dim)


class Embedding:
    """A lookup table of ``num_embeddings`` rows of ``embedding_dim`` float32 values.

    ``Embedding(num_embeddings, embedding_dim, padding_idx=None, max_norm=None, norm_type=2.0,
    scale_grad_by_freq=False, sparse=False, _weight=None, dtype=None, *, rng=None)``::

        padding_idx = normalize(padding_idx)     # -1 -> num_embeddings - 1; out of range: AssertionError
        if _weight is None:
            weight = N(0, 1) samples from rng (float32); weight[padding_idx] = 0
        else:
            require _weight.shape == (num_embeddings, embedding_dim)   # AssertionError
            weight = _weight                                        # shared, not copied or zeroed

    Attributes:
        num_embeddings, embedding_dim, padding_idx (normalised, or None), max_norm, norm_type,
        scale_grad_by_freq, sparse: as passed (padding_idx normalised), like torch.
        weight: the ``(num_embeddings, embedding_dim)`` float32 numpy array.
        requires_grad: torch's ``weight.requires_grad`` (False after ``from_pretrained`` with
            ``freeze=True``); informational, since this module computes no gradients.

    Args:
        dtype: None (float32), float32, float64 or float16 (numpy or torch spelling); others raise
            EmbeddingNotSupportedError.
        rng: a ``numpy.random.Generator`` for the initial weights and ``reset_parameters``;
            default ``numpy.random.default_rng()``. torch's RNG stream cannot be reproduced, so
            only the distribution matches torch's (spec §1.10).
    """

    def __init__(self, num_embeddings, embedding_dim, padding_idx=None, max_norm=None, norm_type=2.0,
                 scale_grad_by_freq=False, sparse=False, _weight=None, dtype=None, *, rng=None):
        self.num_embeddings, self.embedding_dim = _sizes(num_embeddings, embedding_dim)
        if self.num_embeddings < 0 or self.embedding_dim < 0:
            shape = [self.num_embeddings, self.embedding_dim]
            raise error(EmbeddingRuntimeError, EMB_ERROR_INVALID_ARGUMENT,
                         "Trying to create tensor with negative dimension %d: %s" % (min(shape), shape))
        if padding_idx is not None:
            # torch's range assertion (by comparisons) first, then the type its forward requires
            # (torch checks that at the first forward; here at once).
            padding_idx = int_argument(padding_row(padding_idx, self.num_embeddings, functional_range_error),
                                       "embedding", "padding_idx", 3)
        table_type = _table_type(dtype)
        self.padding_idx = padding_idx
        self.max_norm = max_norm
        self.norm_type = norm_type
        self.scale_grad_by_freq = scale_grad_by_freq
        self.sparse = sparse
        self.requires_grad = True
        self._rng = rng if rng is not None else np.random.default_rng()
        _set_initial_weight(self, _weight, table_type)

    def reset_parameters(self):
        """Refills ``weight`` in place with N(0, 1) samples, then zeroes the padding row.

        Like torch, every row is drawn (the padding row too) before the padding row is zeroed.
        """
        _fill_normal(self._rng, self.weight, "initialising %s(%d, %d)" % (
            type(self).__name__, self.num_embeddings, self.embedding_dim))
        if self.padding_idx is not None:
            self.weight[self.padding_idx] = 0

    def forward(self, input, *, out=None):
        """``embedding(input, self.weight, self.padding_idx, self.max_norm, ...)``; see
        :func:`embedding_native.functional.embedding` (``out=`` reuses a result buffer)."""
        return embedding(input, self.weight, self.padding_idx, self.max_norm, self.norm_type,
                         self.scale_grad_by_freq, self.sparse, out=out)

    def __call__(self, input, *, out=None):
        return self.forward(input, out=out)

    def extra_repr(self):
        """torch's argument list (see _repr)."""
        return embedding_extra_repr(self)

    def __repr__(self):
        return "%s(%s)" % (type(self).__name__, self.extra_repr())

    @classmethod
    def from_pretrained(cls, embeddings, freeze=True, padding_idx=None, max_norm=None, norm_type=2.0,
                        scale_grad_by_freq=False, sparse=False):
        """An Embedding whose ``weight`` *is* ``embeddings`` (memory shared, nothing copied).

        ``embeddings`` must be a 2-D float32 numpy array (else AssertionError "Embeddings
        parameter is expected to be 2-dimensional"). ``padding_idx`` is validated and
        normalised but its row is **not** zeroed. ``freeze`` sets ``requires_grad = not freeze``.
        """
        if np.ndim(embeddings) != 2:
            raise AssertionError("Embeddings parameter is expected to be 2-dimensional")
        rows, cols = embeddings.shape
        module = cls(num_embeddings=rows, embedding_dim=cols, _weight=embeddings, padding_idx=padding_idx,
                     max_norm=max_norm, norm_type=norm_type, scale_grad_by_freq=scale_grad_by_freq,
                     sparse=sparse)
        module.requires_grad = not freeze
        return module


class EmbeddingBag:
    """``torch.nn.EmbeddingBag``'s interface on a numpy float32 table (no autograd).

    ``EmbeddingBag(num_embeddings, embedding_dim, max_norm=None, norm_type=2.0,
    scale_grad_by_freq=False, mode='mean', sparse=False, _weight=None, include_last_offset=False,
    padding_idx=None, dtype=None, *, rng=None)``::

        padding_idx: -1 -> num_embeddings - 1; outside [-V, V): AssertionError
                     "padding_idx must be within num_embeddings" (lower case, as nn.EmbeddingBag)
        weight: N(0, 1) from rng (float32) with the padding row zeroed, or _weight (shared, not zeroed)

    ``forward(input, offsets=None, per_sample_weights=None, *, out=None)`` is
    :func:`embedding_native.functional.embedding_bag` with the module's settings (the default
    mode is 'mean', as in torch). ``extra_repr``/repr and ``from_pretrained`` are torch's.
    """

    def __init__(self, num_embeddings, embedding_dim, max_norm=None, norm_type=2.0, scale_grad_by_freq=False,
                 mode="mean", sparse=False, _weight=None, include_last_offset=False, padding_idx=None, dtype=None,
                 *, rng=None):
        self.num_embeddings, self.embedding_dim = _sizes(num_embeddings, embedding_dim)
        if self.num_embeddings < 0 or self.embedding_dim < 0:
            shape = [self.num_embeddings, self.embedding_dim]
            raise error(EmbeddingRuntimeError, EMB_ERROR_INVALID_ARGUMENT,
                         "Trying to create tensor with negative dimension %d: %s" % (min(shape), shape))
        self.max_norm = max_norm
        self.norm_type = norm_type
        self.scale_grad_by_freq = scale_grad_by_freq
        self.padding_idx = padding_row(padding_idx, self.num_embeddings, module_range_error(BagPaddingIndexError))
        table_type = _table_type(dtype)
        self.requires_grad = True
        self._rng = rng if rng is not None else np.random.default_rng()
        _set_initial_weight(self, _weight, table_type)
        self.mode = mode
        self.sparse = sparse
        self.include_last_offset = include_last_offset

    def reset_parameters(self):
        """Refills ``weight`` with N(0, 1) samples, then zeroes the padding row (as torch)."""
        _fill_normal(self._rng, self.weight, "initialising %s(%d, %d)" % (
            type(self).__name__, self.num_embeddings, self.embedding_dim))
        if self.padding_idx is not None:
            self.weight[self.padding_idx] = 0

    def forward(self, input, offsets=None, per_sample_weights=None, *, out=None):
        return embedding_bag(input, self.weight, offsets, self.max_norm, self.norm_type, self.scale_grad_by_freq,
                             self.mode, self.sparse, per_sample_weights, self.include_last_offset, self.padding_idx,
                             out=out)

    def __call__(self, input, offsets=None, per_sample_weights=None, *, out=None):
        return self.forward(input, offsets, per_sample_weights, out=out)

    def extra_repr(self):
        """torch's argument list (see _repr)."""
        return embedding_bag_extra_repr(self)

    def __repr__(self):
        return "%s(%s)" % (type(self).__name__, self.extra_repr())

    @classmethod
    def from_pretrained(cls, embeddings, freeze=True, max_norm=None, norm_type=2.0, scale_grad_by_freq=False,
                        mode="mean", sparse=False, include_last_offset=False, padding_idx=None):
        """An EmbeddingBag whose ``weight`` *is* ``embeddings`` (shared); the padding row is not
        zeroed; ``requires_grad = not freeze``."""
        if np.ndim(embeddings) != 2:
            raise AssertionError("Embeddings parameter is expected to be 2-dimensional")
        rows, cols = embeddings.shape
        module = cls(num_embeddings=rows, embedding_dim=cols, _weight=embeddings, max_norm=max_norm,
                     norm_type=norm_type, scale_grad_by_freq=scale_grad_by_freq, mode=mode, sparse=sparse,
                     include_last_offset=include_last_offset, padding_idx=padding_idx)
        module.requires_grad = not freeze
        return module


def _set_initial_weight(module, weight, table_type=_FLOAT32):
    """torch's constructor tail for both modules: a given ``_weight`` is checked and shared, else a
    new table of ``table_type`` (huge pages when large, for float32) is drawn by ``reset_parameters``."""
    if weight is None:
        if table_type == _FLOAT32:
            module.weight = empty_table(module.num_embeddings, module.embedding_dim)
        else:
            module.weight = np.zeros((module.num_embeddings, module.embedding_dim), dtype=table_type)
        module.reset_parameters()
        return
    if not isinstance(weight, np.ndarray):
        raise TypeError("_weight must be a numpy.ndarray, not %s" % type(weight).__name__)
    if list(weight.shape) != [module.num_embeddings, module.embedding_dim]:
        raise AssertionError("Shape of weight does not match num_embeddings and embedding_dim")
    _table_type(weight.dtype)
    module.weight = weight
