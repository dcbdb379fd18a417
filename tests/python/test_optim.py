"""Fused optimizer steps (embedding_native.optim) against torch.optim and a float64 reference.

SGD: bit-identical to torch.optim.SGD given the same (dense or coalesced) gradient; with an
uncoalesced sparse gradient torch adds the duplicates of a row one at a time (w - lr*g1 - lr*g2)
where we step once with their sum, so that comparison uses atol 1e-6 (measured 4.8e-7).
Adagrad, SparseAdam: rtol 1e-6, atol 2.4e-7 (2 ulps at 1.0) after every step: the formulas are
torch's, but the scalar factors (clr, step_size) and the fused/unfused roundings need not agree
to the last bit. Measured max |diff| over these tests, every tier: Adagrad 1.2e-7, SparseAdam
1.2e-7. Row-wise Adagrad (no torch equivalent): the same tolerance against float64 arithmetic.
"""

import numpy as np
import pytest
import torch

import embedding_native as en
from embedding_native import functional as ef
from embedding_native import optim
from helpers import bits, raised

RTOL, ATOL = 1e-6, 2.4e-7
SPARSE_SGD_ATOL = 1e-6
V, D = 23, 19


def sparse_grads(steps, seed=0, nnz=30):
    """``steps`` uncoalesced sparse gradients (duplicates included) as (rows, values) numpy pairs."""
    rng = np.random.default_rng(seed)
    return [(rng.integers(0, V - 3, size=nnz), rng.standard_normal((nnz, D), dtype=np.float32)) for _ in range(steps)]


def torch_sparse(rows, values):
    return torch.sparse_coo_tensor(torch.from_numpy(rows)[None], torch.from_numpy(values), (V, D))


def max_diff(a, b):
    return float(np.max(np.abs(np.asarray(a, np.float64) - np.asarray(b, np.float64)), initial=0))


@pytest.mark.parametrize("lr", [0.1, 0.01])
def test_sgd_dense_bit_exact(lr):
    rng = np.random.default_rng(1)
    w0 = rng.standard_normal((V, D), dtype=np.float32)
    param = torch.nn.Parameter(torch.from_numpy(w0.copy()))
    opt = torch.optim.SGD([param], lr=lr)
    ours = w0.copy()
    for _ in range(5):
        grad = rng.standard_normal((V, D), dtype=np.float32)
        param.grad = torch.from_numpy(grad.copy())
        opt.step()
        optim.sgd_step(ours, np.arange(V), grad, lr)
        assert np.array_equal(bits(ours), bits(param))


def test_sgd_weight_decay_touched_rows():
    # torch decays every row of a dense gradient; ours only the listed rows: compare those.
    rng = np.random.default_rng(2)
    w0 = rng.standard_normal((V, D), dtype=np.float32)
    param = torch.nn.Parameter(torch.from_numpy(w0.copy()))
    opt = torch.optim.SGD([param], lr=0.05, weight_decay=0.01)
    ours = w0.copy()
    rows, values = sparse_grads(1, seed=3)[0]
    unique, summed = ef.sparse_coalesce(rows, values, V)
    param.grad = torch_sparse(unique, summed).to_dense()
    opt.step()
    optim.sgd_step(ours, unique, summed, 0.05, weight_decay=0.01)
    np.testing.assert_allclose(ours[unique], param.detach().numpy()[unique], rtol=RTOL, atol=ATOL)
    untouched = np.setdiff1d(np.arange(V), unique)
    assert np.array_equal(bits(ours[untouched]), bits(w0[untouched]))


def test_sgd_sparse_gradient_matches_torch():
    rng = np.random.default_rng(4)
    w0 = rng.standard_normal((V, D), dtype=np.float32)
    param = torch.nn.Parameter(torch.from_numpy(w0.copy()))
    coalesced_param = torch.nn.Parameter(torch.from_numpy(w0.copy()))
    opt = torch.optim.SGD([param], lr=0.3)
    coalesced_opt = torch.optim.SGD([coalesced_param], lr=0.3)
    ours = torch.from_numpy(w0.copy())  # tensors work as well as arrays
    for rows, values in sparse_grads(4, seed=5):
        unique, summed = ef.sparse_coalesce(torch.from_numpy(rows), torch.from_numpy(values), V)
        param.grad = torch_sparse(rows, values)
        coalesced_param.grad = torch.sparse_coo_tensor(unique[None], summed, (V, D))
        opt.step()
        coalesced_opt.step()
        optim.sgd_step(ours, unique, summed, 0.3)
        assert np.array_equal(bits(ours), bits(coalesced_param))
        np.testing.assert_allclose(ours.numpy(), param.detach().numpy(), rtol=RTOL, atol=SPARSE_SGD_ATOL)


