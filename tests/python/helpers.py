"""Shared helpers for the parity tests: bit views, tables with special values, torch oracles."""

import numpy as np
import torch
import torch.nn.functional as F

#: The dimensions the library specialises (emb_build_info "specialised_dims").
SPECIALISED_DIMS = [8, 16, 32, 64, 96, 128, 256, 300, 384, 512, 768, 1024, 1536, 2048, 4096]
#: Dimensions that hit odd tails.
ODD_DIMS = [1, 3, 5, 17, 85, 163, 1000]
#: 1 … 300 sampled: every dim up to 40 (all tails of every vector width) then a stride.
SAMPLED_DIMS = list(range(1, 41)) + list(range(41, 301, 13))
ALL_DIMS = sorted(set(SPECIALISED_DIMS + ODD_DIMS + SAMPLED_DIMS))

# Bit patterns a copy must preserve: quiet NaN with payload, signalling NaN, negative NaN,
# -0.0, ±inf, the smallest subnormal, the largest finite.
SPECIAL_BITS = np.array([0x7FC00001, 0x7F800001, 0xFFC12345, 0x80000000, 0x7F800000, 0xFF800000,
                         0x00000001, 0x7F7FFFFF], dtype=np.uint32)


def bits(x):
    """The float32 bits of a numpy array or torch tensor, as a numpy uint32 array."""
    if isinstance(x, torch.Tensor):
        x = x.detach().numpy()
    assert x.dtype == np.float32
    return (x if x.flags.c_contiguous else x.copy()).view(np.uint32)


def table(num_embeddings, embedding_dim, seed=0, specials=True):
    """A random float32 table; with ``specials``, every SPECIAL_BITS pattern appears in it."""
    rng = np.random.default_rng(seed)
    w = rng.standard_normal((num_embeddings, embedding_dim), dtype=np.float32)
    if specials and w.size:
        flat = w.reshape(-1).view(np.uint32)
        positions = rng.integers(0, flat.size, size=len(SPECIAL_BITS))
        flat[positions] = SPECIAL_BITS
    return w


def indices(shape, num_embeddings, dtype=np.int64, seed=1):
    """Random indices in [0, V) with duplicates and both boundaries 0 and V-1 (when they fit)."""
    rng = np.random.default_rng(seed)
    idx = np.asarray(rng.integers(0, num_embeddings, size=shape), dtype=dtype)
    flat = idx.reshape(-1)
    if flat.size >= 1:
        flat[0] = num_embeddings - 1
    if flat.size >= 2:
        flat[-1] = 0
    if flat.size >= 4:
        flat[1] = flat[2]  # a duplicate next to each other
    return idx


def torch_embedding(idx, weight, **kwargs):
    """torch.nn.functional.embedding on numpy inputs, as a numpy array."""
    idx = np.asarray(idx)
    return F.embedding(torch.from_numpy(idx if idx.flags.c_contiguous else idx.copy()),
                       torch.from_numpy(weight), **kwargs).numpy()


def raised(call):
    """The exception ``call()`` raises (the test fails if it returns)."""
    try:
        call()
    except Exception as e:  # noqa: BLE001 - the point is to capture any type
        return e
    raise AssertionError("expected an exception, got a result")


def assert_same_error(torch_call, our_call, same_message=True):
    """Ours raises an instance of torch's exception type (and, optionally, the same text first).

    Returns (torch's exception, ours) for further checks.
    """
    theirs = raised(torch_call)
    ours = raised(our_call)
    assert isinstance(ours, type(theirs)), "torch raised %r, we raised %r" % (theirs, ours)
    if same_message:
        assert str(ours).startswith(str(theirs)), "torch: %r, ours: %r" % (str(theirs), str(ours))
    return theirs, ours


# ---- EmbeddingBag ------------------------------------------------------------------------------------


def same_values(a, b):
    """Bit-identical float32 arrays, except that any NaN equals any NaN (payloads of NaNs produced
    by arithmetic are not specified)."""
    a = a.detach().numpy() if isinstance(a, torch.Tensor) else np.asarray(a)
    b = b.detach().numpy() if isinstance(b, torch.Tensor) else np.asarray(b)
    if a.shape != b.shape or a.dtype != b.dtype:
        return False
    nan = np.isnan(a)
    return bool(np.array_equal(nan, np.isnan(b)) and np.array_equal(bits(np.where(nan, 0, a).astype(a.dtype)),
                                                                       bits(np.where(nan, 0, b).astype(b.dtype))))


