"""Reference models of torch 1.13 CPU embedding arithmetic per table dtype (numpy only).

Each function reproduces, bit for bit, what torch 1.13 computes on the CPU with one thread:
the accumulation type, where values are rounded to the storage dtype, fused vs separate
multiply-add, the order of additions and division vs reciprocal multiply. The docstrings say
which of those choices torch makes; ``docs/table-types.md`` tabulates them and says which were
verified against torch and which were read in its source.

Conventions
-----------
* ``dtype`` is one of ``"float64"``, ``"float32"``, ``"float16"``, ``"bfloat16"``.
* float64/float32/float16 arrays are numpy arrays of that dtype. numpy has no bfloat16, so a
  bfloat16 array is a ``uint16`` array of bit patterns; :func:`bf16_to_f32` and
  :func:`f32_to_bf16` convert.
* ``widen(x, dtype)`` gives the type torch computes a single element operation in (float32 for
  float16/bfloat16, as c10::Half / c10::BFloat16 operators do; the dtype itself otherwise), and
  ``narrow(x, dtype)`` rounds back to storage (double -> float -> half, as c10 converts).
* ``order`` arguments take the permutation torch's unstable ``sort`` produced for the indices,
  where torch sums in that order (sort-based backward, coalesce). Without it the models use a
  stable order, which matches torch only while no group of equal indices is reordered (always
  for at most 16 indices, see ``docs/table-types.md``).
"""

import ctypes
import ctypes.util
import functools
from fractions import Fraction

import numpy as np

DTYPES = ("float64", "float32", "float16", "bfloat16")
REDUCED = ("float16", "bfloat16")

_NP = {"float64": np.float64, "float32": np.float32, "float16": np.float16, "bfloat16": np.uint16}


# ---------------------------------------------------------------------------------------------
# Storage conversions
# ---------------------------------------------------------------------------------------------

def bf16_to_f32(bits):
    """bfloat16 bit patterns (uint16) -> float32 values (exact)."""
    bits = np.asarray(bits, dtype=np.uint16)
    return (bits.astype(np.uint32) << np.uint32(16)).view(np.float32)


def f32_to_bf16(values, nan=0x7FC0):
    """float32 values -> bfloat16 bit patterns, as c10::BFloat16(float) rounds.

    Round to nearest, ties to even, by adding 0x7FFF plus the kept low bit and truncating;
    overflow rounds to +-inf. Every NaN becomes ``nan``: 0x7FC0 in the scalar c10 conversion;
    torch's AVX2 vectorised conversion (``.to(torch.bfloat16)`` of a tensor, Vectorized
    arithmetic) writes 0xFFFF instead. Non-NaN values round identically on both paths.
    """
    v = np.asarray(values, dtype=np.float32)
    u = np.atleast_1d(v).view(np.uint32).astype(np.uint64)
    one, shift = np.uint64(1), np.uint64(16)
    out = ((u + ((u >> shift) & one) + np.uint64(0x7FFF)) >> shift).astype(np.uint16)
    out = out.reshape(v.shape)
    return np.where(np.isnan(v), np.uint16(nan), out).astype(np.uint16)


def np_dtype(dtype):
    """The numpy dtype that stores ``dtype`` (uint16 bit patterns for bfloat16)."""
    return _NP[dtype]


def compute_type(dtype):
    """The numpy type of one c10 scalar operation on ``dtype``."""
    return np.float64 if dtype == "float64" else np.float32


def widen(x, dtype):
    """Storage -> compute type (float16/bfloat16 -> float32; exact)."""
    if dtype == "bfloat16":
        return bf16_to_f32(x)
    return np.asarray(x).astype(compute_type(dtype))


def narrow(x, dtype):
    """Round float32/float64 values to storage ``dtype`` the way c10 converts.

    c10 converts double to half/bfloat16 through float, so a float64 input is rounded twice.
    """
    x = np.asarray(x)
    if dtype == "float64":
        return x.astype(np.float64)
    x32 = x.astype(np.float32)
    if dtype == "float32":
        return x32
    if dtype == "float16":
        with np.errstate(over="ignore"):  # overflow to +-inf is the intended rounding
            return x32.astype(np.float16)
    return f32_to_bf16(x32)


def scalar_to(value, dtype):
    """A Python float (double) converted to ``dtype``, as ``Scalar.to<scalar_t>()`` does."""
    return narrow(np.float64(value), dtype)


def to_float64(x, dtype):
    """Exact float64 values of a storage array (for tests and error bounds)."""
    return widen(x, dtype).astype(np.float64)


def zeros(shape, dtype):
    return np.zeros(shape, dtype=np_dtype(dtype))


# ---------------------------------------------------------------------------------------------
# Scalar arithmetic in a storage dtype
# ---------------------------------------------------------------------------------------------

