"""Row-wise quantized tables (8-, 4- and 2-bit): ``torch.ops.quantized``'s embedding operations,
with torch's names, argument order and defaults, on numpy arrays and CPU torch tensors::

    import numpy as np
    import embedding_native.quantized as enq

    weight = np.random.default_rng(0).standard_normal((1000, 64), dtype=np.float32)
    packed = enq.embedding_bag_4bit_prepack(weight)              # uint8 [1000, 36]
    out = enq.embedding_bag_4bit_rowwise_offsets(packed, np.array([1, 5, 9]), np.array([0, 2]))
    enq.embedding_bag_4bit_unpack(packed)                        # float32 [1000, 64]

Results are bit-identical to torch 1.13's CPU operations (its non-FBGEMM code) and of the kind of
the table: numpy arrays for a numpy table, tensors for a tensor. torch is not needed (nor imported).

A packed table holds one row per embedding (C header, ``emb_quantize``)::

    8-bit: D codes, one per byte;             scale, bias float32    D + 8 bytes
    4-bit: column j in byte j/2, bits 4(j%2);  scale, bias float16    ceil(D/2) + 4 bytes
    2-bit: column j in byte j/4, bits 2(j%4);  scale, bias float16    ceil(D/4) + 4 bytes
    value(j) = scale * code(j) + bias

Prepacking (per row; float16 weights are first converted exactly to float32):

    8-bit:  min, max of the row (the first of equal ones); scale = (max - min) / 255;
            code = lrintf((x - min) * (255 / (max - min + 1e-8)));  bias = min
    n-bit:  bias = half(min); scale = half((max - bias) / (2^n - 1)), 1 if the range is 0;
            code = clamp(lrintf((x - bias) / scale), 0, 2^n - 1)
            optimized_qparams=True: min and max from torch's greedy search (nbins, ratio) first.

Bag lookups (``*_rowwise_offsets``; ``embedding_bag_byte`` / ``embedding_bag_4bit`` take a
:class:`PackedEmbeddingWeight`)::

    for each bag b: out[b] = 0
        for each position i of b (i indexes compressed_indices_mapping when pruned; -1 skips i):
            w = per_sample_weights[i] or 1;  s = w * scale[row];  t = w * bias[row]   (float)
            for each column j: out[b][j] = float((double)s * code[row][j] + (double)(out[b][j] + t))
        mode 1 / "mean": out[b] /= max(positions in b, 1)       (a pruned position counts)

torch 1.13 multiplies and adds in double and rounds once per step (its ``fma`` is called with an
integer code); that is what is computed here, on every ISA tier. The lookups ``embedding_byte`` /
``embedding_4bit`` are the same with one position per bag; their output has the index shape plus D.

Arguments are checked in torch's order with torch's exception types (RuntimeError for almost
everything, as torch's op parser and checks raise it). Where torch 1.13 crashes, reads out of
bounds or returns garbage, these do the following instead (docs/divergences.md, "Quantized tables"):

* ``mode``: 1 (or ``"mean"``) divides each bag by its count (torch ignores ``mode`` and always
  sums); 2 / ``"max"`` raises NotImplementedError; per_sample_weights with mean raises
  NotImplementedError as ``F.embedding_bag`` does.
* empty offsets (zero bags), an empty 2-D input ``[0, L]``, empty indices for ``embedding_byte`` /
  ``embedding_4bit``: empty results (torch segfaults).
* ``offsets[0] != 0``, decreasing offsets: RuntimeError (torch reads such bags misaligned).
* per_sample_weights shorter than the positions used, a ``compressed_indices_mapping`` entry that
  is not -1 or a row: RuntimeError (torch reads out of bounds).
* prepack of a float16 weight is exact (torch 1.13's byte prepack returns a garbage row 0); a
  ``[N, 0]`` weight packs to rows of scale and bias 0 (torch crashes); 4-/2-bit prepack and unpack
  take N-D tables like the byte ones (torch gives wrong shapes); optimized_qparams with
  ``nbins < 0`` or ``ratio`` outside [0, 1] raises (torch never returns, or searches a range that
  crosses itself); ``nbins=0`` is the plain prepack, as in torch.
* non-contiguous inputs are read as their values (torch refuses them, or for per_sample_weights and
  the mapping reads the raw storage).
"""

from ._ops import quantized as _q
from ._ops.quantized import PackedEmbeddingWeight

__all__ = [
    "PackedEmbeddingWeight",
    "embedding_bag_byte_prepack", "embedding_bag_4bit_prepack", "embedding_bag_2bit_prepack",
    "embedding_bag_byte_unpack", "embedding_bag_4bit_unpack", "embedding_bag_2bit_unpack",
    "embedding_bag_byte_rowwise_offsets", "embedding_bag_4bit_rowwise_offsets", "embedding_bag_2bit_rowwise_offsets",
    "embedding_bag_byte", "embedding_bag_4bit", "embedding_byte", "embedding_4bit",
]


# ---- Prepack and unpack ------------------------------------------------------------------------------


def embedding_bag_byte_prepack(weight):
    """8-bit row-wise quantization of a float32 or float16 ``weight`` of any rank >= 1 (the last
    dimension is the row): uint8 ``weight.shape[:-1] + (D + 8,)``."""
    return _q.prepack(weight, 8)


def embedding_bag_4bit_prepack(weight, optimized_qparams=False, nbins=200, ratio=0.16):
    """4-bit row-wise quantization of a float32 or float16 ``weight`` (rank >= 2, D even):
    uint8 ``weight.shape[:-1] + (D/2 + 4,)``. ``optimized_qparams`` searches each row's range
    as torch's ``choose_qparams_optimized(row, nbins, ratio)`` does."""
    return _q.prepack(weight, 4, optimized_qparams, nbins, ratio)