#: Constant of the per-element bound |ours - torch| <= C * eps * sum|terms| (spec §4.2).
BAG_GRAD_C = 4.0


def within_bag_bound(ours, theirs, magnitude):
    """(ok, worst ratio): |ours - theirs| <= BAG_GRAD_C * eps * magnitude elementwise, with eps of
    the tensors' float dtype and ``magnitude`` the Σ|terms| of each element; the ratio is
    max |diff| / (eps * magnitude)."""
    eps = float(torch.finfo(theirs.dtype).eps)
    ours = ours.detach().double().numpy()
    theirs = theirs.detach().double().numpy()
    magnitude = magnitude.detach().double().numpy()
    diff = np.abs(ours - theirs)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(diff == 0, 0.0, diff / (eps * magnitude))
    return bool(np.all(diff <= BAG_GRAD_C * eps * magnitude)), float(np.max(ratio, initial=0.0))


# ---- max_norm ------------------------------------------------------------------------------------


#: The rounding part of the max_norm bound (docs/exactness.md): each side rounds its scale to
#: float32 and each product to float32, 2^-24 relative each: 2^-22 in all.
RENORM_ROUNDING = 2.0 ** -22


def exact_row_norms(w, p):
    """Row p-norms of a float32 table in float64 (what the library computes, to ~1e-16)."""
    a = np.abs(np.asarray(w, dtype=np.float64))
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        if p == float("inf"):
            return a.max(axis=1, initial=0.0)
        if p == -float("inf"):
            return a.min(axis=1, initial=float("inf"))
        if p == 0:
            return (a != 0).sum(axis=1).astype(np.float64)
        return (a ** p).sum(axis=1) ** (1.0 / p)


def torch_norm_error(w, p):
    """Per row: |torch's row.norm(p) / exact norm - 1|. torch's embedding_renorm_ scales by
    max_norm / (row.norm(p) + 1e-7) with that float32 norm; 0 where either norm is 0 or not finite."""
    import torch as _torch
    theirs = np.array([_torch.from_numpy(np.ascontiguousarray(row)).norm(p).item() for row in w], np.float64)
    exact = exact_row_norms(w, p)
    with np.errstate(divide="ignore", invalid="ignore"):
        error = np.abs(theirs / exact - 1)
    return np.where(np.isfinite(error) & (exact > 0) & np.isfinite(exact), error, 0.0)


def renorm_within_bound(ours, theirs, original, p):
    """(ok, worst ratio): the documented max_norm bound, per element of every row,

        |ours - torch| <= (e_row + 2^-22) * |torch|     (plus 2^-149, one subnormal step)

    e_row = torch_norm_error(original row). Equal values (and NaN against NaN) always pass. The
    ratio is the largest |ours - torch| / ((e_row + 2^-22) * |torch|). The bound assumes both sides
    made the same rescale decision (a row whose norm is within e_row of max_norm may not)."""
    ours = (ours.detach().numpy() if hasattr(ours, "detach") else np.asarray(ours)).astype(np.float64)
    theirs = (theirs.detach().numpy() if hasattr(theirs, "detach") else np.asarray(theirs)).astype(np.float64)
    original = original.detach().numpy() if hasattr(original, "detach") else np.asarray(original)
    rtol = torch_norm_error(original, p)[:, None] + RENORM_ROUNDING
    with np.errstate(invalid="ignore"):
        same = (ours == theirs) | (np.isnan(ours) & np.isnan(theirs))
        diff = np.where(same, 0.0, np.abs(ours - theirs))
        allowed = rtol * np.abs(theirs)
        ok = same | (diff <= allowed * 1.001 + 2.0 ** -149)   # 0.1%: second-order terms of the bound
        ratio = np.where(same, 0.0, diff / np.maximum(allowed, 2.0 ** -149))
    return bool(np.all(ok)), float(np.max(ratio, initial=0.0))