def fma32(a, b, c):
    """float32 fused multiply-add, exactly rounded (elementwise, broadcasting).

    The float32 product is exact in float64; the float64 sum is made round-to-odd with the
    TwoSum error, which makes the final float64 -> float32 rounding a single correct rounding.
    """
    a = np.asarray(a, np.float32).astype(np.float64)
    b = np.asarray(b, np.float32).astype(np.float64)
    c = np.asarray(c, np.float32).astype(np.float64)
    with np.errstate(invalid="ignore", over="ignore"):
        p = a * b
        s = p + c
        bb = s - p
        err = (p - (s - bb)) + (c - bb)
        odd = (s.view(np.uint64) & np.uint64(1)) == 1
        fix = np.isfinite(s) & (err != 0) & ~odd
        s = np.where(fix, np.nextafter(s, np.where(err > 0, np.inf, -np.inf)), s)
    return s.astype(np.float32)


def fma64(a, b, c):
    """float64 fused multiply-add, exactly rounded (elementwise; via fractions, slow)."""
    a, b, c = np.broadcast_arrays(np.asarray(a, np.float64), np.asarray(b, np.float64),
                                  np.asarray(c, np.float64))
    out = np.empty(a.shape, np.float64)
    fa, fb, fc, fo = a.ravel(), b.ravel(), c.ravel(), out.reshape(-1)
    for i in range(fo.size):
        x, y, z = fa[i], fb[i], fc[i]
        if not (np.isfinite(x) and np.isfinite(y) and np.isfinite(z)):
            fo[i] = x * y + z
            continue
        exact = Fraction(float(x)) * Fraction(float(y)) + Fraction(float(z))
        if exact == 0:
            # Exact zero: sign as IEEE gives it for x*y + z.
            fo[i] = (x * y) + z
        else:
            fo[i] = float(exact)
    return out


def fma(a, b, c, dtype):
    """fma in the storage dtype (float32 or float64 only)."""
    return fma64(a, b, c) if dtype == "float64" else fma32(a, b, c)


@functools.lru_cache(maxsize=None)
def torch_kernels():
    """The ATen CPU kernel set torch runs in this process: ``"default"`` (a CPU without AVX2 and FMA, or
    ``ATEN_CPU_CAPABILITY=default``), ``"avx2"`` or ``"avx512"`` (only when the variable asks for it).
    Asked of torch itself, once."""
    import torch
    used = torch.__config__.show().split("CPU capability usage: ")[1].split()[0]
    return {"AVX2": "avx2", "AVX512": "avx512"}.get(used, "default")


def torch_fuses():
    """Whether torch's kernels fuse ``a*b + c`` into one rounding: its AVX2 and AVX-512 kernels, compiled
    with FMA, do; its default kernels round the product first."""
    return torch_kernels() != "default"


def bf16_fused_chunk():
    """Elements per chunk of torch's vectorised bfloat16 add (two ``Vectorized<BFloat16>``), whose
    ``a + alpha*b`` is one fused float operation: 32 with AVX2, 64 with AVX-512; 0 with the default
    kernels, which round the product to bfloat16 in every element."""
    return {"avx2": 32, "avx512": 64}.get(torch_kernels(), 0)


def madd(a, b, c, dtype):
    """``a*b + c`` in float32/float64 as torch's CPU kernels in this process round it (:func:`torch_fuses`):
    ``fma`` or ``rd(rd(a*b) + c)``."""
    return fma(a, b, c, dtype) if torch_fuses() else add(c, mul(a, b, dtype), dtype)


def add(a, b, dtype):
    """``a + b`` in ``dtype`` (c10 reduced types: float32 add, then one rounding)."""
    return narrow(widen(a, dtype) + widen(b, dtype), dtype)


def mul(a, b, dtype):
    return narrow(widen(a, dtype) * widen(b, dtype), dtype)


def div(a, b, dtype):
    with np.errstate(divide="ignore", invalid="ignore"):
        return narrow(widen(a, dtype) / widen(b, dtype), dtype)


# ---------------------------------------------------------------------------------------------
# nn.Embedding
# ---------------------------------------------------------------------------------------------

def embedding_forward(weight, indices):
    """F.embedding forward: a row gather; bits are copied (NaN payloads, -0.0 kept)."""
    return weight[np.asarray(indices, np.int64).reshape(-1)].reshape(
        np.shape(indices) + weight.shape[1:])


def _counts(flat, num_weights):
    return np.bincount(flat, minlength=num_weights)


