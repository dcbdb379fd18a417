"""padding_idx: torch's range checks and normalisation, in one place.

torch checks padding_idx at three levels, with three texts::

    level                                     how              out of range raises
    F.embedding, nn.Embedding (Python)        comparisons      PaddingIndexError (AssertionError)
    nn.EmbeddingBag (Python)                  comparisons      BagPaddingIndexError (lower-case text)
    torch.embedding_bag (C++)                 int, then range  RuntimeError "padding_idx must be within ..."

The first two are :func:`padding_row`; the C++ check (:func:`bag_padding`) differs only in that
0 is out of range for a table of no rows. The native functions take a normalised row or
EMB_NO_PADDING (:func:`native_padding`).
"""

import operator
from ctypes import byref, c_int64

import numpy as np

from .. import _bindings
from .._bindings import EMB_NO_PADDING
from ..errors import EMB_ERROR_INDEX_OUT_OF_RANGE, EmbeddingRuntimeError, PaddingIndexError
from .arguments import int_argument
from .failures import error, native_error


def padding_row(padding_idx, num_embeddings, out_of_range):
    """torch's padding_idx normalisation, by comparisons (so any number passes as in torch; its
    type is judged by whoever needs an int)::

        None -> None
        padding_idx > 0: require padding_idx <  num_embeddings
        padding_idx < 0: require padding_idx >= -num_embeddings; padding_idx += num_embeddings

    ``out_of_range(padding_idx, num_embeddings)`` makes the exception raised when a requirement
    fails: :func:`functional_range_error`, :func:`module_range_error` or :func:`bag_range_error`.
    """
    if padding_idx is None:
        return None
    if padding_idx > 0:
        if padding_idx < num_embeddings:
            return padding_idx
    elif padding_idx < 0:
        if padding_idx >= -num_embeddings:
            return padding_idx + num_embeddings
    else:
        return padding_idx
    raise out_of_range(padding_idx, num_embeddings)


def functional_range_error(padding_idx, num_embeddings):
    """F.embedding's assertion: the library's text (which names the range) for an integer."""
    if isinstance(padding_idx, (int, np.integer)) and not isinstance(padding_idx, bool):
        try:
            normalize_padding_idx(padding_idx, num_embeddings)
        except PaddingIndexError as exception:
            return exception
    return error(PaddingIndexError, EMB_ERROR_INDEX_OUT_OF_RANGE, PaddingIndexError.TORCH_MESSAGE)


def module_range_error(cls):
    """A module constructor's assertion: ``cls`` (PaddingIndexError or BagPaddingIndexError) with
    torch's text alone."""
    return lambda padding_idx, num_embeddings: error(cls, EMB_ERROR_INDEX_OUT_OF_RANGE, cls.TORCH_MESSAGE)


def bag_range_error(padding_idx, num_embeddings):
    """torch.embedding_bag's C++ check: a RuntimeError naming the range."""
    return error(EmbeddingRuntimeError, EMB_ERROR_INDEX_OUT_OF_RANGE,
                 "padding_idx must be within the number of embeddings, -%d through %d, but got %d"
                 % (num_embeddings, num_embeddings - 1, padding_idx))


def bag_padding(padding_idx, num_embeddings):
    """torch.embedding_bag's C++ padding_idx check (an int, negatives wrap): the native row, or
    EMB_NO_PADDING for None."""
    if padding_idx is None:
        return EMB_NO_PADDING
    value = int_argument(padding_idx, "embedding_bag", "padding_idx", 9)
    # Unlike the Python-level check, 0 is no exception: a table of no rows has no padding row.
    if not -num_embeddings <= value < num_embeddings:
        raise bag_range_error(value, num_embeddings)
    return value + num_embeddings if value < 0 else value


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
        raise native_error(status, "padding_idx")
    return normalized.value


def native_padding(padding_idx, num_embeddings):
    """The normalised padding row for a native call, or EMB_NO_PADDING for None."""
    return EMB_NO_PADDING if padding_idx is None else normalize_padding_idx(padding_idx, num_embeddings)
