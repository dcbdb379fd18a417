"""Row-wise quantized tables through the C ABI, bit for bit against torch 1.13.

emb_quantize / emb_quantize_optimized / emb_dequantize are called directly through ctypes (the
library the package loads) and compared with torch.ops.quantized.embedding_bag_{byte,4bit,2bit}_
prepack and _unpack: float32 and float16 weights, every dimension 1..300 torch accepts, random
tables of many scales and offsets, and adversarial rows (ties, +-0, subnormals, inf, NaN, values
that overflow float16). Dimensions torch refuses for 4/2-bit rows are compared with torch's
packing of the row padded with copies of its first element (same min and max), padding codes
masked to 0.

Documented differences that these tests work around rather than hide:
  * torch 1.13's byte prepack of a float16 weight returns a garbage row 0 (it reads freed memory);
    the library packs the exactly widened float32 values, which is torch's float32 prepack of
    weight.float() -- that is what the float16 byte cases compare with.
  * torch 1.13's optimized search never returns when a step is below half an ulp of the bound it
    moves (or underflows to 0); such rows are kept away from torch (_search_terminates) and the
    library's stop there is tested in tests/Embedding.Native.Tests/QuantizeTests.cs.
"""

import ctypes

import numpy as np
import pytest
import torch

import embedding_native as en
from embedding_native import _bindings

EMB_DTYPE_FLOAT32 = 1
EMB_DTYPE_FLOAT16 = 3

_DLL = _bindings.LIBRARY.dll


def _bind(name, *argtypes):
    # A private function object (dll[name] makes a new one), so these signatures never touch the
    # package's own bindings.
    fn = _DLL[name]
    fn.argtypes = list(argtypes)
    fn.restype = ctypes.c_int32
    return fn


_c_int32, _c_int64, _c_double, _ptr = ctypes.c_int32, ctypes.c_int64, ctypes.c_double, ctypes.c_void_p
emb_quantized_row_bytes = _bind("emb_quantized_row_bytes", _c_int32, _c_int64, ctypes.POINTER(_c_int64))
emb_quantize = _bind("emb_quantize", _ptr, _c_int32, _c_int64, _c_int64, _c_int32, _ptr, _c_int64)
emb_quantize_optimized = _bind("emb_quantize_optimized", _ptr, _c_int32, _c_int64, _c_int64, _c_int32,
                               _c_int64, _c_double, _ptr, _c_int64)
emb_dequantize = _bind("emb_dequantize", _ptr, _c_int64, _c_int64, _c_int32, _ptr, _c_int64)

PREPACK = {
    8: torch.ops.quantized.embedding_bag_byte_prepack,
    4: torch.ops.quantized.embedding_bag_4bit_prepack,
    2: torch.ops.quantized.embedding_bag_2bit_prepack,
}
UNPACK = {
    8: torch.ops.quantized.embedding_bag_byte_unpack,
    4: torch.ops.quantized.embedding_bag_4bit_unpack,
    2: torch.ops.quantized.embedding_bag_2bit_unpack,
}


def row_bytes(bits, dim):
    out = ctypes.c_int64(-1)
    assert emb_quantized_row_bytes(bits, dim, ctypes.byref(out)) == 0
    return out.value


def _last_error():
    return _bindings.emb_last_error().decode()


def quantize(weight, bits, nbins=None, ratio=None):
    """The library's packing of a 2-D float32 or float16 array: uint8 [rows, row_bytes]."""
    weight = np.ascontiguousarray(weight)
    rows, dim = weight.shape
    dtype = {np.dtype(np.float32): EMB_DTYPE_FLOAT32, np.dtype(np.float16): EMB_DTYPE_FLOAT16}[weight.dtype]
    packed = np.empty((rows, row_bytes(bits, dim)), np.uint8)
    if nbins is None:
        status = emb_quantize(weight.ctypes.data, dtype, rows, dim, bits, packed.ctypes.data, packed.size)
    else:
        status = emb_quantize_optimized(weight.ctypes.data, dtype, rows, dim, bits, nbins, ratio,
                                        packed.ctypes.data, packed.size)
    assert status == 0, _last_error()
    return packed


def dequantize(packed, dim, bits):
    packed = np.ascontiguousarray(packed)
    rows = packed.shape[0]
    out = np.empty((rows, dim), np.float32)
    status = emb_dequantize(packed.ctypes.data, rows, dim, bits, out.ctypes.data, out.size)
    assert status == 0, _last_error()
    return out