def embedding_dense_backward(grad, indices, num_weights, dtype, padding_idx=None,
                             scale_grad_by_freq=False):
    """Dense gradient of F.embedding (``embedding_dense_backward``), in grad's dtype.

    grad_W starts at +0.0; positions are visited in flattened order and each non-padding
    position does ``grad_W[k] = add_(grad_W[k], g[i], alpha=scale)`` with scale = 1 or
    ``1.0 / count[k]`` (double, counts include padding). The add kernel's arithmetic:

    * float32/float64: ``fma(g, fl(scale), acc)`` (single rounding; plain add when scale = 1).
    * float16: ``rd(acc + rd(g * rd(scale)))`` (c10::Half operators, two roundings).
    * bfloat16: columns in whole 32-wide chunks of the flattened row (64 with AVX-512,
      :func:`bf16_fused_chunk`) use the vector kernel,
      ``rd(fma_f32(g, rd(scale), acc))`` (one rounding); the remaining ``D % 32`` columns use
      the scalar kernel, ``rd(acc + rd(g * rd(scale)))`` (two roundings). Without
      scale_grad_by_freq both are one correctly rounded add.

    With torch's default kernels (:func:`torch_fuses` false) nothing fuses: float32/float64
    ``rd(acc + rd(g * fl(scale)))``, bfloat16 the scalar kernel's rounding in every column.
    """
    g = np.asarray(grad).reshape(-1, grad.shape[-1]) if np.ndim(grad) else grad
    flat = np.asarray(indices, np.int64).reshape(-1)
    D = g.shape[1]
    out = zeros((num_weights, D), dtype)
    counts = _counts(flat, num_weights)
    chunk = bf16_fused_chunk()
    vec = D - D % chunk if dtype == "bfloat16" and chunk else 0
    for i, k in enumerate(flat):
        if padding_idx is not None and k == padding_idx:
            continue
        if not scale_grad_by_freq:
            out[k] = add(out[k], g[i], dtype)
            continue
        scale = 1.0 / counts[k]
        if dtype in ("float32", "float64"):
            out[k] = madd(g[i], scale_to(scale, dtype), out[k], dtype)
        else:
            a = scalar_to(scale, dtype)
            if vec:
                out[k, :vec] = narrow(fma32(widen(g[i, :vec], dtype), widen(a, dtype),
                                            widen(out[k, :vec], dtype)), dtype)
            out[k, vec:] = add(out[k, vec:], mul(g[i, vec:], a, dtype), dtype)
    return out


def scale_to(value, dtype):
    return scalar_to(value, dtype)


def embedding_sparse_backward(grad, indices, padding_idx=None):
    """Sparse gradient of F.embedding: uncoalesced (indices, values) in position order.

    Values are grad rows copied bit for bit (grad's dtype); padding positions are dropped.
    """
    g = np.asarray(grad).reshape(-1, grad.shape[-1])
    flat = np.asarray(indices, np.int64).reshape(-1)
    keep = np.ones(flat.shape, bool) if padding_idx is None else flat != padding_idx
    return flat[keep], g[keep]


def coalesce(indices, values, dtype, order=None):
    """``sparse.coalesce()`` of a (1, nnz) x D sparse tensor.

    Entries are visited in the sort permutation of the indices (``order``; torch uses its
    unstable sort). The first entry of each distinct index is copied (so -0.0 survives), later
    ones are added with ``axpy(alpha=1)``: one rounded add in ``dtype`` per entry.
    """
    indices = np.asarray(indices, np.int64)
    if order is None:
        order = np.argsort(indices, kind="stable")
    uniq = np.unique(indices)
    out = zeros((uniq.size,) + values.shape[1:], dtype)
    slot = -1
    prev = None
    for j in order:
        if indices[j] != prev:
            slot += 1
            prev = indices[j]
            out[slot] = values[j]
        else:
            out[slot] = add(out[slot], values[j], dtype)
    return uniq, out


# ---------------------------------------------------------------------------------------------
# Renorm (max_norm)
# ---------------------------------------------------------------------------------------------

_LIBM = ctypes.CDLL(ctypes.util.find_library("m") or "libm.so.6")
_LIBM.powf.restype = ctypes.c_float
_LIBM.powf.argtypes = [ctypes.c_float, ctypes.c_float]
_LIBM.pow.restype = ctypes.c_double
_LIBM.pow.argtypes = [ctypes.c_double, ctypes.c_double]


def _pow(x, y, dtype):
    """C ``pow`` / ``powf`` (numpy's SIMD power is not libm's and differs in the last bit)."""
    if dtype == "float64":
        return np.float64(_LIBM.pow(float(x), float(y)))
    return np.float32(_LIBM.powf(float(x), float(y)))


