"""embedding_native.quantized parity with torch.ops.quantized (torch 1.13, no FBGEMM: its fallback code).

* prepack (8/4/2-bit, float32 and float16 weights, optimized_qparams), unpack, the rowwise_offsets
  bags and embedding_byte / embedding_4bit: bit-identical (NaN equal to NaN), every dimension torch
  accepts from 1 to 300 sampled (8-bit: all up to 40; 4-bit: even; 2-bit: multiples of 4);
  int32/int64 indices and offsets in every combination, include_last_offset, per_sample_weights
  (float32; float16 for 4/2-bit), pruned tables with a compressed_indices_mapping (and the [0]
  fallback), 2-D indices, empty bags.
* results are numpy arrays for a numpy table and tensors for a tensor table.
* bad arguments raise torch's exception types (and torch's texts where ours are torch's); the
  inputs that crash torch 1.13 are run in subprocesses (all started at once) and only our side is
  asserted, with torch's outcome printed (-s).
"""

import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch

import embedding_native.quantized as enq
import embedding_native.torch.quantized as etq
from embedding_native.errors import EmbeddingError
from helpers import assert_same_error, raised, same_values

Q = torch.ops.quantized
NAMES = {8: "byte", 4: "4bit", 2: "2bit"}
BITS = [8, 4, 2]

