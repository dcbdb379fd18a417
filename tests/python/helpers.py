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
    """(ok, worst ratio): |ours - theirs| <= BAG_GRAD_C * eps32 * magnitude elementwise, where
    ``magnitude`` is Σ|terms| of each element; the ratio is max |diff| / (eps * magnitude)."""
    ours = ours.detach().numpy().astype(np.float64)
    theirs = theirs.detach().numpy().astype(np.float64)
    magnitude = magnitude.detach().numpy().astype(np.float64)
    diff = np.abs(ours - theirs)
    eps = float(np.finfo(np.float32).eps)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(diff == 0, 0.0, diff / (eps * magnitude))
    return bool(np.all(diff <= BAG_GRAD_C * eps * magnitude)), float(np.max(ratio, initial=0.0))