def _norm2_lanes(x, block):
    """float32 2-norm of torch's vectorised last-dim kernel.

    Eight float lanes; each whole block of ``block`` elements (8 float32, or 16 bfloat16 =
    two float vectors, low half first) does ``lane = fma(x, x, lane)``; the lanes are summed
    left to right; the tail continues ``acc = fma(x, x, acc)`` sequentially; then sqrt. With
    torch's default kernels (:func:`torch_fuses` false) every ``x*x`` is rounded, then added.
    """
    lanes = np.zeros(8, np.float32)
    n = x.size - x.size % block
    for d in range(0, n, 8):
        lanes = madd(x[d:d + 8], x[d:d + 8], lanes, "float32")
    acc = lanes[0]
    for j in range(1, 8):
        acc = np.float32(acc + lanes[j])
    for v in x[n:]:
        acc = madd(v, v, acc, "float32")
    return np.sqrt(np.float32(acc), dtype=np.float32)


def row_norm(row, norm_type, dtype):
    """``row.norm(p)`` of a 1-D contiguous row in ``dtype``, returned as float64.

    torch 1.13 reduces sequentially (one thread) with these accumulators:

    * p = 2, float32 / bfloat16: the vectorised last-dim kernel in float32 (see
      :func:`_norm2_lanes`), rounded to dtype. float64: sequential ``acc = fma(x, x, acc)``
      in double, sqrt. float16: sequential in half, ``acc = rd(acc + rd(x*x))``, sqrt in
      float, rounded to half.
    * p = 1: sequential ``acc + |x|`` in dtype (per-step rounding for half/bfloat16).
    * p = 0: count of non-zeros accumulated in dtype (bfloat16 stops counting at 256).
    * p = inf: max |x| (exact).
    * other p: sequential ``acc + pow(|x|, p)`` in dtype with C pow/powf; bfloat16 rounds
      the pow result to bfloat16 before the add, float16 adds the float pow result and
      rounds once; then ``pow(acc, 1/p)`` with 1/p computed in dtype.

    p reaches the norm kernel as a float (every dtype), and that value picks the norm: 2.0000001
    is the 2-norm, 1e-50 the count, 1e40 the max.
    """
    p = float(np.float32(norm_type))
    x = np.abs(widen(row, dtype))
    if p == np.inf:
        return float(x.max()) if x.size else 0.0
    if p == 2 and dtype in ("float32", "bfloat16"):
        r = _norm2_lanes(x.astype(np.float32), 16 if dtype == "bfloat16" else 8)
        return float(widen(narrow(r, dtype), dtype))
    ct = compute_type(dtype)
    acc = ct(0)
    pp = ct(widen(scalar_to(p, dtype), dtype))
    for v in x:
        if p == 2 and dtype == "float64":
            acc = madd(v, v, acc, "float64")[()]
            continue
        if p == 2:  # float16: c10::Half product, then c10::Half add
            term = widen(mul(v, v, dtype), dtype)
        elif p == 0:
            term = ct(v != 0)
        elif p == 1:
            term = v
        else:
            term = _pow(v, pp, dtype)
            if dtype == "bfloat16":
                term = widen(narrow(term, dtype), dtype)
        acc = widen(narrow(ct(acc + term), dtype), dtype)
    if p in (0, 1):
        r = acc
    elif p == 2:
        r = np.sqrt(acc)
    else:
        r = _pow(acc, widen(div(scalar_to(1.0, dtype), scalar_to(p, dtype), dtype), dtype), dtype)
    return float(widen(narrow(r, dtype), dtype))


def embedding_renorm_(weight, indices, max_norm, norm_type, dtype, norm=None):
    """In-place ``embedding_renorm_``: distinct referenced rows in ascending order.

    For each row r: ``n = norm(W[r])`` (dtype's own norm, widened to double); if ``n >
    max_norm``: ``s = max_norm / (n + 1e-7)`` in double, converted to ``dtype`` (through float
    for half/bfloat16), then ``W[r] = rd(W[r] * s)`` (one rounding; the product of two half
    or bfloat16 values is exact in float32). The norm is :func:`row_norm` unless ``norm``
    (a function of the row) is given: float32 p = 2 is the one norm :func:`row_norm` does not
    reproduce bit for bit (it is within 1 ulp of torch's).
    """
    norm = norm or (lambda row: row_norm(row, norm_type, dtype))
    for r in np.unique(np.asarray(indices, np.int64)):
        n = norm(weight[r])
        if n > max_norm:
            s = scalar_to(max_norm / (n + 1e-7), dtype)
            weight[r] = mul(weight[r], s, dtype)
    return weight


# ---------------------------------------------------------------------------------------------
# nn.EmbeddingBag forward
# ---------------------------------------------------------------------------------------------

def bag_bounds(offsets, n, include_last_offset=False):
    """[(start, end)] per bag for valid offsets (non-decreasing, start 0, end <= n)."""
    offsets = [int(o) for o in np.asarray(offsets).reshape(-1)]
    if include_last_offset:
        return [(offsets[b], offsets[b + 1]) for b in range(len(offsets) - 1)]
    ends = offsets[1:] + [n]
    return list(zip(offsets, ends))