def torch_prepack(weight, bits, nbins=None, ratio=None):
    tensor = torch.from_numpy(np.ascontiguousarray(weight))
    if nbins is None:
        return PREPACK[bits](tensor).numpy()
    return PREPACK[bits](tensor, True, nbins, ratio).numpy()


def assert_same_bytes(ours, theirs, what):
    assert ours.shape == theirs.shape, what
    bad = np.argwhere(ours != theirs)
    assert bad.size == 0, "%s: first difference at %s: ours %s, torch %s" % (
        what, tuple(bad[0]), ours[tuple(bad[0][:1])].tobytes().hex(), theirs[tuple(bad[0][:1])].tobytes().hex())


def assert_same_floats(ours, theirs, what):
    a, b = ours.view(np.uint32), np.ascontiguousarray(theirs).view(np.uint32)
    bad = np.argwhere(a != b)
    assert bad.size == 0, "%s: first difference at %s: ours 0x%08x, torch 0x%08x" % (
        what, tuple(bad[0]), a[tuple(bad[0])], b[tuple(bad[0])])


def legal_dims(bits, limit=300):
    step = {8: 1, 4: 2, 2: 4}[bits]
    return [d for d in range(1, limit + 1) if d % step == 0]


def random_table(rng, rows, dim):
    """Rows of different scales (2^-20 .. 2^20) and offsets, some with repeated extremes and exact ties."""
    scale = np.float32(2.0) ** rng.integers(-20, 21, size=(rows, 1)).astype(np.float32)
    offset = (rng.standard_normal((rows, 1)) * rng.choice([0, 1, 100, 3000], size=(rows, 1))).astype(np.float32)
    table = (rng.standard_normal((rows, dim)).astype(np.float32) * scale + offset).astype(np.float32)
    if dim > 2:
        table[0, :] = np.round(table[0, :] * 2) / 2            # many halves: ties at .5 codes
        table[-1, 1] = table[-1, 0]                             # a repeated extreme candidate
    return table


SPECIALS = np.array([0.0, -0.0, 1.0, -1.0, 0.5, 1.5, 2.5, 7.5, 22.5, np.inf, -np.inf, np.nan, 1e-40, -1e-45,
                     65504.0, 65520.0, -65520.0, 3e38, -3e38, 1e-7, 1000.3], np.float32)


def adversarial_rows(rng, count, dim):
    rows = rng.choice(SPECIALS, size=(count, dim)).astype(np.float32)
    rows[0, :] = 5.0                                            # constant
    rows[1, :] = -0.0
    rows[1, 0] = 0.0                                            # +0 first, then -0s
    return rows


# ---- plain prepack -----------------------------------------------------------------------------

@pytest.mark.parametrize("bits", [8, 4, 2])
def test_prepack_float32_every_dim(bits):
    rng = np.random.default_rng(100 + bits)
    for dim in legal_dims(bits):
        weight = random_table(rng, 6, dim)
        assert_same_bytes(quantize(weight, bits), torch_prepack(weight, bits), "%d-bit, dim %d" % (bits, dim))


@pytest.mark.parametrize("bits", [8, 4, 2])
def test_prepack_float16_every_dim(bits):
    rng = np.random.default_rng(200 + bits)
    for dim in legal_dims(bits):
        weight = np.clip(random_table(rng, 6, dim), -60000, 60000).astype(np.float16)
        # 4/2-bit: torch's float16 prepack itself. 8-bit: torch 1.13 returns a garbage row 0 for a
        # float16 weight; the library packs the exact float32 values, torch's prepack of weight.float().
        theirs = torch_prepack(weight.astype(np.float32) if bits == 8 else weight, bits)
        assert_same_bytes(quantize(weight, bits), theirs, "%d-bit float16, dim %d" % (bits, dim))


@pytest.mark.parametrize("bits", [8, 4, 2])
@pytest.mark.parametrize("dtype", [np.float32, np.float16])
def test_prepack_adversarial_rows(bits, dtype):
    rng = np.random.default_rng(300 + bits)
    for dim in (4, 8, 12, 64):
        weight = adversarial_rows(rng, 64, dim)
        with np.errstate(over="ignore"):
            weight = weight.astype(dtype)
        theirs = torch_prepack(weight.astype(np.float32) if (bits == 8 and dtype == np.float16) else weight, bits)
        assert_same_bytes(quantize(weight, bits), theirs, "%d-bit %s adversarial, dim %d" % (bits, np.dtype(dtype).name, dim))


