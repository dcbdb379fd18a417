"""Quantized bags and lookups through the C ABI against torch 1.13, bit for bit.

The library's emb_quantized_embedding_bag / emb_quantized_embedding are called directly through
ctypes (the package's loaded library), on packed tables made by torch's own prepack ops
(quantized::embedding_bag_{byte,4bit,2bit}_prepack) and on raw packed rows with arbitrary codes,
scales and biases, and compared with quantized::embedding_bag_{byte,4bit,2bit}_rowwise_offsets
and quantized::embedding_byte / embedding_4bit (torch.ao.nn.quantized.Embedding). torch's
``mode`` is ignored by torch (it always sums), so only sums are compared here; the library's mean
is its own (docs/divergences.md). Inputs torch crashes on (empty offsets, empty lookups) are not
given to torch.
"""

import ctypes
from ctypes import POINTER, Structure, c_int32, c_int64, c_void_p

import numpy as np
import pytest
import torch

from embedding_native import _bindings
from helpers import bits

EMB_DTYPE_INT32, EMB_DTYPE_INT64 = 5, 6
EMB_BAG_SUM, EMB_BAG_MEAN = 0, 1
EMB_NO_PADDING = -1
EMB_ERROR_INDEX_OUT_OF_RANGE = 4

PREPACK = {
    8: torch.ops.quantized.embedding_bag_byte_prepack,
    4: torch.ops.quantized.embedding_bag_4bit_prepack,
    2: torch.ops.quantized.embedding_bag_2bit_prepack,
}
BAG = {
    8: torch.ops.quantized.embedding_bag_byte_rowwise_offsets,
    4: torch.ops.quantized.embedding_bag_4bit_rowwise_offsets,
    2: torch.ops.quantized.embedding_bag_2bit_rowwise_offsets,
}


class EmbBags(Structure):
    """emb_bags from embedding_native.h."""
    _fields_ = [
        ("indices", c_void_p), ("num_indices", c_int64), ("index_dtype", c_int32), ("offsets_dtype", c_int32),
        ("offsets", c_void_p), ("num_offsets", c_int64), ("bag_size", c_int64),
        ("include_last_offset", c_int32), ("reserved", c_int32),
        ("per_sample_weights", c_void_p), ("padding_idx", c_int64),
    ]


def _function(name, *argtypes):
    # Indexing (not attribute access) gives a fresh function object: the package's own bindings
    # keep theirs.
    fn = _bindings.LIBRARY.dll[name]
    fn.argtypes = list(argtypes)
    fn.restype = c_int32
    return fn


# EMB_API int32_t emb_quantized_embedding_bag(const void* packed, int32_t bit_width, int64_t num_embeddings,
#     int64_t embedding_dim, const emb_bags* bags, int32_t mode, const int32_t* compressed_indices_mapping,
#     int64_t mapping_size, float* out, int64_t out_capacity);
_bag = _function("emb_quantized_embedding_bag", c_void_p, c_int32, c_int64, c_int64, POINTER(EmbBags), c_int32,
                 c_void_p, c_int64, c_void_p, c_int64)

# EMB_API int32_t emb_quantized_embedding(const void* packed, int32_t bit_width, int64_t num_embeddings,
#     int64_t embedding_dim, const void* indices, int32_t index_dtype, int64_t num_indices,
#     const int32_t* compressed_indices_mapping, int64_t mapping_size, float* out, int64_t out_capacity);
_lookup = _function("emb_quantized_embedding", c_void_p, c_int32, c_int64, c_int64, c_void_p, c_int32, c_int64,
                    c_void_p, c_int64, c_void_p, c_int64)


def _dtype_code(array):
    return EMB_DTYPE_INT32 if array.dtype == np.int32 else EMB_DTYPE_INT64