def embedding_bag_forward(weight, indices, offsets, mode, dtype, per_sample_weights=None,
                          padding_idx=None, include_last_offset=False):
    """F.embedding_bag forward (float64, float32, float16; bfloat16 is refused by torch 1.13).

    sum:
      * float32: ``acc = +0.0``; per position in bag order ``acc = fma(W[i], psw_i, acc)``
        when padding_idx is None (psw_i = 1 without weights), ``acc = acc + fl(W[i]*psw_i)``
        when padding_idx is set.
      * float64: ``acc = acc + fl(W[i]*psw_i)`` (plain add without psw).
      * float16: float32 accumulator, ``acc = acc + float(W[i])*float(psw_i)`` (the product
        is exact), one rounding to half at the end; with padding_idx set, the same.
    mean: the sum above (rounded to dtype), then divided in dtype by ``max(count, 1)`` where
      count excludes padding: float16 is ``half(float(half(sum32)) / count)``.
    max: per column a strict ``>`` scan in bag order starting from the first non-padding
      entry; ties keep the first, NaN survives only as the first entry.
    Empty and all-padding bags give +0.0 rows.
    """
    flat = np.asarray(indices, np.int64).reshape(-1)
    bounds = bag_bounds(offsets, flat.size, include_last_offset)
    D = weight.shape[1]
    out = zeros((len(bounds), D), dtype)
    psw = None if per_sample_weights is None else np.asarray(per_sample_weights).reshape(-1)
    acc_t = np.float64 if dtype == "float64" else np.float32
    for b, (s, e) in enumerate(bounds):
        pos = [i for i in range(s, e) if padding_idx is None or flat[i] != padding_idx]
        if mode == "max":
            if pos:
                out[b] = _bag_max(weight, flat, pos, dtype)[0]
            continue
        if dtype == "float16":
            acc = np.zeros(D, np.float32)
            for i in pos:
                w = widen(weight[flat[i]], dtype)
                acc = acc + (w if psw is None else w * widen(psw[i], dtype))
            total = narrow(acc, dtype)
        else:
            acc = np.zeros(D, acc_t)
            for i in pos:
                w = weight[flat[i]]
                if psw is None:
                    acc = (acc + w).astype(acc_t)
                elif dtype == "float32" and padding_idx is None:
                    acc = fma32(w, psw[i], acc)
                else:
                    acc = (acc + (w * psw[i]).astype(acc_t)).astype(acc_t)
            total = acc.astype(np_dtype(dtype))
        if mode == "mean":
            total = div(total, np.float64(max(len(pos), 1)), dtype)
        out[b] = total
    return out


def _bag_max(weight, flat, pos, dtype):
    w = widen(weight[flat[pos[0]]], dtype)
    best = weight[flat[pos[0]]].copy()
    arg = np.full(weight.shape[1], flat[pos[0]], np.int64)
    for i in pos[1:]:
        row = weight[flat[i]]
        cand = widen(row, dtype)
        with np.errstate(invalid="ignore"):
            take = cand > w
        w = np.where(take, cand, w)
        best = np.where(take, row, best)
        arg = np.where(take, flat[i], arg)
    return best, arg


# ---------------------------------------------------------------------------------------------
# nn.EmbeddingBag backward
# ---------------------------------------------------------------------------------------------

def _bag_of(flat_size, bounds):
    bag = np.full(flat_size, -1, np.int64)
    for b, (s, e) in enumerate(bounds):
        bag[s:e] = b
    return bag