@pytest.mark.parametrize("bits", [4, 2])
def test_prepack_dims_torch_refuses(bits):
    """Padded with copies of the first element, a row keeps its min and max: torch's packing of the
    padded row is the library's, except the padding codes, which the library leaves 0."""
    per = 8 // bits
    rng = np.random.default_rng(400 + bits)
    for dim in range(1, 301):
        if dim % per == 0:
            continue
        weight = random_table(rng, 5, dim)
        padded_dim = -(-dim // per) * per
        padded = np.concatenate([weight, np.repeat(weight[:, :1], padded_dim - dim, axis=1)], axis=1)
        theirs = torch_prepack(padded, bits).copy()
        last = padded_dim // per - 1
        theirs[:, last] &= (1 << ((dim % per) * bits)) - 1
        assert_same_bytes(quantize(weight, bits), theirs, "%d-bit, odd dim %d" % (bits, dim))
        with pytest.raises(RuntimeError, match="multiple of"):
            torch_prepack(weight, bits)


# ---- optimized prepack -------------------------------------------------------------------------

def _search_terminates(row, nbins):
    """False when torch 1.13's search could repeat one iteration forever on this row: a finite
    range whose step (range / nbins in float32) is 0 or not above an ulp of the larger bound."""
    row = row.astype(np.float32)
    if np.isnan(row[0]):
        return True                      # min = max = NaN: no search
    lo, hi = np.float32(np.nanmin(row)), np.float32(np.nanmax(row))
    with np.errstate(over="ignore", invalid="ignore"):
        span = np.float32(hi - lo)
        if not np.isfinite(span):
            return True                  # an infinite or NaN step ends the search at once
        step = np.float32(span / np.float32(nbins))
    return bool(step > 0 and step > 2.0 ** -22 * max(abs(float(lo)), abs(float(hi))))


def terminating(weight, nbins):
    return weight[[_search_terminates(row, nbins) for row in weight]]


@pytest.mark.parametrize("bits", [4, 2])
def test_optimized_default_parameters(bits):
    rng = np.random.default_rng(500 + bits)
    for dim in legal_dims(bits)[::3]:
        weight = terminating(random_table(rng, 6, dim), 200)
        assert_same_bytes(quantize(weight, bits, 200, 0.16), torch_prepack(weight, bits, 200, 0.16),
                          "optimized %d-bit, dim %d" % (bits, dim))


@pytest.mark.parametrize("bits", [4, 2])
def test_optimized_nbins_and_ratio(bits):
    """Random nbins and ratios, including ratios float32 cannot hold (torch searches with
    int(nbins * (1.0 - (float)ratio)) bins left): many rows per call."""
    rng = np.random.default_rng(600 + bits)
    ratios = [0.0, 1.0, 0.16, 0.1, 1 / 3, 0.5, 0.999, 0.123456789]
    for trial in range(60):
        dim = int(rng.choice(legal_dims(bits)[:40]))
        nbins = int(rng.integers(1, 401))
        ratio = float(ratios[trial % len(ratios)] if trial < 2 * len(ratios) else rng.uniform(0, 1))
        weight = terminating(random_table(rng, 20, dim), nbins)
        assert_same_bytes(quantize(weight, bits, nbins, ratio), torch_prepack(weight, bits, nbins, ratio),
                          "optimized %d-bit, dim %d, nbins %d, ratio %r" % (bits, dim, nbins, ratio))


@pytest.mark.parametrize("bits", [4, 2])
def test_optimized_float16(bits):
    rng = np.random.default_rng(700 + bits)
    for dim in (2 * bits, 16, 64, 300 - 300 % (8 // bits)):
        weight = np.clip(random_table(rng, 30, dim), -60000, 60000).astype(np.float16)
        weight = terminating(weight, 200)
        assert_same_bytes(quantize(weight, bits, 200, 0.16), torch_prepack(weight, bits, 200, 0.16),
                          "optimized %d-bit float16, dim %d" % (bits, dim))


@pytest.mark.parametrize("bits", [4, 2])
def test_optimized_adversarial_rows(bits):
    rng = np.random.default_rng(800 + bits)
    for dim in (4, 8, 16):
        weight = terminating(adversarial_rows(rng, 200, dim), 200)
        assert len(weight) > 50
        assert_same_bytes(quantize(weight, bits, 200, 0.16), torch_prepack(weight, bits, 200, 0.16),
                          "optimized %d-bit adversarial, dim %d" % (bits, dim))


# ---- unpack ------------------------------------------------------------------------------------

def random_packed(rng, rows, bits, dim):
    """Random codes with random scale/bias bit patterns: ordinary values, subnormals, inf and NaNs
    with payloads (torch's NaN propagation: the product's NaN wins over the bias's)."""
    nbytes = row_bytes(bits, dim)
    packed = rng.integers(0, 256, size=(rows, nbytes), dtype=np.uint8)
    width = 4 if bits == 8 else 2
    ordinary = (rng.standard_normal((rows, 2)) * 10).astype(np.float32 if bits == 8 else np.float16)
    raw = ordinary.view(np.uint32 if bits == 8 else np.uint16).copy()
    wild = rng.integers(0, 2 ** (8 * width), size=(rows, 2), dtype=np.uint64).astype(raw.dtype)
    pick = rng.random((rows, 2)) < 0.3
    raw[pick] = wild[pick]
    packed[:, nbytes - 2 * width:] = raw.view(np.uint8).reshape(rows, 2 * width)
    return packed


@pytest.mark.parametrize("bits", [8, 4, 2])
def test_unpack_every_dim(bits):
    rng = np.random.default_rng(900 + bits)
    for dim in legal_dims(bits):
        packed = random_packed(rng, 8, bits, dim)
        with np.errstate(all="ignore"):
            theirs = UNPACK[bits](torch.from_numpy(packed)).numpy()
        assert_same_floats(dequantize(packed, dim, bits), theirs, "%d-bit unpack, dim %d" % (bits, dim))


@pytest.mark.parametrize("bits", [4, 2])
def test_unpack_dims_torch_refuses(bits):
    """torch reads every code slot of the packed width as a column; the library returns the first dim."""
    rng = np.random.default_rng(1000 + bits)
    per = 8 // bits
    for dim in range(1, 301):
        if dim % per == 0:
            continue
        packed = random_packed(rng, 6, bits, dim)
        theirs = UNPACK[bits](torch.from_numpy(packed)).numpy()
        assert theirs.shape[1] == -(-dim // per) * per
        assert_same_floats(dequantize(packed, dim, bits), theirs[:, :dim], "%d-bit unpack, odd dim %d" % (bits, dim))


@pytest.mark.parametrize("bits", [8, 4, 2])
def test_round_trip_through_torch(bits):
    """Our packing unpacked by torch equals our own unpacking, and torch's packing unpacked by us
    equals torch's unpacking."""
    rng = np.random.default_rng(1100 + bits)
    dim = 96
    weight = random_table(rng, 50, dim)
    ours = quantize(weight, bits)
    assert_same_floats(dequantize(ours, dim, bits), UNPACK[bits](torch.from_numpy(ours)).numpy(), "ours unpacked")
    theirs = torch_prepack(weight, bits)
    assert_same_floats(dequantize(theirs, dim, bits), UNPACK[bits](torch.from_numpy(theirs)).numpy(), "torch's unpacked")


@pytest.mark.parametrize("bits", [8, 4, 2])
def test_many_threads_same_bytes(bits):
    rng = np.random.default_rng(1200 + bits)
    weight = random_table(rng, 20000, 64)
    before = en.get_num_threads()
    try:
        en.set_num_threads(4)
        packed = quantize(weight, bits)
        restored = dequantize(packed, 64, bits)
        searched = terminating(weight[:2000], 200)
        optimized = quantize(searched, bits, 200, 0.16) if bits != 8 else None
    finally:
        en.set_num_threads(before)
    assert_same_bytes(packed, torch_prepack(weight, bits), "%d-bit, 4 threads" % bits)
    assert_same_floats(restored, UNPACK[bits](torch.from_numpy(packed)).numpy(), "%d-bit unpack, 4 threads" % bits)
    if optimized is not None:
        assert_same_bytes(optimized, torch_prepack(searched, bits, 200, 0.16), "optimized %d-bit, 4 threads" % bits)


def test_refusals_leave_the_output_alone():
    weight = np.ones((2, 4), np.float32)
    packed = np.full((2, 12), 0xA5, np.uint8)
    assert emb_quantize(weight.ctypes.data, EMB_DTYPE_FLOAT32, 2, 4, 3, packed.ctypes.data, packed.size) == 1
    assert "bit_width is 3" in _last_error()
    assert emb_quantize(weight.ctypes.data, 2, 2, 4, 8, packed.ctypes.data, packed.size) == 5
    assert emb_quantize_optimized(weight.ctypes.data, EMB_DTYPE_FLOAT32, 2, 4, 8, 200, 0.16, packed.ctypes.data, packed.size) == 1
    assert emb_quantize(weight.ctypes.data, EMB_DTYPE_FLOAT32, 2, 4, 8, packed.ctypes.data, packed.size - 1) == 6
    assert (packed == 0xA5).all()


def test_build_info_names_the_quantized_formats():
    info = en.build_info()
    assert info["quantized_bits"] == [8, 4, 2]
    assert info["table_dtypes"]["quantize"] == ["float32", "float16"]