def _dimension(bit_width, row_bytes):
    """The dimension torch reads from a packed width (every code slot a column)."""
    return row_bytes - 8 if bit_width == 8 else (row_bytes - 4) * (8 // bit_width)


def native_bag(packed, bit_width, indices, offsets=None, bag_size=0, per_sample_weights=None,
               include_last_offset=False, mapping=None, mode=EMB_BAG_SUM, padding_idx=EMB_NO_PADDING):
    """emb_quantized_embedding_bag on numpy arrays; returns the [bags, D] float32 result."""
    packed = np.ascontiguousarray(packed, dtype=np.uint8)
    rows, row_bytes = packed.shape
    dim = _dimension(bit_width, row_bytes)
    indices = np.ascontiguousarray(indices).reshape(-1)
    if offsets is not None:
        offsets = np.ascontiguousarray(offsets)
        num_bags = len(offsets) - (1 if include_last_offset else 0)
    else:
        num_bags = len(indices) // bag_size
    psw = None if per_sample_weights is None else np.ascontiguousarray(per_sample_weights, dtype=np.float32)
    mapping = None if mapping is None else np.ascontiguousarray(mapping, dtype=np.int32)
    out = np.full((num_bags, dim), np.nan, dtype=np.float32)
    bags = EmbBags(
        indices=indices.ctypes.data if len(indices) else None, num_indices=len(indices),
        index_dtype=_dtype_code(indices),
        offsets_dtype=_dtype_code(offsets) if offsets is not None else EMB_DTYPE_INT64,
        offsets=offsets.ctypes.data if offsets is not None and len(offsets) else None,
        num_offsets=0 if offsets is None else len(offsets), bag_size=bag_size,
        include_last_offset=int(include_last_offset), reserved=0,
        per_sample_weights=None if psw is None else psw.ctypes.data, padding_idx=padding_idx)
    status = _bag(packed.ctypes.data if packed.size else None, bit_width, rows, dim, ctypes.byref(bags), mode,
                  None if mapping is None else mapping.ctypes.data, 0 if mapping is None else len(mapping),
                  out.ctypes.data if out.size else None, out.size)
    assert status == 0, _bindings.emb_last_error().decode()
    return out


def native_lookup(packed, bit_width, indices, mapping=None):
    packed = np.ascontiguousarray(packed, dtype=np.uint8)
    rows, row_bytes = packed.shape
    dim = _dimension(bit_width, row_bytes)
    flat = np.ascontiguousarray(indices).reshape(-1)
    mapping = None if mapping is None else np.ascontiguousarray(mapping, dtype=np.int32)
    out = np.full((len(flat), dim), np.nan, dtype=np.float32)
    status = _lookup(packed.ctypes.data, bit_width, rows, dim, flat.ctypes.data if len(flat) else None, _dtype_code(flat),
                     len(flat), None if mapping is None else mapping.ctypes.data, 0 if mapping is None else len(mapping),
                     out.ctypes.data if out.size else None, out.size)
    assert status == 0, _bindings.emb_last_error().decode()
    return out.reshape(tuple(np.shape(indices)) + (dim,))


def torch_bag(packed, bit_width, indices, offsets=None, per_sample_weights=None, include_last_offset=False,
              mapping=None):
    return BAG[bit_width](
        torch.from_numpy(np.ascontiguousarray(packed)), torch.from_numpy(np.ascontiguousarray(indices)),
        None if offsets is None else torch.from_numpy(np.ascontiguousarray(offsets)), False, 0, mapping is not None,
        None if per_sample_weights is None else torch.from_numpy(per_sample_weights),
        None if mapping is None else torch.from_numpy(np.asarray(mapping, dtype=np.int32)), include_last_offset)


def random_weight(rng, rows, dim):
    """Float rows over several scales, with constant rows (range 0) and a repeated maximum."""
    w = (rng.standard_normal((rows, dim)) * np.exp2(rng.integers(-8, 8, size=(rows, 1)))).astype(np.float32)
    if rows > 2:
        w[1] = w[1, 0]
        w[2, : dim // 2] = w[2].max()
    return w


def raw_table(rng, bit_width, rows, dim):
    """Packed rows torch's prepack would not make: every code byte random, arbitrary finite scales and biases."""
    per_byte = 8 // bit_width
    code_bytes = (dim + per_byte - 1) // per_byte
    packed = rng.integers(0, 256, size=(rows, code_bytes + (8 if bit_width == 8 else 4)), dtype=np.uint8)
    if bit_width == 8:
        scale = (rng.standard_normal(rows) * np.exp2(rng.integers(-30, 10, size=rows))).astype(np.float32)
        bias = (rng.standard_normal(rows) * np.exp2(rng.integers(-10, 10, size=rows))).astype(np.float32)
        packed[:, code_bytes:code_bytes + 4] = scale.view(np.uint8).reshape(rows, 4)
        packed[:, code_bytes + 4:] = bias.view(np.uint8).reshape(rows, 4)
    else:
        scale = (rng.standard_normal(rows) * np.exp2(rng.integers(-14, 8, size=rows))).astype(np.float16)
        bias = (rng.standard_normal(rows) * np.exp2(rng.integers(-10, 8, size=rows))).astype(np.float16)
        packed[:, code_bytes:code_bytes + 2] = scale.view(np.uint8).reshape(rows, 2)
        packed[:, code_bytes + 2:] = bias.view(np.uint8).reshape(rows, 2)
    return packed


def random_bags(rng, n, num_bags, dtype):
    """Offsets of num_bags bags over n positions, starting at 0, empty bags included."""
    cuts = np.sort(rng.integers(0, n + 1, size=num_bags - 1)) if num_bags > 1 else np.array([], dtype=np.int64)
    return np.concatenate([[0], cuts]).astype(dtype)


CASES = [(bit_width, seed) for bit_width in (8, 4, 2) for seed in range(40)]


@pytest.mark.parametrize("bit_width,seed", CASES)
def test_bags_match_torch(bit_width, seed):
    """Prepacked and raw tables, every index/offset dtype pair, weighted or not, CSR or not, 1-D and 2-D inputs."""
    rng = np.random.default_rng(1000 * bit_width + seed)
    per_byte = 8 // bit_width
    for shape in range(6):
        rows = int(rng.integers(1, 60))
        dim = int(rng.choice([1, 2, 3, 4, 5, 7, 8, 12, 16, 17, 24, 31, 32, 33, 64, 100, 127, 128, 300, 768]))
        dim = max(per_byte, dim - dim % per_byte)
        if shape % 2 == 0:
            packed = PREPACK[bit_width](torch.from_numpy(random_weight(rng, rows, dim))).numpy()
        else:
            packed = raw_table(rng, bit_width, rows, dim)
        n = int(rng.integers(1, 80))
        index_dtype = rng.choice([np.int32, np.int64])
        offset_dtype = rng.choice([np.int32, np.int64])
        indices = rng.integers(0, rows, size=n).astype(index_dtype)
        offsets = random_bags(rng, n, int(rng.integers(1, 12)), offset_dtype)
        psw = (rng.standard_normal(n) * np.exp2(rng.integers(-4, 4, size=n))).astype(np.float32)
        for weights in (None, psw):
            for include_last_offset in (False, True):
                o = np.concatenate([offsets, [n]]).astype(offset_dtype) if include_last_offset else offsets
                expected = torch_bag(packed, bit_width, indices, o, weights, include_last_offset)
                actual = native_bag(packed, bit_width, indices, o, per_sample_weights=weights,
                                    include_last_offset=include_last_offset)
                assert np.array_equal(bits(expected), bits(actual)), (bit_width, rows, dim, n, include_last_offset)

        # A 2-D input: fixed-size bags, torch with offsets None.
        width = int(rng.integers(1, 6))
        batch = int(rng.integers(1, 10))
        two_d = rng.integers(0, rows, size=(batch, width)).astype(index_dtype)
        w2 = psw[: batch * width] if batch * width <= n else None
        expected = BAG[bit_width](torch.from_numpy(packed), torch.from_numpy(two_d), None, False, 0, False,
                                  None if w2 is None else torch.from_numpy(w2.reshape(batch, width).copy()), None, False)
        actual = native_bag(packed, bit_width, two_d, bag_size=width, per_sample_weights=w2)
        assert np.array_equal(bits(expected), bits(actual)), ("2-D", bit_width, rows, dim, batch, width)


@pytest.mark.parametrize("bit_width", [8, 4, 2])
def test_pruned_bags_match_torch(bit_width):
    """compressed_indices_mapping: indices select mapping entries, -1 adds nothing (torch's pruned_weights)."""
    rng = np.random.default_rng(7 + bit_width)
    for _ in range(8):
        rows = int(rng.integers(1, 40))
        dim = 8 * int(rng.integers(1, 20))
        packed = PREPACK[bit_width](torch.from_numpy(random_weight(rng, rows, dim))).numpy()
        mapping = np.where(rng.random(rows + 25) < 0.3, -1, rng.integers(0, rows, size=rows + 25)).astype(np.int32)
        n = int(rng.integers(1, 70))
        indices = rng.integers(0, len(mapping), size=n).astype(rng.choice([np.int32, np.int64]))
        offsets = random_bags(rng, n, int(rng.integers(1, 9)), np.int64)
        psw = rng.standard_normal(n).astype(np.float32)
        for weights in (None, psw):
            expected = torch_bag(packed, bit_width, indices, offsets, weights, mapping=mapping)
            actual = native_bag(packed, bit_width, indices, offsets, per_sample_weights=weights, mapping=mapping)
            assert np.array_equal(bits(expected), bits(actual)), (bit_width, rows, dim, n)


def test_double_rounding_matches_torch_8bit():
    """x = 1 + s·130 = 1 + 2^-24 + 2^-54: torch's double fma rounds to the midpoint, then to even (1.0)."""
    scale = np.float32(16519105 * 2.0 ** -55)
    row = np.zeros((1, 9), dtype=np.uint8)
    row[0, 0] = 130
    row[0, 1:5] = np.array([scale], dtype=np.float32).view(np.uint8)
    row[0, 5:9] = np.array([1.0], dtype=np.float32).view(np.uint8)
    indices, offsets = np.array([0]), np.array([0])
    expected = torch_bag(row, 8, indices, offsets)
    actual = native_bag(row, 8, indices, offsets)
    assert expected.item() == 1.0
    assert np.array_equal(bits(expected), bits(actual))


def test_double_rounding_matches_torch_4bit():
    """Weights 2^-60 and s = 5592407·2^-24 on codes 1 and 3 (scale 1.0): s·3 is a float midpoint above 2^-60."""
    packed = np.zeros((2, 6), dtype=np.uint8)
    packed[0, 0], packed[1, 0] = 0x11, 0x33
    packed[:, 2:4] = np.array([1.0], dtype=np.float16).view(np.uint8)
    psw = np.array([2.0 ** -60, 5592407 * 2.0 ** -24], dtype=np.float32)
    indices, offsets = np.array([0, 1]), np.array([0])
    expected = torch_bag(packed, 4, indices, offsets, psw)
    actual = native_bag(packed, 4, indices, offsets, per_sample_weights=psw)
    assert expected[0, 0].item() == 1 + 2 * 2.0 ** -23
    assert np.array_equal(bits(expected), bits(actual))


def _module_table(rng, bit_width, rows, dim):
    """A torch.ao.nn.quantized.Embedding of random weights, and the fused rows its prepack holds."""
    dtype = torch.quint8 if bit_width == 8 else torch.quint4x2
    w = torch.from_numpy(random_weight(rng, rows, dim))
    scales = torch.from_numpy((rng.random(rows) * 0.1 + 1e-3).astype(np.float32))
    zero_points = torch.from_numpy(rng.standard_normal(rows).astype(np.float32))
    qweight = torch.quantize_per_channel(w, scales, zero_points, 0, dtype)
    module = torch.ao.nn.quantized.Embedding(rows, dim, dtype=dtype)
    module.set_weight(qweight)
    # PackedEmbeddingBagWeight::prepack: scale, and bias = zero_point * scale * -1, in float (float16 for 4-bit).
    scale = qweight.q_per_channel_scales().numpy().astype(np.float32)
    bias = (qweight.q_per_channel_zero_points().numpy().astype(np.float32) * scale) * np.float32(-1)
    codes = qweight.int_repr().numpy().reshape(rows, -1)
    if bit_width == 8:
        tail = np.concatenate([scale.view(np.uint8).reshape(rows, 4), bias.view(np.uint8).reshape(rows, 4)], axis=1)
    else:
        tail = np.concatenate([scale.astype(np.float16).view(np.uint8).reshape(rows, 2),
                               bias.astype(np.float16).view(np.uint8).reshape(rows, 2)], axis=1)
    return module, np.concatenate([codes, tail], axis=1)


@pytest.mark.parametrize("bit_width", [8, 4])
def test_lookups_match_nnq_embedding(bit_width):
    """quantized::embedding_byte / embedding_4bit through torch.ao.nn.quantized.Embedding, 1-D and 2-D inputs."""
    rng = np.random.default_rng(40 + bit_width)
    for _ in range(6):
        rows, dim = int(rng.integers(1, 50)), 2 * int(rng.integers(1, 80))
        module, packed = _module_table(rng, bit_width, rows, dim)
        for shape in ((int(rng.integers(1, 30)),), (int(rng.integers(1, 5)), int(rng.integers(1, 7)))):
            indices = rng.integers(0, rows, size=shape).astype(rng.choice([np.int32, np.int64]))
            expected = module(torch.from_numpy(indices))
            actual = native_lookup(packed, bit_width, indices)
            assert expected.shape == actual.shape
            assert np.array_equal(bits(expected), bits(actual)), (bit_width, rows, dim, shape)


def test_lookup_is_a_bag_of_one_for_2bit_tables():
    """torch has no 2-bit lookup op; its 2-bit bag over bags of one index each computes the same."""
    rng = np.random.default_rng(3)
    packed = PREPACK[2](torch.from_numpy(random_weight(rng, 20, 36))).numpy()
    indices = rng.integers(0, 20, size=25)
    expected = torch_bag(packed, 2, indices, np.arange(25))
    assert np.array_equal(bits(expected), bits(native_lookup(packed, 2, indices)))


def test_mean_is_the_sum_divided_by_the_count():
    """torch ignores mode; the library's mean is the sum over non-padding positions divided by their count."""
    rng = np.random.default_rng(5)
    packed = PREPACK[8](torch.from_numpy(random_weight(rng, 10, 16))).numpy()
    indices = np.array([1, 2, 3, 3, 7, 0], dtype=np.int64)
    offsets = np.array([0, 0, 1, 4], dtype=np.int64)
    total = native_bag(packed, 8, indices, offsets, padding_idx=3)
    mean = native_bag(packed, 8, indices, offsets, padding_idx=3, mode=EMB_BAG_MEAN)
    counts = np.array([1, 1, 1, 2], dtype=np.float32)
    assert np.array_equal(bits(mean), bits(total / counts[:, None]))


def test_out_of_range_mapping_entries_are_refused():
    """torch reads such entries out of bounds; the library refuses the call and writes nothing."""
    packed = PREPACK[4](torch.from_numpy(np.ones((3, 4), dtype=np.float32))).numpy()
    indices, offsets = np.array([0, 1], dtype=np.int64), np.array([0], dtype=np.int64)
    mapping = np.array([0, 3], dtype=np.int32)
    out = np.full(4, 7.0, dtype=np.float32)
    bags = EmbBags(indices=indices.ctypes.data, num_indices=2, index_dtype=EMB_DTYPE_INT64, offsets_dtype=EMB_DTYPE_INT64,
                   offsets=offsets.ctypes.data, num_offsets=1, bag_size=0, include_last_offset=0, reserved=0,
                   per_sample_weights=None, padding_idx=EMB_NO_PADDING)
    status = _bag(packed.ctypes.data, 4, 3, 4, ctypes.byref(bags), EMB_BAG_SUM, mapping.ctypes.data, 2, out.ctypes.data, 4)
    assert status == EMB_ERROR_INDEX_OUT_OF_RANGE
    assert "compressed_indices_mapping[1] = 3" in _bindings.emb_last_error().decode()
    assert (out == 7.0).all()
