"""embedding_native: torch.nn.Embedding and EmbeddingBag from a NativeAOT C library through ctypes
(lookups bit-identical to torch; what else is, and how close the rest is: docs/exactness.md).

    import numpy as np
    import embedding_native as en

    table = np.random.default_rng(0).standard_normal((10, 5), dtype=np.float32)
    en.embedding(np.array([1, 2, 4]), table)          # == table[[1, 2, 4]], bit for bit
    emb = en.Embedding.from_pretrained(table)         # torch.nn.Embedding's interface, on numpy
    en.build_info()["tier"]                           # "x86-64-v4", ...
    en.embedding_bag(np.array([1, 2, 4, 5]), table, np.array([0, 2]), mode="sum")   # F.embedding_bag
    en.set_num_threads(2)                             # large calls use 2 threads, same bits

``embedding`` also takes CPU torch tensors (by pointer, without copying) and returns a tensor
for a tensor weight; torch is optional and never imported by this package itself.

Training: ``embedding_native.functional`` has the gradients (``embedding_backward``,
``embedding_sparse_backward``, ``sparse_coalesce``) and ``embedding_renorm_`` (max_norm);
``embedding_native.optim`` the fused sparse optimizer steps (SGD, Adagrad, row-wise Adagrad,
SparseAdam). ``import embedding_native.torch`` (which imports torch) gives ``Embedding`` and
``embedding``, drop-ins for ``torch.nn.Embedding`` and ``F.embedding`` with native forward and
backward through ``torch.autograd.Function``.

Quantized tables: ``embedding_native.quantized`` has torch.ops.quantized's 8-, 4- and 2-bit
embedding ops (prepack, unpack, bags, lookups; torch's names and argument order), and
``embedding_native.torch.quantized`` the drop-ins for ``torch.ao.nn.quantized.Embedding`` /
``EmbeddingBag``.

Which build is loaded (one per x86-64 tier) is decided on import from /proc/cpuinfo and CPUID;
override it with EMBEDDING_NATIVE_TIER=x86-64-v2|x86-64-v3|x86-64-v4, or load a file with
EMBEDDING_NATIVE_LIBRARY=/path/to/libembedding_native.so (see ``embedding_native._lib``).
Errors raise what torch raises (``IndexError: index out of range in self``, ...), as
subclasses of :class:`EmbeddingError` (see ``embedding_native.errors``).
"""

__version__ = "0.1.0"

from . import functional, optim, quantized
from .errors import (
    BagPaddingIndexError, EmbeddingError, EmbeddingIndexError, EmbeddingNotSupportedError, EmbeddingRuntimeError,
    LibraryLoadError, PaddingIndexError, TierNotSupportedError,
)
from .functional import build_info, embedding, embedding_bag, get_num_threads, set_num_threads
from .modules import Embedding, EmbeddingBag
from ._results import release_cached
from .tables import empty_table

__all__ = [
    "empty_table", "release_cached",
    "__version__", "functional", "optim", "quantized", "embedding", "embedding_bag", "build_info", "set_num_threads", "get_num_threads",
    "Embedding", "EmbeddingBag",
    "EmbeddingError", "EmbeddingIndexError", "PaddingIndexError", "BagPaddingIndexError", "EmbeddingNotSupportedError",
    "EmbeddingRuntimeError", "LibraryLoadError", "TierNotSupportedError",
]
