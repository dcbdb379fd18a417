"""set_num_threads: two threads give the same bits as one (embedding, backward, bag, optimizer step).

Inputs are large enough for the library to split them (it keeps calls under ~256 KiB per thread
on the calling thread), and the backward indices are duplicate-heavy, so a split that broke a
row's position order would change the sums. The thread count is process-wide: every test
restores 1, even when it fails.
"""

import numpy as np
import pytest

import embedding_native as en
from embedding_native import functional as ef
from embedding_native import optim
from helpers import bits

V, D, N = 20000, 64, 65536


@pytest.fixture
def two_threads():
    """Runs the test body with a helper that calls a function on 1 and on 2 threads."""
    assert en.get_num_threads() == 1

    def both(fn):
        en.set_num_threads(1)
        one = fn()
        en.set_num_threads(2)
        assert en.get_num_threads() == 2
        many = fn()
        en.set_num_threads(1)
        return one, many

    try:
        yield both
    finally:
        en.set_num_threads(1)


def _hot_indices(n, v, seed):
    rng = np.random.default_rng(seed)
    hot = rng.integers(0, 32, size=n) * (v // 32)
    return np.where(rng.random(n) < 0.5, hot, rng.integers(0, v, size=n)).astype(np.int64)


def _gradients(shape, seed):
    rng = np.random.default_rng(seed)
    return (rng.standard_normal(shape) * np.exp2(rng.integers(-10, 10, size=shape))).astype(np.float32)


def test_set_and_get_num_threads():
    assert en.get_num_threads() == 1
    try:
        en.set_num_threads(3)
        assert en.get_num_threads() == 3
        for bad in (0, -1, 1025):
            with pytest.raises(ValueError):
                en.set_num_threads(bad)
        with pytest.raises(TypeError):
            en.set_num_threads(2.5)
        assert en.get_num_threads() == 3
    finally:
        en.set_num_threads(1)
    assert en.get_num_threads() == 1


def test_embedding(two_threads):
    weight = np.random.default_rng(0).standard_normal((V, D), dtype=np.float32)
    idx = np.random.default_rng(1).integers(0, V, size=N)
    one, many = two_threads(lambda: en.embedding(idx, weight))
    np.testing.assert_array_equal(bits(one), bits(many))


@pytest.mark.parametrize("scale_grad_by_freq", [False, True])
@pytest.mark.parametrize("padding_idx", [None, 0])
def test_embedding_backward(two_threads, scale_grad_by_freq, padding_idx):
    idx = _hot_indices(N, V, seed=2)
    grad = _gradients((N, D), seed=3)
    start = _gradients((V, D), seed=4)

    def run():
        out = start.copy()
        ef.embedding_backward(grad, idx, V, padding_idx=padding_idx, scale_grad_by_freq=scale_grad_by_freq,
                              out=out, accumulate=True)
        return out

    one, many = two_threads(run)
    np.testing.assert_array_equal(bits(one), bits(many))
    one, many = two_threads(lambda: ef.embedding_backward(grad, idx, V, padding_idx=padding_idx,
                                                          scale_grad_by_freq=scale_grad_by_freq))
    np.testing.assert_array_equal(bits(one), bits(many))


@pytest.mark.parametrize("mode", ["sum", "mean", "max"])
def test_embedding_bag_forward_and_backward(two_threads, mode):
    weight = _gradients((V, D), seed=5)
    idx = _hot_indices(N, V, seed=6).reshape(-1, 32)
    one, many = two_threads(lambda: en.embedding_bag(idx, weight, mode=mode))
    np.testing.assert_array_equal(bits(one), bits(many))

    grad = _gradients((idx.shape[0], D), seed=7)
    max_indices = ef.embedding_bag_max_indices(idx, weight)[1] if mode == "max" else None
    one, many = two_threads(lambda: ef.embedding_bag_backward(grad, idx, V, mode=mode, max_indices=max_indices))
    np.testing.assert_array_equal(bits(one), bits(many))


def test_optimizer_step(two_threads):
    rows = np.unique(np.random.default_rng(8).integers(0, V, size=N))
    values = _gradients((rows.shape[0], D), seed=9)
    weight = _gradients((V, D), seed=10)
    exp_avg = _gradients((V, D), seed=11)
    exp_avg_sq = np.abs(_gradients((V, D), seed=12))

    def run():
        w, m, v = weight.copy(), exp_avg.copy(), exp_avg_sq.copy()
        optim.sparse_adam_step(w, m, v, rows, values, lr=1e-2, step=3)
        return np.concatenate([w, m, v])

    one, many = two_threads(run)
    np.testing.assert_array_equal(bits(one), bits(many))