def embedding_bag_2bit_prepack(weight, optimized_qparams=False, nbins=200, ratio=0.16):
    """2-bit row-wise quantization (D a multiple of 4): uint8 ``weight.shape[:-1] + (D/4 + 4,)``."""
    return _q.prepack(weight, 2, optimized_qparams, nbins, ratio)


def embedding_bag_byte_unpack(weight):
    """The float32 values of an 8-bit packed table: ``code * scale + bias`` per element,
    ``weight.shape[:-1] + (width - 8,)``."""
    return _q.unpack(weight, 8)


def embedding_bag_4bit_unpack(weight):
    """The float32 values of a 4-bit packed table, ``weight.shape[:-1] + ((width - 4) * 2,)``."""
    return _q.unpack(weight, 4)


def embedding_bag_2bit_unpack(weight):
    """The float32 values of a 2-bit packed table, ``weight.shape[:-1] + ((width - 4) * 4,)``."""
    return _q.unpack(weight, 2)


# ---- Bags ------------------------------------------------------------------------------------------------


def embedding_bag_byte_rowwise_offsets(weight, indices, offsets=None, scale_grad_by_freq=False, mode=0,
                                       pruned_weights=False, per_sample_weights=None,
                                       compressed_indices_mapping=None, include_last_offset=False):
    """Bags of an 8-bit packed table: float32 ``[num_bags, D]`` (see the module doc).

    ``indices`` int32/int64, 1-D with ``offsets`` (int32/int64; one per bag, or one more with
    ``include_last_offset``, positions after the last offset then belonging to no bag) or 2-D
    ``[B, L]`` without (B bags of L; B - 1 with include_last_offset, as torch computes it).
    ``per_sample_weights``: float32, one per position (sum only). ``pruned_weights`` with an int32
    ``compressed_indices_mapping``: indices index the mapping, whose entries are rows or -1
    (skipped); a mapping of ``[0]`` means not pruned. ``scale_grad_by_freq`` has no effect.
    """
    return _q.embedding_bag(8, weight, indices, offsets, scale_grad_by_freq, mode, pruned_weights,
                            per_sample_weights, compressed_indices_mapping, include_last_offset)


def embedding_bag_4bit_rowwise_offsets(weight, indices, offsets=None, scale_grad_by_freq=False, mode=0,
                                       pruned_weights=False, per_sample_weights=None,
                                       compressed_indices_mapping=None, include_last_offset=False):
    """Bags of a 4-bit packed table; as :func:`embedding_bag_byte_rowwise_offsets`, with
    per_sample_weights float32 or float16."""
    return _q.embedding_bag(4, weight, indices, offsets, scale_grad_by_freq, mode, pruned_weights,
                            per_sample_weights, compressed_indices_mapping, include_last_offset)


def embedding_bag_2bit_rowwise_offsets(weight, indices, offsets=None, scale_grad_by_freq=False, mode=0,
                                       pruned_weights=False, per_sample_weights=None,
                                       compressed_indices_mapping=None, include_last_offset=False):
    """Bags of a 2-bit packed table; as :func:`embedding_bag_4bit_rowwise_offsets`."""
    return _q.embedding_bag(2, weight, indices, offsets, scale_grad_by_freq, mode, pruned_weights,
                            per_sample_weights, compressed_indices_mapping, include_last_offset)


def embedding_bag_byte(weight, indices, offsets=None, scale_grad_by_freq=False, mode=0, pruned_weights=False,
                       per_sample_weights=None, compressed_indices_mapping=None, include_last_offset=False):
    """:func:`embedding_bag_byte_rowwise_offsets` on a :class:`PackedEmbeddingWeight` (or a
    quantized module, or torch's packed params), as torch's ``quantized::embedding_bag_byte``."""
    return _q.embedding_bag(8, weight, indices, offsets, scale_grad_by_freq, mode, pruned_weights,
                            per_sample_weights, compressed_indices_mapping, include_last_offset,
                            op="embedding_bag_byte")


def embedding_bag_4bit(weight, indices, offsets=None, scale_grad_by_freq=False, mode=0, pruned_weights=False,
                       per_sample_weights=None, compressed_indices_mapping=None, include_last_offset=False):
    """:func:`embedding_bag_4bit_rowwise_offsets` on a :class:`PackedEmbeddingWeight` (the table's
    own dimension, odd ones included), as torch's ``quantized::embedding_bag_4bit``."""
    return _q.embedding_bag(4, weight, indices, offsets, scale_grad_by_freq, mode, pruned_weights,
                            per_sample_weights, compressed_indices_mapping, include_last_offset,
                            op="embedding_bag_4bit")


# ---- Lookups ----------------------------------------------------------------------------------------------


def embedding_byte(weight, indices, pruned_weights=False):
    """Rows of an 8-bit table, dequantized: float32 ``indices.shape + (D,)`` for 1-D or 2-D int32/int64
    ``indices``. ``weight``: a :class:`PackedEmbeddingWeight`, a quantized module, torch's packed
    params, or a packed uint8 array (D from its width). ``pruned_weights=True`` raises, as torch
    (the op takes no mapping)."""
    return _q.embedding(8, weight, indices, pruned_weights)


def embedding_4bit(weight, indices, pruned_weights=False):
    """Rows of a 4-bit table, dequantized; as :func:`embedding_byte`."""
    return _q.embedding(4, weight, indices, pruned_weights)