def embedding_bag_backward_dense(grad, weight, indices, offsets, mode, dtype,
                                 per_sample_weights=None, padding_idx=None,
                                 include_last_offset=False, scale_grad_by_freq=False,
                                 order=None):
    """Dense weight gradient of F.embedding_bag.

    sum/mean: positions are visited in the sort permutation of the flattened indices
    (``order``; torch uses its unstable sort), skipping padding. Each does
    ``axpy(alpha=(dtype)scale, g[bag], grad_W[k])`` with scale in double = psw_i (or 1),
    divided by the *buggy* frequency count when scale_grad_by_freq (the count of the value at
    position g of the sorted indices, g = the group ordinal; counts include padding), divided
    by the bag's non-padding count in mean mode (if non-zero). axpy arithmetic:

    * float32 / float64: ``acc = fma(g, fl(scale), acc)`` (axpy; ``rd(acc + rd(g * fl(scale)))``
      with torch's default kernels, :func:`madd`).
    * float16: ``acc = rd(acc + rd(rd(scale) * g))`` (c10::Half operators).

    max: per column, bags in increasing order (empty / all-padding bags skipped),
    ``grad_W[argmax] = rd(grad_W[argmax] + g[b])``.
    """
    flat = np.asarray(indices, np.int64).reshape(-1)
    V, D = weight.shape
    bounds = bag_bounds(offsets, flat.size, include_last_offset)
    bag = _bag_of(flat.size, bounds)
    out = zeros((V, D), dtype)
    if mode == "max":
        for b, (s, e) in enumerate(bounds):
            pos = [i for i in range(s, e) if padding_idx is None or flat[i] != padding_idx]
            if not pos:
                continue
            arg = _bag_max(weight, flat, pos, dtype)[1]
            for d in range(D):
                out[arg[d], d] = add(out[arg[d], d], grad[b, d], dtype)
        return out
    if order is None:
        order = np.argsort(flat, kind="stable")
    sorted_idx = flat[order]
    counts = _counts(flat, V)
    group_of = np.cumsum(np.r_[0, sorted_idx[1:] != sorted_idx[:-1]]) if flat.size else []
    sizes = [sum(1 for i in range(s, e) if padding_idx is None or flat[i] != padding_idx)
             for (s, e) in bounds]
    psw = None if per_sample_weights is None else np.asarray(per_sample_weights).reshape(-1)
    for j, i in enumerate(order):
        k = flat[i]
        if (padding_idx is not None and k == padding_idx) or bag[i] < 0:
            continue
        scale = 1.0 if psw is None else float(widen(psw[i], dtype))
        if scale_grad_by_freq:
            scale /= counts[sorted_idx[group_of[j]]]
        if mode == "mean" and sizes[bag[i]] != 0:
            scale /= sizes[bag[i]]
        a = scalar_to(scale, dtype)
        if dtype in ("float32", "float64"):
            out[k] = madd(grad[bag[i]], a, out[k], dtype)
        else:
            out[k] = add(out[k], mul(a, grad[bag[i]], dtype), dtype)
    return out


def embedding_bag_backward_sparse(grad, indices, offsets, mode, dtype, per_sample_weights=None,
                                  padding_idx=None, include_last_offset=False):
    """Sparse weight gradient of F.embedding_bag (sum / mean): uncoalesced, position order.

    values[i] = g[bag(i)] (copied), then in mean mode ``rd(values * rd(1 / count))`` with the
    reciprocal of the bag's non-padding count computed in dtype (1 / max(count, 1)), then with
    psw ``rd(values * psw_i)``.
    """
    flat = np.asarray(indices, np.int64).reshape(-1)
    bounds = bag_bounds(offsets, flat.size, include_last_offset)
    bag = _bag_of(flat.size, bounds)
    keep = [i for i in range(flat.size)
            if bag[i] >= 0 and (padding_idx is None or flat[i] != padding_idx)]
    vals = grad[bag[keep]].copy() if keep else zeros((0, grad.shape[1]), dtype)
    if mode == "mean" and keep:
        sizes = np.array([sum(1 for i in range(s, e) if padding_idx is None or flat[i] != padding_idx)
                          for (s, e) in bounds], np.int64)
        recip = div(scalar_to(1.0, dtype), np.maximum(sizes, 1).astype(np.float64), dtype)
        vals = mul(vals, recip[bag[keep]][:, None], dtype)
    if per_sample_weights is not None and keep:
        psw = np.asarray(per_sample_weights).reshape(-1)
        vals = mul(vals, psw[keep][:, None], dtype)
    return flat[keep], vals


def embedding_bag_psw_grad(grad, weight, indices, offsets, dtype, padding_idx=None,
                           include_last_offset=False):
    """Gradient of per_sample_weights: ``dpsw[i] = dot(g[bag(i)], W[idx[i]])``, 0 at padding.

    float32: sequential dot over D from +0.0, each product rounded before the add (netlib
    sdot). float64: the same in double. float16: the same with c10::Half operators
    (``acc = rd(acc + rd(g*w))``).
    """
    flat = np.asarray(indices, np.int64).reshape(-1)
    bounds = bag_bounds(offsets, flat.size, include_last_offset)
    bag = _bag_of(flat.size, bounds)
    out = zeros(flat.size, dtype)
    for i in range(flat.size):
        if bag[i] < 0 or (padding_idx is not None and flat[i] == padding_idx):
            continue
        acc = zeros((), dtype)
        for d in range(weight.shape[1]):
            acc = add(acc, mul(grad[bag[i], d], weight[flat[i], d], dtype), dtype)
        out[i] = acc
    return out


# ---------------------------------------------------------------------------------------------
# Elementwise tensor kernels the optimizers are built from (contiguous tensors, one thread)
# ---------------------------------------------------------------------------------------------