@pytest.mark.parametrize("lr_decay", [0.0, 0.1])
@pytest.mark.parametrize("eps", [1e-10, 1e-3])
def test_adagrad_sparse_matches_torch(lr_decay, eps):
    rng = np.random.default_rng(6)
    w0 = rng.standard_normal((V, D), dtype=np.float32)
    param = torch.nn.Parameter(torch.from_numpy(w0.copy()))
    opt = torch.optim.Adagrad([param], lr=0.1, lr_decay=lr_decay, eps=eps)
    ours, state = w0.copy(), np.zeros((V, D), np.float32)
    for step, (rows, values) in enumerate(sparse_grads(6, seed=7), start=1):
        param.grad = torch_sparse(rows, values)
        opt.step()
        unique, summed = ef.sparse_coalesce(rows, values, V)
        optim.adagrad_step(ours, state, unique, summed, 0.1, lr_decay, eps, step)
        np.testing.assert_allclose(ours, param.detach().numpy(), rtol=RTOL, atol=ATOL)
        np.testing.assert_allclose(state, opt.state[param]["sum"].numpy(), rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("betas", [(0.9, 0.999), (0.5, 0.9)])
def test_sparse_adam_matches_torch(betas):
    rng = np.random.default_rng(8)
    w0 = rng.standard_normal((V, D), dtype=np.float32)
    param = torch.nn.Parameter(torch.from_numpy(w0.copy()))
    opt = torch.optim.SparseAdam([param], lr=0.01, betas=betas, eps=1e-8)
    ours, m, v = w0.copy(), np.zeros((V, D), np.float32), np.zeros((V, D), np.float32)
    for step, (rows, values) in enumerate(sparse_grads(8, seed=9), start=1):
        param.grad = torch_sparse(rows, values)
        opt.step()
        unique, summed = ef.sparse_coalesce(rows, values, V)
        optim.sparse_adam_step(ours, m, v, unique, summed, lr=0.01, betas=betas, eps=1e-8, step=step)
        np.testing.assert_allclose(ours, param.detach().numpy(), rtol=RTOL, atol=ATOL)
        np.testing.assert_allclose(m, opt.state[param]["exp_avg"].numpy(), rtol=RTOL, atol=ATOL)
        np.testing.assert_allclose(v, opt.state[param]["exp_avg_sq"].numpy(), rtol=RTOL, atol=ATOL)


def test_rowwise_adagrad_matches_float64_reference():
    # One step at a time from our own float32 state, against the formula in float64.
    rng = np.random.default_rng(10)
    ours, momentum = rng.standard_normal((V, D), dtype=np.float32), np.zeros(V, np.float32)
    for rows, values in sparse_grads(5, seed=11):
        unique, summed = ef.sparse_coalesce(rows, values, V)
        w64, m64, g64 = ours.astype(np.float64), momentum.astype(np.float64), summed.astype(np.float64)
        m64[unique] += (g64 * g64).mean(axis=1)
        w64[unique] -= 0.1 * g64 / (np.sqrt(m64[unique])[:, None] + 1e-10)
        before = ours.copy()
        optim.rowwise_adagrad_step(ours, momentum, unique, summed, 0.1)
        np.testing.assert_allclose(momentum, m64, rtol=RTOL, atol=0)
        np.testing.assert_allclose(ours, w64, rtol=RTOL, atol=ATOL)
        untouched = np.setdiff1d(np.arange(V), unique)
        assert np.array_equal(bits(ours[untouched]), bits(before[untouched]))


def test_only_listed_rows_change():
    w, state = np.ones((V, D), np.float32), np.zeros((V, D), np.float32)
    m, s = np.zeros((V, D), np.float32), np.zeros((V, D), np.float32)
    rows, values = np.array([2, 5]), np.ones((2, D), np.float32)
    optim.sgd_step(w, rows, values, 0.5, weight_decay=0.1)
    optim.adagrad_step(w, state, rows, values, 0.5)
    optim.sparse_adam_step(w, m, s, rows, values)
    optim.rowwise_adagrad_step(w, np.zeros(V, np.float32), rows, values, 0.5)
    others = np.setdiff1d(np.arange(V), rows)
    assert (w[others] == 1).all() and (state[others] == 0).all() and (m[others] == 0).all()
    assert (w[rows] != 1).all()


def test_empty_step_is_a_no_op():
    w = np.ones((V, D), np.float32)
    optim.sgd_step(w, np.zeros(0, np.int64), np.zeros((0, D), np.float32), 0.1)
    assert (w == 1).all()


def test_errors_leave_everything_unchanged():
    w, state = np.ones((V, D), np.float32), np.zeros((V, D), np.float32)
    values = np.ones((2, D), np.float32)
    for rows in ([3, 3], [5, 2], [0, V], [-1, 2]):  # not strictly ascending, out of range
        e = raised(lambda: optim.adagrad_step(w, state, np.array(rows), values, 0.1))
        assert isinstance(e, en.EmbeddingError), e
        assert (w == 1).all() and (state == 0).all()
    assert isinstance(raised(lambda: optim.sgd_step(w, np.array([1]), values, 0.1)), RuntimeError)
    assert isinstance(raised(lambda: optim.adagrad_step(w, state[:3], np.array([1, 2]), values, 0.1)), RuntimeError)
    assert isinstance(raised(lambda: optim.adagrad_step(w, np.asfortranarray(state), np.array([1, 2]), values, 0.1)),
                      RuntimeError)
    assert isinstance(raised(lambda: optim.sgd_step(w.astype(np.float64), np.array([1, 2]), values, 0.1)),
                      RuntimeError)  # values must have the weight's dtype
    assert isinstance(raised(lambda: optim.sgd_step(w.astype(np.int32), np.array([1, 2]), values, 0.1)),
                      NotImplementedError)
    assert isinstance(raised(lambda: optim.sparse_adam_step(w, state, state.copy(), np.array([1, 2]), values, step=0)),
                      ValueError)
    assert isinstance(raised(lambda: optim.sgd_step(w.T, np.array([1, 2]), values, 0.1)), RuntimeError)
