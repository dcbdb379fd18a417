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


def exact_row_norms(w, p):
    """Row p-norms of a float32 table in float64 (exact for p = +-inf and 0; to ~1e-16 otherwise)."""
    a = np.abs(np.asarray(w, dtype=np.float64))
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        if p == float("inf"):
            return a.max(axis=1, initial=0.0)
        if p == -float("inf"):
            return a.min(axis=1, initial=float("inf"))
        if p == 0:
            return (a != 0).sum(axis=1).astype(np.float64)
        return (a ** p).sum(axis=1) ** (1.0 / p)


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


def renorm_matches(ours, theirs, original, p):
    """(ok, detail): max_norm results are torch's bit for bit, every table dtype (the library
    computes each row's norm as torch 1.13 does; docs/exactness.md#max_norm). ``original`` is
    unused (kept for the callers); ``p`` names the case in the detail."""
    if identical(ours, theirs):
        return True, ""
    ours, theirs = ours.detach(), theirs.detach()
    if ours.shape != theirs.shape or ours.dtype != theirs.dtype:
        return False, "shape/dtype %s %s vs %s %s" % (ours.shape, ours.dtype, theirs.shape, theirs.dtype)
    differing = (ours.double() != theirs.double()) & ~(ours.isnan() & theirs.isnan())
    return False, "p %s: %d of %d elements differ" % (p, int(differing.sum()), differing.numel())