def tensor_add(a, b, alpha, dtype):
    """``a.add(b, alpha=alpha)`` on contiguous tensors (flattened order).

    float32/float64: ``fma(b, fl(alpha), a)`` everywhere (vector and scalar paths both fuse).
    float16: ``rd(a + rd(b * rd(alpha)))``. bfloat16: the first ``n - n % 32`` elements of the
    flattened tensor take the vector kernel, ``rd(fma_f32(b, rd(alpha), a))``; the last
    ``n % 32`` the scalar kernel, ``rd(a + rd(b * rd(alpha)))`` (64 with AVX-512,
    :func:`bf16_fused_chunk`). With torch's default kernels
    (:func:`torch_fuses` false) every type is ``rd(a + rd(b * rd(alpha)))`` everywhere.
    """
    shape = np.shape(a)
    a = np.asarray(a).reshape(-1)
    b = np.asarray(b).reshape(-1)
    al = scalar_to(alpha, dtype)
    if dtype in ("float32", "float64"):
        return madd(b, al, a, dtype).reshape(shape)
    out = add(a, mul(b, al, dtype), dtype)
    if dtype == "bfloat16" and bf16_fused_chunk():
        v = a.size - a.size % bf16_fused_chunk()
        out[:v] = narrow(fma32(widen(b[:v], dtype), widen(al, dtype), widen(a[:v], dtype)), dtype)
    return out.reshape(shape)


def axpy(y, x, alpha, dtype):
    """``cpublas::axpy``: ``y + alpha*x`` with alpha converted to dtype; float32/float64 fuse with
    torch's FMA kernels (:func:`madd`), the c10 reduced types round the product and the sum."""
    al = scalar_to(alpha, dtype)
    if dtype in ("float32", "float64"):
        return madd(x, al, y, dtype)
    return add(y, mul(x, al, dtype), dtype)


def add_sparse_(dense, indices, values, alpha, dtype):
    """``dense.add_(sparse, alpha=alpha)`` for a (1, nnz) x D sparse tensor, coalesced or not:
    entries in stored order, each ``dense[i] = axpy(dense[i], values[k], alpha)``."""
    for k, i in enumerate(np.asarray(indices, np.int64)):
        dense[i] = axpy(dense[i], values[k], alpha, dtype)
    return dense


def mul_scalar(a, s, dtype):
    """``a * s`` for a Python float s: ``rd(a * fl(s))`` (s converted to dtype first)."""
    return mul(a, scalar_to(s, dtype), dtype)


def sqrt(a, dtype):
    with np.errstate(invalid="ignore"):
        return narrow(np.sqrt(widen(a, dtype)), dtype)


def square(a, dtype):
    """``a.pow(2)``: one rounded product."""
    return mul(a, a, dtype)


# ---------------------------------------------------------------------------------------------
# Optimizer steps (torch.optim, 1.13 single-tensor code paths, default foreach=False)
# ---------------------------------------------------------------------------------------------

def sgd_step(param, grad, dtype, lr, momentum=0.0, dampening=0.0, weight_decay=0.0,
             nesterov=False, buf=None):
    """One ``torch.optim.SGD`` step with a dense gradient. Returns (param, buf).

    d = grad; if weight_decay: d = d.add(param, alpha=wd); if momentum: buf = clone(d) on
    the first step, else buf = (buf * m).add(d, alpha=1 - dampening); d = d.add(buf, alpha=m)
    (nesterov) or buf; param = param.add(d, alpha=-lr). Each add is :func:`tensor_add`.
    """
    d = grad
    if weight_decay != 0:
        d = tensor_add(d, param, weight_decay, dtype)
    if momentum != 0:
        if buf is None:
            buf = d.copy()
        else:
            buf = tensor_add(mul_scalar(buf, momentum, dtype), d, 1 - dampening, dtype)
        d = tensor_add(d, buf, momentum, dtype) if nesterov else buf
    return tensor_add(param, d, -lr, dtype), buf


def sgd_sparse_step(param, indices, values, dtype, lr):
    """SGD with a sparse gradient (no momentum, no weight decay): the gradient is applied
    uncoalesced, entry by entry, ``param[i] = axpy(param[i], v, -lr)``."""
    return add_sparse_(param.copy(), indices, values, -lr, dtype)


def addcmul(s, t1, t2, value, dtype):
    """``s.addcmul(t1, t2, value=v)``.

    float32/float64: ``fma(rd(v*t1), t2, s)`` with v converted to dtype (:func:`madd`: rounded
    twice with torch's default kernels). bfloat16: in float32 with v as a float32 (not rounded to
    bfloat16): ``rd(fma_f32(fl(v*t1), t2, s))``, the same bits as rounding the product first,
    since products of bfloat16 values are exact in float32.
    """
    if dtype == "bfloat16":
        v = np.float32(value)
        return narrow(fma32((v * widen(t1, dtype)).astype(np.float32), widen(t2, dtype),
                            widen(s, dtype)), dtype)
    return madd(mul(scalar_to(value, dtype), t1, dtype), t2, s, dtype)