def ulp_distance(a, b):
    """Elementwise distance between float32 arrays in units in the last place: how many float32
    values lie between them, plus one (0 when equal; -0.0 and +0.0 are 0 apart)."""
    def ordered(x):
        i = np.ascontiguousarray(x, dtype=np.float32).view(np.int32).astype(np.int64)
        return np.where(i < 0, -(i & 0x7FFFFFFF), i)
    return np.abs(ordered(a) - ordered(b))


# ---- table dtypes and dtype-generic comparisons ----------------------------------------------------


def _library_table_dtypes(*operations):
    """The table dtypes (as torch dtypes) that every one of ``operations`` takes, as the library
    reports them (emb_build_info "table_dtypes")."""
    import embedding_native as en  # here, not at the top: test_loader/test_cpu import no helpers, others may
    table = en.build_info()["table_dtypes"]
    names = [name for name in table[operations[0]] if all(name in table[op] for op in operations)]
    return [getattr(torch, name) for name in names]


#: The table dtypes an Embedding trains with (forward, dense and sparse backward, max_norm); every
#: Embedding parity test parametrized over it runs for each.
TABLE_DTYPES = _library_table_dtypes("embedding", "embedding_backward", "renorm")

#: The table dtypes an EmbeddingBag trains with (forward and backward): [torch.float32] today;
#: float64 and float16 join as the bag backward takes them.
BAG_DTYPES = _library_table_dtypes("embedding_bag", "embedding_bag_backward", "renorm")

#: The dtypes torch.autograd.gradcheck can use (it needs float64).
GRADCHECK_DTYPES = [dtype for dtype in TABLE_DTYPES if dtype == torch.float64]
BAG_GRADCHECK_DTYPES = [dtype for dtype in BAG_DTYPES if dtype == torch.float64]

_SAME_SIZE_INT = {1: torch.int8, 2: torch.int16, 4: torch.int32, 8: torch.int64}


def identical(a, b):
    """Same dtype, shape and bit patterns, any NaN equal to any NaN; for sparse COO tensors also
    the same layout (indices, values, coalesced flag), entry by entry."""
    if a.is_sparse or b.is_sparse:
        return (a.is_sparse and b.is_sparse and a.shape == b.shape and a.is_coalesced() == b.is_coalesced()
                and torch.equal(a._indices(), b._indices()) and identical(a._values(), b._values()))
    a, b = a.detach(), b.detach()
    if a.dtype != b.dtype or a.shape != b.shape:
        return False
    if not a.is_floating_point():
        return torch.equal(a, b)
    nan = a.isnan()
    if not torch.equal(nan, b.isnan()):
        return False
    as_int = _SAME_SIZE_INT[a.element_size()]
    return torch.equal(a.masked_fill(nan, 0).contiguous().view(as_int), b.masked_fill(nan, 0).contiguous().view(as_int))


#: Fixed (rtol, atol) of spec §4.2 for renormalised rows of the other float dtypes; float32 uses
#: the documented per-row bound (renorm_within_bound).
RENORM_TOLERANCES = {torch.float64: (1e-12, 1e-12), torch.float16: (1e-3, 1e-3), torch.bfloat16: (1.6e-2, 1e-2)}


def renorm_matches(ours, theirs, original, p):
    """(ok, detail): max_norm results agree with torch's within the documented renorm tolerance
    (the library computes the row norm in double, torch in the table's dtype; docs/exactness.md)."""
    if ours.shape != theirs.shape or ours.dim() == 0:
        return False, "shapes %s vs %s" % (ours.shape, theirs.shape)
    # rows: the last dimension (outputs of any index shape are compared row by row)
    ours, theirs, original = (t.detach().reshape(-1, t.shape[-1]) for t in (ours, theirs, original))
    if theirs.dtype == torch.float32:
        return renorm_within_bound(ours, theirs, original, p)
    if ours.dtype != theirs.dtype:
        return False, "dtypes %s vs %s" % (ours.dtype, theirs.dtype)
    rtol, atol = RENORM_TOLERANCES[theirs.dtype]
    diff = (ours.detach().double() - theirs.detach().double()).abs()
    return bool(torch.allclose(ours.detach().double(), theirs.detach().double(), rtol=rtol, atol=atol,
                               equal_nan=True)), float(diff.nan_to_num(0.0).max()) if diff.numel() else 0.0
