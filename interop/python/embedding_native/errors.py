"""Exceptions raised by embedding_native.

Every failure of a native call, and every argument check done in Python on the way to one,
raises an :class:`EmbeddingError`. It carries the ``emb_status`` code from
``embedding_native.h``, its name (``emb_status_string``) and the detail text
(``emb_last_error`` for native failures, our own message for checks done in Python).

So that code written against torch keeps working, each concrete class also derives from the
exception type torch 1.13 raises for the same case::

    status                          class                         also a      str() starts with
    EMB_ERROR_INDEX_OUT_OF_RANGE    EmbeddingIndexError           IndexError  "index out of range in self"
      (for padding_idx)             PaddingIndexError             AssertionError
                                                                  "Padding_idx must be within num_embeddings"
      (EmbeddingBag's padding_idx)  BagPaddingIndexError          AssertionError
                                                                  "padding_idx must be within num_embeddings"
    EMB_ERROR_UNSUPPORTED_DTYPE     EmbeddingNotSupportedError    NotImplementedError
    EMB_ERROR_NOT_SUPPORTED         EmbeddingNotSupportedError    NotImplementedError
    anything else                   EmbeddingRuntimeError         RuntimeError

The mapping lives in one place, :func:`error_for_status`. One exception: an index out of range
inside an embedding_bag call is an :class:`EmbeddingRuntimeError` (torch's bag op raises
RuntimeError there, not IndexError); ``_ops.failures.bag_index_error`` builds it from the
position and value the library reports (``emb_last_index_error``).

Loading the library can fail before any status exists; that raises :class:`LibraryLoadError`
(an ``OSError``, like ctypes' own load failures), or its subclass
:class:`TierNotSupportedError` when a tier was requested that this CPU cannot run.

This module has no dependencies, so it can be imported without numpy, torch or the library.
"""

__all__ = [
    "EMB_OK", "EMB_ERROR_INVALID_ARGUMENT", "EMB_ERROR_NULL_POINTER", "EMB_ERROR_SIZE_OVERFLOW",
    "EMB_ERROR_INDEX_OUT_OF_RANGE", "EMB_ERROR_UNSUPPORTED_DTYPE", "EMB_ERROR_BUFFER_TOO_SMALL",
    "EMB_ERROR_NOT_SUPPORTED", "EMB_ERROR_INVALID_FILE", "EMB_ERROR_IO", "EMB_ERROR_INTERNAL",
    "EmbeddingError", "EmbeddingIndexError", "PaddingIndexError", "BagPaddingIndexError", "EmbeddingNotSupportedError",
    "EmbeddingRuntimeError", "LibraryLoadError", "TierNotSupportedError", "error_for_status",
]

# emb_status values; pinned by the header ("Values are stable").
EMB_OK = 0
EMB_ERROR_INVALID_ARGUMENT = 1
EMB_ERROR_NULL_POINTER = 2
EMB_ERROR_SIZE_OVERFLOW = 3
EMB_ERROR_INDEX_OUT_OF_RANGE = 4
EMB_ERROR_UNSUPPORTED_DTYPE = 5
EMB_ERROR_BUFFER_TOO_SMALL = 6
EMB_ERROR_NOT_SUPPORTED = 7
EMB_ERROR_INVALID_FILE = 8  # emb_table_open: a malformed table file (tables.load raises ValueError itself)
EMB_ERROR_IO = 9  # emb_table_open / emb_table_flush: the system could not open, map or flush the file
EMB_ERROR_INTERNAL = 100


class EmbeddingError(Exception):
    """Base class of every error a call into embedding_native reports.

    Attributes:
        status: the ``emb_status`` code (int).
        status_name: its name, e.g. ``"EMB_ERROR_INDEX_OUT_OF_RANGE"`` (``emb_status_string``).
        detail: what went wrong, e.g. ``"index 7 at position 1 is out of range: valid indices
            are 0 to 3 (num_embeddings = 4)"`` (``emb_last_error`` or our own check's text).
    """

    def __init__(self, status, status_name, detail):
        self.status = int(status)
        self.status_name = status_name
        self.detail = detail
        super().__init__(self._message())

    def _message(self):
        """The text str() shows; subclasses put torch's wording first."""
        return self.detail

    def __reduce__(self):
        # Exceptions pickle their args by default; ours are built from three fields instead.
        return (type(self), (self.status, self.status_name, self.detail))


class EmbeddingIndexError(EmbeddingError, IndexError):
    """An index is negative or not below num_embeddings.

    ``str()`` is torch's ``"index out of range in self"`` followed by our detail in parentheses,
    which names the position, the value and the valid range.
    """

    TORCH_MESSAGE = "index out of range in self"

    def _message(self):
        return "%s (%s)" % (self.TORCH_MESSAGE, self.detail)


class PaddingIndexError(EmbeddingError, AssertionError):
    """padding_idx is outside ``[-num_embeddings, num_embeddings)``.

    torch raises this as an AssertionError from Python; ``str()`` starts with torch's text.
    """

    TORCH_MESSAGE = "Padding_idx must be within num_embeddings"

    def _message(self):
        # The native detail already opens with torch's text; do not repeat it.
        if self.detail.startswith(self.TORCH_MESSAGE):
            return self.detail
        return "%s: %s" % (self.TORCH_MESSAGE, self.detail) if self.detail else self.TORCH_MESSAGE


class BagPaddingIndexError(PaddingIndexError):
    """padding_idx outside ``[-num_embeddings, num_embeddings)`` given to an ``EmbeddingBag``
    constructor: torch's nn.EmbeddingBag words its AssertionError in lower case."""

    TORCH_MESSAGE = "padding_idx must be within num_embeddings"


class EmbeddingNotSupportedError(EmbeddingError, NotImplementedError):
    """A valid request that torch accepts but this version does not implement
    (a weight or gradient dtype other than float32, a tensor on a device other than the CPU)."""


class EmbeddingRuntimeError(EmbeddingError, RuntimeError):
    """Any other failure: torch's RuntimeError cases (weight not 2-D, index dtype, empty table),
    invalid ``out=`` buffers, and native validation errors."""


class LibraryLoadError(OSError):
    """The native library could not be chosen, found, opened or accepted (version mismatch)."""


class TierNotSupportedError(LibraryLoadError):
    """``EMBEDDING_NATIVE_TIER`` names a tier this CPU (or operating system) cannot run.

    The library of that tier is never loaded: its first call would abort the process.
    """


# status -> class, with an override for statuses that mean something else for one argument.
_STATUS_CLASSES = {
    EMB_ERROR_INDEX_OUT_OF_RANGE: EmbeddingIndexError,
    EMB_ERROR_UNSUPPORTED_DTYPE: EmbeddingNotSupportedError,
    EMB_ERROR_NOT_SUPPORTED: EmbeddingNotSupportedError,
}
_ARGUMENT_STATUS_CLASSES = {
    ("padding_idx", EMB_ERROR_INDEX_OUT_OF_RANGE): PaddingIndexError,
}


def error_for_status(status, status_name, detail, argument=None):
    """The exception for a failed call: ``status`` with its name and detail text.

    ``argument`` names the argument the call was about when that changes the meaning; today
    only ``"padding_idx"`` does (an out-of-range padding_idx is torch's AssertionError, not its
    IndexError). Returns the exception; the caller raises it.
    """
    cls = _ARGUMENT_STATUS_CLASSES.get((argument, status)) or _STATUS_CLASSES.get(status, EmbeddingRuntimeError)
    return cls(status, status_name, detail)