def addcdiv(s, t1, t2, value, dtype):
    """``s.addcdiv(t1, t2, value=v)``: ``s + (v*t1)/t2`` left to right, no fusing.

    float32/float64: every op rounded in dtype. bfloat16: the three ops in float32 with v as a
    float32, one rounding to bfloat16 at the end.
    """
    if dtype == "bfloat16":
        v = np.float32(value)
        with np.errstate(divide="ignore", invalid="ignore"):
            q = (v * widen(t1, dtype)).astype(np.float32) / widen(t2, dtype)
        return narrow(widen(s, dtype) + q.astype(np.float32), dtype)
    return add(s, div(mul(scalar_to(value, dtype), t1, dtype), t2, dtype), dtype)


def adagrad_step(param, grad, state_sum, step, dtype, lr, lr_decay=0.0, eps=1e-10,
                 weight_decay=0.0):
    """One dense ``torch.optim.Adagrad`` step (``step`` counts from 1). Returns
    (param, state_sum).

    g = grad.add(param, alpha=wd) if wd; clr = lr / (1 + (step-1)*lr_decay) in double;
    sum = sum.addcmul(g, g, value=1); std = sqrt(sum) + eps (both rounded);
    param = param.addcdiv(g, std, value=-clr).
    """
    g = tensor_add(grad, param, weight_decay, dtype) if weight_decay != 0 else grad
    clr = lr / (1 + (step - 1) * lr_decay)
    state_sum = addcmul(state_sum, g, g, 1.0, dtype)
    std = add(sqrt(state_sum, dtype), scalar_to(eps, dtype), dtype)
    return addcdiv(param, g, std, -clr, dtype), state_sum


def adagrad_sparse_step(param, indices, values, state_sum, step, dtype, lr, lr_decay=0.0,
                        eps=1e-10, order=None):
    """One ``torch.optim.Adagrad`` step with a sparse gradient. Returns (param, state_sum).

    The gradient is coalesced (:func:`coalesce`, torch's sort order ``order``); then per
    listed row: sum[r] += v*v (axpy with alpha 1 of the rounded square); std =
    rd(rd(sqrt(sum[r])) + eps); param[r] = axpy(param[r], rd(v / std), -clr).
    """
    rows, v = coalesce(indices, values, dtype, order)
    clr = lr / (1 + (step - 1) * lr_decay)
    state_sum = add_sparse_(state_sum.copy(), rows, square(v, dtype), 1.0, dtype)
    std = add(sqrt(state_sum[rows], dtype), scalar_to(eps, dtype), dtype)
    return add_sparse_(param.copy(), rows, div(v, std, dtype), -clr, dtype), state_sum


def sparse_adam_step(param, indices, values, exp_avg, exp_avg_sq, step, dtype, lr=1e-3,
                     betas=(0.9, 0.999), eps=1e-8, order=None):
    """One ``torch.optim.SparseAdam`` step (``step`` counts from 1). Returns
    (param, exp_avg, exp_avg_sq).

    Coalesce the gradient (torch's sort order); per listed row, every op rounded in dtype:
    du = (v - m_old) * fl(1-b1); m += du; dv = (v*v - s_old) * fl(1-b2); s += dv;
    numer = du + m_old; denom = sqrt(dv + s_old) + fl(eps);
    step_size = lr*sqrt(1-b2^t)/(1-b1^t) (double); param += (numer/denom) * fl(-step_size).
    """
    b1, b2 = betas
    rows, v = coalesce(indices, values, dtype, order)
    m_old = exp_avg[rows]
    du = mul_scalar(add(v, mul_scalar(m_old, -1.0, dtype), dtype), 1 - b1, dtype)
    exp_avg = add_sparse_(exp_avg.copy(), rows, du, 1.0, dtype)
    s_old = exp_avg_sq[rows]
    dv = mul_scalar(add(square(v, dtype), mul_scalar(s_old, -1.0, dtype), dtype), 1 - b2, dtype)
    exp_avg_sq = add_sparse_(exp_avg_sq.copy(), rows, dv, 1.0, dtype)
    numer = add(du, m_old, dtype)
    denom = add(sqrt(add(dv, s_old, dtype), dtype), scalar_to(eps, dtype), dtype)
    step_size = lr * np.sqrt(1 - b2 ** step) / (1 - b1 ** step)
    upd = mul_scalar(div(numer, denom, dtype), -step_size, dtype)
    return add_sparse_(param.copy(), rows, upd, 1.0, dtype), exp_avg, exp_avg_sq