#: Dimensions per bit width: every one torch accepts up to 40, then a stride to 300.
SAMPLED = list(range(1, 41)) + list(range(41, 301, 13)) + [64, 128, 256, 300]
DIMS = {8: sorted(set(SAMPLED)), 4: sorted({d for d in SAMPLED + [d + 1 for d in SAMPLED] if d % 2 == 0}),
        2: sorted({d for d in SAMPLED + [4 * (d // 4 + 1) for d in SAMPLED] if d % 4 == 0 and d <= 300})}


def ours(name, bits):
    return getattr(enq, "embedding_bag_%s_%s" % (NAMES[bits], name))


def theirs(name, bits):
    return getattr(Q, "embedding_bag_%s_%s" % (NAMES[bits], name))


def float_table(rows, dim, seed=0, specials=False, dtype=np.float32):
    """Rows of mixed ranges (constant rows, tiny and large ranges, negative-only rows)."""
    rng = np.random.default_rng(seed)
    w = rng.standard_normal((rows, dim)).astype(np.float32)
    w *= np.float32(10.0) ** rng.integers(-3, 3, size=(rows, 1)).astype(np.float32)
    if rows > 2:
        w[1] = w[1, 0]                       # a constant row: range 0
        w[2] = -np.abs(w[2])
    if specials and rows > 6 and dim > 1:
        w[3, 0] = np.nan
        w[4, dim - 1] = np.inf
        w[5, 0] = -np.inf
        w[6, :] = -0.0
    return w.astype(dtype)


def packed_table(bits, rows, dim, seed=0):
    return theirs("prepack", bits)(torch.from_numpy(float_table(rows, dim, seed))).numpy()


def random_bytes_table(bits, rows, dim, seed=0):
    """A packed table of random bytes whose scale and bias are finite floats of any magnitude the
    format allows (random codes, random mantissas and exponents)."""
    rng = np.random.default_rng(seed)
    width = dim + 8 if bits == 8 else -(-dim // (8 // bits)) + 4
    table = rng.integers(0, 256, size=(rows, width), dtype=np.uint8)
    if bits == 8:
        tail = (rng.standard_normal((rows, 2)) * 10.0 ** rng.integers(-6, 6, size=(rows, 2))).astype(np.float32)
    else:
        tail = (rng.standard_normal((rows, 2)) * 10.0 ** rng.integers(-3, 3, size=(rows, 2))).astype(np.float16)
    table[:, width - tail.itemsize * 2:] = tail.view(np.uint8).reshape(rows, -1)
    return table


def t(x):
    return None if x is None else torch.from_numpy(np.array(x, order="C"))


# ---- prepack and unpack ------------------------------------------------------------------------------


@pytest.mark.parametrize("bits", BITS)
def test_prepack_and_unpack_bit_exact_every_dimension(bits):
    for dim in DIMS[bits]:
        w = float_table(23, dim, seed=dim, specials=True)
        expected = theirs("prepack", bits)(torch.from_numpy(w)).numpy()
        packed = ours("prepack", bits)(w)
        assert packed.dtype == np.uint8 and np.array_equal(packed, expected), "bits=%d dim=%d" % (bits, dim)
        assert same_values(ours("unpack", bits)(packed), theirs("unpack", bits)(torch.from_numpy(expected))), dim


@pytest.mark.parametrize("bits", [4, 2])
def test_prepack_float16_bit_exact(bits):
    for dim in DIMS[bits][::3]:
        w = float_table(17, dim, seed=dim, specials=True, dtype=np.float16)
        expected = theirs("prepack", bits)(torch.from_numpy(w)).numpy()
        assert np.array_equal(ours("prepack", bits)(w), expected), dim


def test_byte_prepack_float16_is_the_exact_float32_prepack():
    # torch 1.13 returns a garbage row 0 for float16 (it reads freed memory); every other row is
    # the float32 prepack of the exactly converted weight, and so is ours, row 0 included.
    w = float_table(9, 12, seed=3, dtype=np.float16)
    packed = enq.embedding_bag_byte_prepack(w)
    assert np.array_equal(packed, Q.embedding_bag_byte_prepack(torch.from_numpy(w.astype(np.float32))).numpy())
    assert np.array_equal(packed[1:], Q.embedding_bag_byte_prepack(torch.from_numpy(w)).numpy()[1:])


@pytest.mark.parametrize("bits", [4, 2])
@pytest.mark.parametrize("nbins, ratio", [(200, 0.16), (50, 0.5), (10, 0.0), (1, 0.9), (7, 1.0), (0, 0.16)])
def test_prepack_optimized_qparams_bit_exact(bits, nbins, ratio):
    for dim in (4, 8, 12, 64, 100):
        w = float_table(11, dim, seed=dim + nbins)
        expected = theirs("prepack", bits)(torch.from_numpy(w), True, nbins, ratio).numpy()
        assert np.array_equal(ours("prepack", bits)(w, True, nbins, ratio), expected), dim
        assert np.array_equal(ours("prepack", bits)(w, optimized_qparams=True, nbins=nbins, ratio=ratio), expected)


def test_byte_prepack_takes_any_rank():
    w = float_table(12, 5, seed=1).reshape(3, 4, 5)
    packed = enq.embedding_bag_byte_prepack(w)
    assert packed.shape == (3, 4, 13)
    assert np.array_equal(packed, Q.embedding_bag_byte_prepack(torch.from_numpy(w)).numpy())
    assert same_values(enq.embedding_bag_byte_unpack(packed), Q.embedding_bag_byte_unpack(torch.from_numpy(packed)))
    one = enq.embedding_bag_byte_prepack(w[0, 0])
    assert np.array_equal(one, Q.embedding_bag_byte_prepack(torch.from_numpy(w[0, 0].copy())).numpy())


@pytest.mark.parametrize("bits", [4, 2])
def test_nbit_prepack_and_unpack_take_any_rank_as_rows(bits):
    # torch 1.13 reads size(0) x size(1) of a 3-D weight (a wrong shape); rows of the last dimension here.
    w = float_table(12, 8, seed=2).reshape(3, 4, 8)
    packed = ours("prepack", bits)(w)
    assert packed.shape == (3, 4, packed.shape[-1])
    assert np.array_equal(packed.reshape(12, -1), ours("prepack", bits)(w.reshape(12, 8)))
    assert same_values(ours("unpack", bits)(packed).reshape(12, 8), theirs("unpack", bits)(t(packed.reshape(12, -1))))


@pytest.mark.parametrize("bits", BITS)
def test_unpack_of_random_bytes_bit_exact(bits):
    for dim in DIMS[bits][::4]:
        table = random_bytes_table(bits, 19, dim, seed=dim)
        assert same_values(ours("unpack", bits)(table), theirs("unpack", bits)(t(table))), dim


@pytest.mark.parametrize("bits", BITS)
def test_results_follow_the_table_kind(bits):
    w = float_table(6, 8)
    packed = ours("prepack", bits)(w)
    assert type(packed) is np.ndarray
    packed_t = ours("prepack", bits)(torch.from_numpy(w))
    assert isinstance(packed_t, torch.Tensor) and np.array_equal(packed_t.numpy(), packed)
    assert type(ours("unpack", bits)(packed)) is np.ndarray
    assert isinstance(ours("unpack", bits)(packed_t), torch.Tensor)
    idx, off = np.array([0, 5, 2]), np.array([0, 1])
    bag = ours("rowwise_offsets", bits)
    assert type(bag(packed, t(idx), t(off))) is np.ndarray
    result = bag(packed_t, idx, off)
    assert isinstance(result, torch.Tensor) and result.dtype == torch.float32
    assert np.array_equal(result.numpy(), bag(packed, idx, off))


def test_non_contiguous_inputs_are_read_as_their_values():
    w = float_table(10, 16)
    packed = enq.embedding_bag_4bit_prepack(w)
    strided_w = np.asfortranarray(w)
    assert np.array_equal(enq.embedding_bag_4bit_prepack(strided_w), packed)
    idx = np.arange(20)[::2] % 10
    off = np.array([0, 0, 2, 2, 3, 3])[::2]
    expected = Q.embedding_bag_4bit_rowwise_offsets(t(packed), t(idx.copy()), t(off.copy()))
    assert same_values(enq.embedding_bag_4bit_rowwise_offsets(packed, idx, off), expected)
    wide = np.zeros((10, packed.shape[1] * 2), dtype=np.uint8)
    wide[:, ::2] = packed
    assert same_values(enq.embedding_bag_4bit_rowwise_offsets(wide[:, ::2], idx, off), expected)


# ---- bags ----------------------------------------------------------------------------------------------

V = 37


def layouts(num_indices, seed):
    """(name, offsets, include_last_offset) for a 1-D input of num_indices positions."""
    rng = np.random.default_rng(seed)
    cuts = np.sort(rng.integers(0, num_indices + 1, size=6))
    return [
        ("bags", np.concatenate([[0], cuts]), False),                   # empty bags among them
        ("ilo", np.concatenate([[0], cuts, [num_indices]]), True),
        ("ilo-trailing", np.concatenate([[0], cuts[:3]]), True),         # positions after the last offset
        ("one", np.array([0]), False),
    ]


def bag_case(bits, dim, index_dtype, offset_dtype, seed):
    rng = np.random.default_rng(seed)
    table = packed_table(bits, V, dim, seed=seed)
    idx = rng.integers(0, V, size=40).astype(index_dtype)
    idx[3] = idx[4] = V - 1
    return table, idx


@pytest.mark.parametrize("bits", BITS)
@pytest.mark.parametrize("index_dtype, offset_dtype", [(np.int64, np.int64), (np.int32, np.int32),
                                                       (np.int32, np.int64), (np.int64, np.int32)])
def test_bags_bit_exact(bits, index_dtype, offset_dtype):
    for dim in DIMS[bits][::2]:
        table, idx = bag_case(bits, dim, index_dtype, offset_dtype, seed=dim)
        psw = np.random.default_rng(dim).standard_normal(idx.size).astype(np.float32)
        for name, offsets, ilo in layouts(idx.size, dim):
            offsets = offsets.astype(offset_dtype)
            for weights in (None, psw):
                expected = theirs("rowwise_offsets", bits)(t(table), t(idx), t(offsets), per_sample_weights=t(weights),
                                                          include_last_offset=ilo)
                got = ours("rowwise_offsets", bits)(table, idx, offsets, per_sample_weights=weights,
                                                    include_last_offset=ilo)
                assert same_values(got, expected), (dim, name, weights is not None)


@pytest.mark.parametrize("bits", BITS)
def test_bags_of_random_byte_tables_bit_exact(bits):
    # Arbitrary scales and biases: the double-rounded accumulate shows wherever it differs from a float FMA.
    rng = np.random.default_rng(bits)
    for dim in DIMS[bits][::5]:
        table = random_bytes_table(bits, V, dim, seed=dim)
        idx = rng.integers(0, V, size=60)
        offsets = np.array([0, 1, 1, 7, 30, 31])
        psw = (rng.standard_normal(60) * 10.0 ** rng.integers(-4, 4, size=60)).astype(np.float32)
        for weights in (None, psw):
            expected = theirs("rowwise_offsets", bits)(t(table), t(idx), t(offsets), per_sample_weights=t(weights))
            assert same_values(ours("rowwise_offsets", bits)(table, idx, offsets, per_sample_weights=weights),
                               expected), dim


@pytest.mark.parametrize("bits", [4, 2])
def test_float16_per_sample_weights_bit_exact(bits):
    table, idx = bag_case(bits, 16, np.int64, np.int64, seed=5)
    psw = np.random.default_rng(1).standard_normal(idx.size).astype(np.float16)
    offsets = np.array([0, 3, 3, 20])
    expected = theirs("rowwise_offsets", bits)(t(table), t(idx), t(offsets), per_sample_weights=t(psw))
    assert same_values(ours("rowwise_offsets", bits)(table, idx, offsets, per_sample_weights=psw), expected)
    assert same_values(ours("rowwise_offsets", bits)(t(table), t(idx), t(offsets), per_sample_weights=t(psw)),
                       expected)


@pytest.mark.parametrize("bits", BITS)
@pytest.mark.parametrize("index_dtype", [np.int64, np.int32])
@pytest.mark.parametrize("ilo", [False, True])
def test_2d_indices_bit_exact(bits, index_dtype, ilo):
    # Fixed-size bags; with include_last_offset torch computes B - 1 bags (its offsets are
    # arange(0, B*L, L)), and so do we.
    for dim in (4, 8, 36, 100):
        table = packed_table(bits, V, dim, seed=dim)
        idx = np.random.default_rng(dim).integers(0, V, size=(6, 5)).astype(index_dtype)
        psw = np.random.default_rng(dim + 1).standard_normal((6, 5)).astype(np.float32)
        for weights in (None, psw):
            expected = theirs("rowwise_offsets", bits)(t(table), t(idx), per_sample_weights=t(weights),
                                                      include_last_offset=ilo)
            got = ours("rowwise_offsets", bits)(table, idx, per_sample_weights=weights, include_last_offset=ilo)
            assert got.shape == (5 if ilo else 6, dim) and same_values(got, expected), dim


@pytest.mark.parametrize("bits", BITS)
@pytest.mark.parametrize("mapping_dtype_index", [np.int64, np.int32])
def test_pruned_tables_bit_exact(bits, mapping_dtype_index):
    rows, dim = 9, 12
    table = packed_table(bits, rows, dim, seed=4)
    mapping = np.array([3, -1, 0, 8, -1, 2, 2, 7, 1, 5, -1, 4, 6, 0], dtype=np.int32)
    rng = np.random.default_rng(7)
    idx = rng.integers(0, mapping.size, size=30).astype(mapping_dtype_index)
    offsets = np.array([0, 2, 2, 9, 25])
    psw = rng.standard_normal(30).astype(np.float32)
    for weights in (None, psw):
        for ilo in (False, True):
            expected = theirs("rowwise_offsets", bits)(t(table), t(idx), t(offsets), pruned_weights=True,
                                                      per_sample_weights=t(weights), compressed_indices_mapping=t(mapping),
                                                      include_last_offset=ilo)
            got = ours("rowwise_offsets", bits)(table, idx, offsets, pruned_weights=True, per_sample_weights=weights,
                                                compressed_indices_mapping=mapping, include_last_offset=ilo)
            assert same_values(got, expected)
    # A mapping of [0] means "not pruned": indices are rows.
    idx = rng.integers(0, rows, size=30)
    zero = np.array([0], dtype=np.int32)
    expected = theirs("rowwise_offsets", bits)(t(table), t(idx), t(offsets), pruned_weights=True,
                                              compressed_indices_mapping=t(zero))
    assert same_values(ours("rowwise_offsets", bits)(table, idx, offsets, pruned_weights=True,
                                                     compressed_indices_mapping=zero), expected)
    # Without pruned_weights the mapping is not read (torch does not even check its type).
    expected = theirs("rowwise_offsets", bits)(t(table), t(idx), t(offsets), compressed_indices_mapping=t(mapping))
    assert same_values(ours("rowwise_offsets", bits)(table, idx, offsets,
                                                     compressed_indices_mapping=mapping.astype(np.float32)), expected)


@pytest.mark.parametrize("bits", BITS)
def test_empty_bags_and_no_indices(bits):
    table = packed_table(bits, V, 8)
    empty = np.array([], dtype=np.int64)
    for offsets, ilo in ((np.array([0, 0, 0]), False), (np.array([0, 0]), True), (np.array([0]), True)):
        expected = theirs("rowwise_offsets", bits)(t(table), t(empty), t(offsets), include_last_offset=ilo)
        got = ours("rowwise_offsets", bits)(table, empty, offsets, include_last_offset=ilo)
        assert same_values(got, expected) and not np.signbit(got).any()


def test_mode_and_scale_grad_by_freq():
    table = packed_table(4, V, 8)
    idx = np.array([1, 2, 3, 4, 5, 6, 7])
    offsets = np.array([0, 3, 3])
    summed = enq.embedding_bag_4bit_rowwise_offsets(table, idx, offsets)
    assert same_values(summed, Q.embedding_bag_4bit_rowwise_offsets(t(table), t(idx), t(offsets)))
    assert same_values(enq.embedding_bag_4bit_rowwise_offsets(table, idx, offsets, mode="sum"), summed)
    assert same_values(enq.embedding_bag_4bit_rowwise_offsets(table, idx, offsets, scale_grad_by_freq=True), summed)
    # mode 1 / "mean": the sum divided by the bag's count (torch 1.13 ignores mode and sums).
    mean = enq.embedding_bag_4bit_rowwise_offsets(table, idx, offsets, mode=1)
    expected = summed / np.array([[3], [1], [4]], dtype=np.float32)
    expected[1] = 0
    assert same_values(mean, expected.astype(np.float32))
    assert same_values(enq.embedding_bag_4bit_rowwise_offsets(table, idx, offsets, mode="mean"), mean)
    # A pruned position (mapped to -1) adds nothing and counts, as a row of zeros would.
    mapping = np.array([0, -1, 1, 2, -1, 4, 5, 6], dtype=np.int32)
    pruned = enq.embedding_bag_4bit_rowwise_offsets(table, idx, offsets, mode=1, pruned_weights=True,
                                                     compressed_indices_mapping=mapping)
    sums = enq.embedding_bag_4bit_rowwise_offsets(table, idx, offsets, pruned_weights=True,
                                                  compressed_indices_mapping=mapping)
    assert same_values(sums, Q.embedding_bag_4bit_rowwise_offsets(t(table), t(idx), t(offsets), pruned_weights=True,
                                                                  compressed_indices_mapping=t(mapping)))
    assert same_values(pruned[0], sums[0] / np.float32(3)) and same_values(pruned[2], sums[2] / np.float32(4))


def test_mode_refusals():
    table = packed_table(8, V, 8)
    idx, offsets = np.array([1, 2]), np.array([0])
    assert isinstance(raised(lambda: enq.embedding_bag_byte_rowwise_offsets(table, idx, offsets, mode=2)),
                      NotImplementedError)
    assert isinstance(raised(lambda: enq.embedding_bag_byte_rowwise_offsets(table, idx, offsets, mode="max")),
                      NotImplementedError)
    assert isinstance(raised(lambda: enq.embedding_bag_byte_rowwise_offsets(table, idx, offsets, mode=7)), ValueError)
    assert isinstance(raised(lambda: enq.embedding_bag_byte_rowwise_offsets(table, idx, offsets, mode="avg")),
                      ValueError)
    psw = np.ones(2, dtype=np.float32)
    assert isinstance(raised(lambda: enq.embedding_bag_byte_rowwise_offsets(table, idx, offsets, mode=1,
                                                                           per_sample_weights=psw)),
                      NotImplementedError)


# ---- embedding_byte / embedding_4bit and the packed-params bags -------------------------------------------


def quantized_weight(rows, dim, dtype, seed=0):
    rng = np.random.default_rng(seed)
    w = torch.from_numpy(float_table(rows, dim, seed))
    scales = torch.from_numpy((rng.random(rows) * 0.1 + 1e-3).astype(np.float32))
    zero_points = torch.from_numpy((rng.random(rows) * 15).astype(np.float32))
    return torch.quantize_per_channel(w, scales, zero_points, 0, dtype)


@pytest.mark.parametrize("bits, dtype", [(8, torch.quint8), (4, torch.quint4x2)])
@pytest.mark.parametrize("index_dtype", [torch.int64, torch.int32])
def test_embedding_lookups_bit_exact(bits, dtype, index_dtype):
    lookup = enq.embedding_byte if bits == 8 else enq.embedding_4bit
    torch_lookup = Q.embedding_byte if bits == 8 else Q.embedding_4bit
    for dim in (2, 4, 8, 16, 50, 64, 128, 300):
        qweight = quantized_weight(V, dim, dtype, seed=dim)
        params = Q.embedding_bag_prepack(qweight)
        packed = etq.embedding_bag_prepack(qweight)
        for shape in ((20,), (4, 5), (1, 1)):
            idx = torch.randint(0, V, shape, dtype=index_dtype, generator=torch.Generator().manual_seed(dim))
            expected = torch_lookup(params, idx)
            for weight in (packed, params, packed.packed, packed.packed.numpy()):
                got = lookup(weight, idx)
                assert got.shape == shape + (dim,) and same_values(got, expected), (dim, shape, type(weight))
        offsets = torch.tensor([0, 3, 3, 10])
        idx = torch.randint(0, V, (15,), dtype=index_dtype)
        torch_bag = Q.embedding_bag_byte if bits == 8 else Q.embedding_bag_4bit
        bag = enq.embedding_bag_byte if bits == 8 else enq.embedding_bag_4bit
        assert same_values(bag(packed, idx, offsets), torch_bag(params, idx, offsets))


def test_lookup_of_a_bit_width_the_op_does_not_take_raises():
    packed = etq.embedding_bag_prepack(quantized_weight(5, 8, torch.quint4x2))
    assert isinstance(raised(lambda: enq.embedding_byte(packed, torch.tensor([1]))), RuntimeError)
    assert isinstance(raised(lambda: enq.embedding_bag_byte(packed, torch.tensor([1]), torch.tensor([0]))),
                      RuntimeError)


def test_empty_lookups_give_empty_results():
    # torch 1.13 segfaults on empty indices here.
    packed = etq.embedding_bag_prepack(quantized_weight(5, 8, torch.quint8))
    assert enq.embedding_byte(packed, torch.tensor([], dtype=torch.long)).shape == (0, 8)
    assert enq.embedding_byte(packed, torch.zeros((3, 0), dtype=torch.long)).shape == (3, 0, 8)
    packed4 = etq.embedding_bag_prepack(quantized_weight(5, 8, torch.quint4x2))
    assert enq.embedding_4bit(packed4, np.zeros(0, dtype=np.int32)).shape == (0, 8)


# ---- errors ---------------------------------------------------------------------------------------------

P8 = packed_table(8, 6, 8)
P4 = packed_table(4, 6, 8)
P2 = packed_table(2, 6, 8)
I = np.array([0, 2, 5, 1])
O = np.array([0, 1, 3])
F32 = np.ones(4, dtype=np.float32)

#: (name, torch call, our call): torch raises; ours must raise an instance of torch's type.
ERROR_CASES = {
    "prepack-dtype": lambda m: m["byte_prepack"](np.ones((3, 4), np.float64)),
    "prepack-int": lambda m: m["byte_prepack"](np.ones((3, 4), np.int64)),
    "prepack-0d": lambda m: m["byte_prepack"](np.float32(1.0)),
    "4bit-prepack-dtype": lambda m: m["4bit_prepack"](np.ones((3, 4), np.float64)),
    "4bit-prepack-1d": lambda m: m["4bit_prepack"](np.ones(4, np.float32)),
    "4bit-prepack-odd": lambda m: m["4bit_prepack"](np.ones((3, 5), np.float32)),
    "2bit-prepack-cols": lambda m: m["2bit_prepack"](np.ones((3, 6), np.float32)),
    "4bit-prepack-nbins-float": lambda m: m["4bit_prepack"](np.ones((3, 4), np.float32), True, 2.0),
    "4bit-prepack-ratio-none": lambda m: m["4bit_prepack"](np.ones((3, 4), np.float32), True, 20, None),
    "unpack-dtype": lambda m: m["byte_unpack"](np.ones((3, 12), np.float32)),
    "unpack-narrow": lambda m: m["byte_unpack"](np.zeros((3, 7), np.uint8)),
    "4bit-unpack-narrow": lambda m: m["4bit_unpack"](np.zeros((3, 3), np.uint8)),
    "4bit-unpack-1d": lambda m: m["4bit_unpack"](np.zeros(12, np.uint8)),
    "4bit-unpack-dtype": lambda m: m["4bit_unpack"](np.zeros((3, 12), np.int8)),
    "bag-no-offsets": lambda m: m["byte_rowwise_offsets"](P8, I),
    "bag-2d-with-offsets": lambda m: m["byte_rowwise_offsets"](P8, I.reshape(2, 2), O),
    "bag-3d": lambda m: m["byte_rowwise_offsets"](P8, I.reshape(4, 1, 1), O),
    "bag-0d": lambda m: m["byte_rowwise_offsets"](P8, np.array(3), O),
    "bag-2d-zero-width": lambda m: m["byte_rowwise_offsets"](P8, np.zeros((3, 0), np.int64)),
    "bag-offsets-2d": lambda m: m["byte_rowwise_offsets"](P8, I, O.reshape(3, 1)),
    "bag-ilo-no-offsets": lambda m: m["byte_rowwise_offsets"](P8, I, np.array([], np.int64), include_last_offset=True),
    "bag-offsets-beyond": lambda m: m["byte_rowwise_offsets"](P8, I, np.array([0, 5])),
    "bag-ilo-beyond": lambda m: m["byte_rowwise_offsets"](P8, I, np.array([0, 5]), include_last_offset=True),
    "bag-index-float": lambda m: m["byte_rowwise_offsets"](P8, I.astype(np.float32), O),
    "bag-offsets-short": lambda m: m["byte_rowwise_offsets"](P8, I.astype(np.int32), O.astype(np.int16)),
    "bag-weight-float": lambda m: m["byte_rowwise_offsets"](P8.astype(np.float32), I, O),
    "bag-weight-1d": lambda m: m["byte_rowwise_offsets"](P8.reshape(-1), I, O),
    "bag-weight-narrow": lambda m: m["byte_rowwise_offsets"](np.zeros((6, 7), np.uint8), I, O),
    "bag-index-high": lambda m: m["byte_rowwise_offsets"](P8, np.array([0, 6]), O[:1]),
    "bag-index-negative": lambda m: m["byte_rowwise_offsets"](P8, np.array([0, -1]), O[:1]),
    "bag-psw-half": lambda m: m["byte_rowwise_offsets"](P8, I, O, per_sample_weights=F32.astype(np.float16)),
    "bag-psw-double": lambda m: m["byte_rowwise_offsets"](P8, I, O, per_sample_weights=F32.astype(np.float64)),
    "bag-mode-str-torch": lambda m: m["byte_rowwise_offsets"](P8, I, O, mode=None),
    "bag-mode-float": lambda m: m["byte_rowwise_offsets"](P8, I, O, mode=1.0),
    "bag-ilo-str": lambda m: m["byte_rowwise_offsets"](P8, I, O, include_last_offset="x"),
    "bag-offsets-int": lambda m: m["byte_rowwise_offsets"](P8, I, 5),
    "bag-psw-list": lambda m: m["byte_rowwise_offsets"](P8, I, O, per_sample_weights=[1.0]),
    "bag-indices-list": lambda m: m["byte_rowwise_offsets"](P8, [0, 1], O),
    "bag-pruned-no-mapping": lambda m: m["byte_rowwise_offsets"](P8, I, O, pruned_weights=True),
    "bag-pruned-mapping-int64": lambda m: m["byte_rowwise_offsets"](P8, I, O, pruned_weights=True,
                                                                    compressed_indices_mapping=np.array([0, 1])),
    "bag-pruned-index-high": lambda m: m["byte_rowwise_offsets"](
        P8, I, O, pruned_weights=True, compressed_indices_mapping=np.array([5, 4, -1, 3, 2], np.int32)),
    "bag-pruned-empty-mapping": lambda m: m["byte_rowwise_offsets"](
        P8, I, O, pruned_weights=True, compressed_indices_mapping=np.array([], np.int32)),
    "4bit-psw-double": lambda m: m["4bit_rowwise_offsets"](P4, I, O, per_sample_weights=F32.astype(np.float64)),
    "4bit-weight-float": lambda m: m["4bit_rowwise_offsets"](P4.astype(np.float32), I, O),
    "4bit-weight-1d": lambda m: m["4bit_rowwise_offsets"](P4.reshape(-1), I, O),
    "4bit-index-high": lambda m: m["4bit_rowwise_offsets"](P4, np.array([0, 6]), O[:1]),
    "4bit-2d-with-offsets": lambda m: m["4bit_rowwise_offsets"](P4, I.reshape(2, 2), O),
    "4bit-no-offsets": lambda m: m["4bit_rowwise_offsets"](P4, I),
    "4bit-pruned-no-mapping": lambda m: m["4bit_rowwise_offsets"](P4, I, O, pruned_weights=True),
    "2bit-index-high": lambda m: m["2bit_rowwise_offsets"](P2, np.array([0, 6]), O[:1]),
    "2bit-psw-bfloat16": lambda m: m["2bit_rowwise_offsets"](P2, I, O, per_sample_weights="bf16"),
}


class _Torch:
    """torch's ops under our short names, with numpy arguments made tensors ("bf16": bfloat16 ones)."""

    def __getitem__(self, name):
        op = getattr(Q, "embedding_bag_" + name)

        def call(*args, **kwargs):
            def conv(x):
                if isinstance(x, str) and x == "bf16":
                    return torch.ones(4, dtype=torch.bfloat16)
                return torch.from_numpy(np.array(x, order="C")) if isinstance(x, (np.ndarray, np.generic)) else x
            return op(*[conv(a) for a in args], **{k: conv(v) for k, v in kwargs.items()})
        return call


class _Ours:
    def __getitem__(self, name):
        op = getattr(enq, "embedding_bag_" + name)

        def call(*args, **kwargs):
            def conv(x):
                return torch.ones(4, dtype=torch.bfloat16) if isinstance(x, str) and x == "bf16" else x
            return op(*[conv(a) for a in args], **{k: conv(v) for k, v in kwargs.items()})
        return call


#: Cases where our text is torch's own (the rest: torch's type, our own words).
SAME_TEXT = {
    "prepack-dtype", "prepack-int", "4bit-prepack-dtype", "4bit-prepack-1d", "4bit-prepack-odd", "2bit-prepack-cols",
    "unpack-dtype", "4bit-unpack-1d", "4bit-unpack-dtype", "bag-no-offsets", "bag-2d-with-offsets", "bag-3d", "bag-0d",
    "bag-2d-zero-width", "bag-offsets-2d", "bag-index-float", "bag-offsets-short", "bag-weight-float", "bag-weight-1d",
    "bag-index-high", "bag-index-negative", "bag-psw-half", "bag-psw-double", "bag-offsets-beyond", "bag-ilo-beyond",
    "bag-pruned-mapping-int64", "bag-pruned-index-high", "bag-pruned-empty-mapping", "4bit-psw-double",
    "4bit-weight-float", "4bit-weight-1d", "4bit-index-high", "4bit-2d-with-offsets", "4bit-no-offsets",
    "2bit-index-high", "2bit-psw-bfloat16", "bag-mode-float", "bag-ilo-str", "bag-offsets-int", "bag-psw-list",
    "4bit-prepack-nbins-float", "4bit-prepack-ratio-none",
}


@pytest.mark.parametrize("name", sorted(ERROR_CASES))
def test_errors_have_torchs_types(name):
    case = ERROR_CASES[name]
    expected, got = assert_same_error(lambda: case(_Torch()), lambda: case(_Ours()), same_message=False)
    if name in SAME_TEXT:
        # torch's text, up to where torch's C++ op name differs from the Python-level one
        theirs_text = str(expected).split("\n")[0].replace("quantized::", "")
        assert str(got).replace("quantized::", "").startswith(theirs_text[:60]), (str(expected), str(got))
    assert isinstance(got, EmbeddingError) or isinstance(got, IndexError) or isinstance(got, ValueError)


def test_embedding_lookup_errors_have_torchs_types():
    qweight = quantized_weight(6, 8, torch.quint8)
    params = Q.embedding_bag_prepack(qweight)
    packed = etq.embedding_bag_prepack(qweight)
    for idx in (torch.tensor(3), torch.zeros((2, 1, 2), dtype=torch.long), torch.tensor([0, 6]),
                torch.tensor([1.0]), torch.tensor([-1])):
        assert_same_error(lambda: Q.embedding_byte(params, idx), lambda: enq.embedding_byte(packed, idx))
    assert_same_error(lambda: Q.embedding_byte(params, torch.tensor([1]), True),
                      lambda: enq.embedding_byte(packed, torch.tensor([1]), True), same_message=False)


# ---- torch 1.13's crashes and garbage: our behaviour, torch's outcome in subprocesses ----------------------

PRELUDE = """
import json, sys, torch
q = torch.ops.quantized
torch.manual_seed(0)
P8 = q.embedding_bag_byte_prepack(torch.randn(6, 8))
P4 = q.embedding_bag_4bit_prepack(torch.randn(6, 8))
I = torch.tensor([0, 2, 5, 1])
def report(x):
    print(json.dumps(x)); sys.stdout.flush()
try:
{body}
except Exception as e:
    report({{"error": type(e).__name__, "message": str(e)[:200]}})
"""

TORCH_CASES = {
    "empty-offsets": "r = q.embedding_bag_byte_rowwise_offsets(P8, I, torch.tensor([], dtype=torch.long))\n"
                     "report({'shape': list(r.shape)})",
    "prepack-zero-columns": "r = q.embedding_bag_byte_prepack(torch.randn(3, 0))\nreport({'shape': list(r.shape)})",
}


def _no_core_dump():
    import resource
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


@pytest.fixture(scope="module")
def torch_outcomes():
    processes = {name: subprocess.Popen([sys.executable, "-c", PRELUDE.format(body=textwrap.indent(body, "    "))],
                                        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                        preexec_fn=_no_core_dump)
                 for name, body in TORCH_CASES.items()}
    outcomes = {}
    for name, process in processes.items():
        try:
            out, _ = process.communicate(timeout=120)
        except subprocess.TimeoutExpired:
            process.kill()
            out, _ = process.communicate()
        outcomes[name] = {"rc": process.returncode, "result": json.loads(out) if out.strip() else None}
        print("torch 1.13 %-26s %s" % (name, outcomes[name]))
    return outcomes


def test_zero_bags_give_empty_results(torch_outcomes):
    assert torch_outcomes["empty-offsets"]["rc"] != 0          # torch 1.13: segfault (a [0, L] input too)
    assert enq.embedding_bag_byte_rowwise_offsets(P8, I, np.array([], np.int64)).shape == (0, 8)
    assert enq.embedding_bag_4bit_rowwise_offsets(P4, np.zeros((0, 3), np.int64)).shape == (0, 8)
    assert enq.embedding_bag_4bit_rowwise_offsets(P4, np.zeros((0, 3), np.int64), include_last_offset=True).shape \
        == (0, 8)


def test_prepack_of_zero_columns_gives_rows_of_scale_and_bias_zero(torch_outcomes):
    assert torch_outcomes["prepack-zero-columns"]["rc"] != 0    # torch 1.13: reads past the row
    packed = enq.embedding_bag_byte_prepack(np.zeros((3, 0), np.float32))
    assert packed.shape == (3, 8) and not packed.any()
    assert enq.embedding_bag_byte_unpack(packed).shape == (3, 0)
    packed4 = enq.embedding_bag_4bit_prepack(np.zeros((3, 0), np.float32))
    assert packed4.shape == (3, 4) and not packed4.any()
    assert enq.embedding_bag_4bit_rowwise_offsets(packed4, np.array([0, 2]), np.array([0])).shape == (1, 0)


def test_offsets_must_start_at_zero():
    # torch 1.13 accepts offsets[0] != 0 and reads the bags from position 0 with the offsets' lengths.
    assert Q.embedding_bag_byte_rowwise_offsets(t(P8), t(I), t(np.array([1, 3]))).shape == (2, 8)
    assert isinstance(raised(lambda: enq.embedding_bag_byte_rowwise_offsets(P8, I, np.array([1, 3]))), RuntimeError)
    assert isinstance(raised(lambda: enq.embedding_bag_byte_rowwise_offsets(P8, I, np.array([0, 3, 1]))),
                      RuntimeError)


def test_out_of_bounds_reads_are_refused():
    # torch 1.13 reads past per_sample_weights and past the table for such mappings.
    short = np.ones(3, dtype=np.float32)
    assert isinstance(raised(lambda: enq.embedding_bag_byte_rowwise_offsets(P8, I, np.array([0, 2]),
                                                                           per_sample_weights=short)), RuntimeError)
    # Only the positions in a bag need weights (include_last_offset leaves later ones out), as torch reads them.
    got = enq.embedding_bag_byte_rowwise_offsets(P8, I, np.array([0, 2, 3]), per_sample_weights=short,
                                                 include_last_offset=True)
    expected = Q.embedding_bag_byte_rowwise_offsets(t(P8), t(I), t(np.array([0, 2, 3])),
                                                    per_sample_weights=t(np.ones(4, np.float32)),
                                                    include_last_offset=True)
    assert same_values(got, expected)
    for bad in (6, -2):
        mapping = np.array([0, 1, bad, 3, 4, 5], dtype=np.int32)
        assert isinstance(raised(lambda: enq.embedding_bag_byte_rowwise_offsets(
            P8, I, O, pruned_weights=True, compressed_indices_mapping=mapping)), RuntimeError)


@pytest.mark.parametrize("nbins, ratio", [(-5, 0.16), (200, 1.5), (200, -0.5)])
def test_search_parameters_outside_the_searchs_range_are_refused(nbins, ratio):
    # torch 1.13's search never ends for nbins < 0; with ratio > 1 its range crosses itself.
    weight = np.random.default_rng(0).standard_normal((2, 4)).astype(np.float32)
    assert isinstance(raised(lambda: enq.embedding_bag_4bit_prepack(weight, True, nbins, ratio)), RuntimeError)
    # Without optimized_qparams they are not used (torch's parser still checks their types).
    assert np.array_equal(enq.embedding_bag_4bit_prepack(weight, False, nbins, ratio),
                          Q.embedding_bag_4bit_prepack(torch.from_numpy(weight), False, nbins, ratio).numpy())


@pytest.mark.parametrize("bits", BITS)
def test_tables_of_dimension_zero(bits):
    # A packed width of just the scale and bias: torch reads D = 0 and returns empty rows, after
    # checking the indices.
    table = np.zeros((6, 8 if bits == 8 else 4), dtype=np.uint8)
    got = ours("rowwise_offsets", bits)(table, I, O)
    assert got.shape == (3, 0) and got.shape == tuple(theirs("rowwise_offsets", bits)(t(table), t(I), t(O)).shape)
    assert_same_error(lambda: theirs("rowwise_offsets", bits)(t(table), t(np.array([0, 6])), t(O[:1])),
                      lambda: ours("rowwise_offsets", bits)(table, np.array([0, 6]), O[:1]))
    mapping = np.array([1, -1, 7], dtype=np.int32)
    assert isinstance(raised(lambda: ours("rowwise_offsets", bits)(table, np.array([2]), O[:1], pruned_weights=True,
                                                                   compressed_indices_mapping=mapping)), RuntimeError)
    assert ours("rowwise_offsets", bits)(table, np.array([0, 1]), O[:1], pruned_weights=True,
                                         compressed_indices_mapping=mapping).shape == (1, 0)
    assert ours("unpack", bits)(table).shape == (6, 0)
    if bits != 2:
        lookup = enq.embedding_byte if bits == 8 else enq.embedding_4bit
        assert lookup(table, np.array([[0, 5]])).shape == (1, 2, 0)
        assert isinstance(raised(lambda: lookup(table, np.array([6]))), RuntimeError)


@pytest.mark.parametrize("bits", BITS)
def test_two_threads_give_torchs_bits(bits):
    # Large enough for the library to split prepack, bags and lookups over threads.
    import embedding_native as en
    weight = float_table(4000, 64, seed=11)
    rng = np.random.default_rng(11)
    idx = rng.integers(0, 4000, size=30000)
    offsets = np.sort(rng.integers(0, idx.size, size=500))
    offsets[0] = 0
    expected_table = theirs("prepack", bits)(torch.from_numpy(weight)).numpy()
    expected = theirs("rowwise_offsets", bits)(t(expected_table), t(idx), t(offsets))
    assert en.get_num_threads() == 1
    try:
        en.set_num_threads(2)
        assert np.array_equal(ours("prepack", bits)(weight), expected_table)
        assert same_values(ours("rowwise_offsets", bits)(expected_table, idx, offsets), expected)
        assert same_values(ours("unpack", bits)(expected_table), theirs("unpack", bits)(t(expected_table)))
    finally:
        en.set_num_threads(1)
