"""Fused optimizer steps (embedding_native.optim) on float64, float16 and bfloat16 tables.

Against torch.optim.SGD / Adagrad / SparseAdam on the weight of an ``nn.Embedding(sparse=True)``
of the dtype, fed the same coalesced sparse gradient (torch's own ``coalesce()`` of the
embedding's sparse gradient): bit for bit, weight and state, after every step, for float32,
float64 and bfloat16 (docs/table-types.md, "Optimizers": the models are exact given torch's
coalesce order, and both sides here read the same coalesced values). float16 Adagrad and
SparseAdam, which torch 1.13 refuses, and row-wise Adagrad, which torch does not have, are
compared bit for bit with numpy models (tests/python/dtype_models.py arithmetic: every operation
in float32, rounded to the dtype). Any NaN equals any NaN.
"""

import numpy as np
import pytest
import torch

import dtype_models as dm
import embedding_native as en
from embedding_native import optim
from embedding_native.errors import EMB_ERROR_UNSUPPORTED_DTYPE
from helpers import raised

V, D = 29, 37
TORCH_EXACT = [torch.float32, torch.float64, torch.bfloat16]
ALL_TYPES = [torch.float32, torch.float64, torch.float16, torch.bfloat16]
_NAME = {torch.float32: "float32", torch.float64: "float64", torch.float16: "float16", torch.bfloat16: "bfloat16"}
_BITS = {2: torch.int16, 4: torch.int32, 8: torch.int64}


def assert_same(ours, theirs, what):
    """Same dtype, shape and bits; any NaN equals any NaN (torch's vectorised bfloat16 NaN is 0xFFFF, ours 0x7FC0).
    Tensors, numpy arrays, or uint16 bfloat16 bit patterns (the models' form)."""
    ours, theirs = _tensor(ours), _tensor(theirs)
    assert ours.dtype == theirs.dtype and ours.shape == theirs.shape, what
    nan = torch.isnan(ours.float()) & torch.isnan(theirs.float())
    a = ours.contiguous().view(_BITS[ours.element_size()])
    b = theirs.contiguous().view(_BITS[theirs.element_size()])
    differ = (a != b) & ~nan
    if differ.any():
        i = int(differ.reshape(-1).nonzero()[0])
        raise AssertionError("%s: %d elements differ; first at %d: ours %r, torch %r"
                             % (what, int(differ.sum()), i, ours.reshape(-1)[i].item(), theirs.reshape(-1)[i].item()))


def _tensor(x):
    if isinstance(x, np.ndarray) and x.dtype == np.uint16:
        return torch.from_numpy(x.view(np.int16).copy()).view(torch.bfloat16)
    return torch.as_tensor(x)


def embedding(dtype, seed):
    """An nn.Embedding(sparse=True) of ``dtype`` with a fixed random weight."""
    torch.manual_seed(seed)
    module = torch.nn.Embedding(V, D, sparse=True)
    with torch.no_grad():
        module.weight.copy_(torch.randn(V, D) * 0.5)
    return module.to(dtype)


def sparse_gradient(module, seed, count=40):
    """Runs a forward and backward with duplicate indices and sets the weight's gradient to torch's
    coalesce() of the sparse gradient; returns (rows, values) of that coalesced gradient."""
    generator = torch.Generator().manual_seed(seed)
    indices = torch.randint(0, V - 2, (count,), generator=generator)  # the last two rows never appear
    upstream = (torch.randn(count, D, generator=generator) * 2).to(module.weight.dtype)
    module.weight.grad = None
    (module(indices) * upstream).sum().backward()
    grad = module.weight.grad.coalesce()
    module.weight.grad = grad
    return grad._indices()[0].clone(), grad._values().clone()


def steps(dtype, make_optimizer, our_step, state_names, count=4, seed=0):
    """``count`` steps of torch's optimizer and ours from the same weight and gradients, compared
    bit for bit after every step; rows the gradient never lists keep their bits."""
    module = embedding(dtype, seed)
    start = module.weight.detach().clone()
    optimizer = make_optimizer(module.weight)
    ours = start.clone()
    state = [torch.zeros_like(ours) for _ in state_names]
    for step in range(1, count + 1):
        rows, values = sparse_gradient(module, seed * 100 + step)
        optimizer.step()
        our_step(ours, state, rows, values, step)
        assert_same(ours, module.weight.detach(), "%s weight after step %d" % (dtype, step))
        for name, tensor in zip(state_names, state):
            assert_same(tensor, optimizer.state[module.weight][name], "%s %s after step %d" % (dtype, name, step))
    assert_same(ours[-2:], start[-2:], "rows never listed")


# ---- against torch.optim -----------------------------------------------------------------------


@pytest.mark.parametrize("dtype", ALL_TYPES, ids=str)
@pytest.mark.parametrize("lr", [0.1, 0.0123])
def test_sgd_is_torchs(dtype, lr):
    # torch 1.13 runs sparse SGD for all four types (float16 too).
    steps(dtype, lambda p: torch.optim.SGD([p], lr=lr),
          lambda w, state, rows, values, step: optim.sgd_step(w, rows, values, lr), [])


@pytest.mark.parametrize("dtype", TORCH_EXACT, ids=str)
@pytest.mark.parametrize("lr_decay, eps", [(0.0, 1e-10), (0.1, 1e-3)])
def test_adagrad_is_torchs(dtype, lr_decay, eps):
    steps(dtype, lambda p: torch.optim.Adagrad([p], lr=0.1, lr_decay=lr_decay, eps=eps),
          lambda w, state, rows, values, step: optim.adagrad_step(w, state[0], rows, values, 0.1, lr_decay, eps, step),
          ["sum"])


@pytest.mark.parametrize("dtype", TORCH_EXACT, ids=str)
@pytest.mark.parametrize("betas", [(0.9, 0.999), (0.5, 0.9)])
def test_sparse_adam_is_torchs(dtype, betas):
    steps(dtype, lambda p: torch.optim.SparseAdam([p], lr=0.01, betas=betas, eps=1e-8),
          lambda w, state, rows, values, step: optim.sparse_adam_step(w, state[0], state[1], rows, values, lr=0.01,
                                                                      betas=betas, eps=1e-8, step=step),
          ["exp_avg", "exp_avg_sq"], count=6)


def test_sgd_weight_decay_on_the_listed_rows_is_torchs_dense_step_for_float64():
    # torch decays every row of a dense gradient, fused (fma) for float64 as ours is (both rounded twice with
    # torch's default kernels); compare the listed rows.
    module = embedding(torch.float64, 3)
    ours = module.weight.detach().clone()
    rows, values = sparse_gradient(module, 4)
    module.weight.grad = module.weight.grad.to_dense()
    torch.optim.SGD([module.weight], lr=0.05, weight_decay=0.01).step()
    optim.sgd_step(ours, rows, values, 0.05, weight_decay=0.01)
    assert_same(ours[rows], module.weight.detach()[rows], "listed rows")


@pytest.mark.parametrize("dtype", [torch.float16], ids=str)
def test_torch_refuses_float16_adagrad_and_sparse_adam(dtype):
    # What the float16 models below stand in for.
    for make in (lambda p: torch.optim.Adagrad([p], lr=0.1), lambda p: torch.optim.SparseAdam([p], lr=0.01)):
        module = embedding(dtype, 5)
        sparse_gradient(module, 6)
        with pytest.raises(RuntimeError, match="sqrt_vml_cpu"):
            make(module.weight).step()


# ---- against numpy models: float16 Adagrad and SparseAdam, lazy weight decay, row-wise Adagrad ---


def to_model(tensor):
    """A tensor as dtype_models stores it (bfloat16 as uint16 bit patterns)."""
    tensor = tensor.detach().contiguous()
    if tensor.dtype == torch.bfloat16:
        return tensor.view(torch.int16).numpy().view(np.uint16).copy()
    return tensor.numpy().copy()


def model_gradients(dtype, count, seed):
    """``count`` coalesced gradients of ``dtype``: (rows, values) from an nn.Embedding's sparse backward."""
    module = embedding(dtype, seed)
    return module.weight.detach().clone(), [sparse_gradient(module, seed * 10 + k) for k in range(count)]


@pytest.mark.parametrize("eps", [1e-3, 1e-7])
def test_float16_adagrad_is_the_bfloat16_formula_in_half(eps):
    weight, gradients = model_gradients(torch.float16, 4, 7)
    ours, state = weight.numpy().copy(), np.zeros((V, D), np.float16)
    expected, expected_state = ours.copy(), state.copy()
    for step, (rows, values) in enumerate(gradients, start=1):
        optim.adagrad_step(ours, state, rows.numpy(), values.numpy(), 0.1, 0.05, eps, step)
        expected, expected_state = dm.adagrad_sparse_step(expected, rows.numpy(), values.numpy(), expected_state, step,
                                                          "float16", 0.1, 0.05, eps)
        assert_same(torch.from_numpy(ours), torch.from_numpy(expected), "weight after step %d" % step)
        assert_same(torch.from_numpy(state), torch.from_numpy(expected_state), "state_sum after step %d" % step)


@pytest.mark.parametrize("betas, eps", [((0.9, 0.999), 1e-4), ((0.5, 0.9), 1e-7)])
def test_float16_sparse_adam_is_the_bfloat16_formula_in_half(betas, eps):
    weight, gradients = model_gradients(torch.float16, 5, 8)
    ours = weight.clone()  # a tensor this time
    m, v = torch.zeros_like(ours), torch.zeros_like(ours)
    expected, em, ev = weight.numpy().copy(), np.zeros((V, D), np.float16), np.zeros((V, D), np.float16)
    for step, (rows, values) in enumerate(gradients, start=1):
        optim.sparse_adam_step(ours, m, v, rows, values, lr=0.01, betas=betas, eps=eps, step=step)
        expected, em, ev = dm.sparse_adam_step(expected, rows.numpy(), values.numpy(), em, ev, step, "float16",
                                               lr=0.01, betas=betas, eps=eps)
        assert_same(ours, torch.from_numpy(expected), "weight after step %d" % step)
        assert_same(m, torch.from_numpy(em), "exp_avg after step %d" % step)
        assert_same(v, torch.from_numpy(ev), "exp_avg_sq after step %d" % step)


def lazy_sgd_model(w, rows, values, dtype, lr, weight_decay):
    """SGD with weight decay on the listed rows: float32/float64 fma(fma(w, wd, g), -lr, w) (each
    rounded twice with torch's default kernels, as torch's dense step is: dm.madd);
    float16/bfloat16 rd(w + rd(rd(g + rd(w·fl(wd)))·fl(-lr)))."""
    w = w.copy()
    for j, r in enumerate(rows):
        if dtype in ("float32", "float64"):
            d = dm.madd(w[r], dm.scalar_to(weight_decay, dtype), values[j], dtype)
        else:
            d = dm.add(values[j], dm.mul_scalar(w[r], weight_decay, dtype), dtype)
        w[r] = dm.axpy(w[r], d, -lr, dtype)
    return w


@pytest.mark.parametrize("dtype", ALL_TYPES, ids=str)
def test_sgd_lazy_weight_decay_matches_the_model(dtype):
    weight, gradients = model_gradients(dtype, 3, 9)
    ours, expected = weight.clone(), to_model(weight)
    for rows, values in gradients:
        optim.sgd_step(ours, rows, values, 0.05, weight_decay=0.03)
        expected = lazy_sgd_model(expected, rows.numpy(), to_model(values), _NAME[dtype], 0.05, 0.03)
        assert_same(to_model(ours), expected, "weight")


def rowwise_adagrad_model(w, momentum, rows, values, dtype, lr, eps):
    """Row-wise Adagrad: the row's Σ g² in double, columns in order; float32/float64
    h = m + T(sum/D), step = T(lr) / (sqrt(h) + T(eps)), w = fma(g, -step, w); float16/bfloat16
    every operation in float32 rounded to the dtype, w = rd(w + rd(g·-step))."""
    w, momentum = w.copy(), momentum.copy()
    g64 = dm.to_float64(values, dtype)
    total = np.zeros(len(rows))
    for c in range(values.shape[1]):  # sequential, as the library sums
        total = total + g64[:, c] * g64[:, c]
    for j, r in enumerate(rows):
        mean = dm.narrow(np.float64(total[j] / values.shape[1]), dtype)
        h = dm.add(momentum[r], mean, dtype)
        momentum[r] = h
        std = dm.add(dm.sqrt(h, dtype), dm.scalar_to(eps, dtype), dtype)
        step = dm.div(dm.scalar_to(lr, dtype), std, dtype)
        negative = dm.narrow(-dm.widen(step, dtype), dtype)
        if dtype in ("float32", "float64"):
            w[r] = dm.fma(values[j], negative, w[r], dtype)
        else:
            w[r] = dm.add(w[r], dm.mul(values[j], negative, dtype), dtype)
    return w, momentum


@pytest.mark.parametrize("dtype", ALL_TYPES, ids=str)
def test_rowwise_adagrad_matches_the_model(dtype):
    weight, gradients = model_gradients(dtype, 4, 10)
    ours, momentum = weight.clone(), torch.zeros(V, dtype=dtype)
    expected, expected_momentum = to_model(weight), to_model(momentum)
    for rows, values in gradients:
        optim.rowwise_adagrad_step(ours, momentum, rows, values, 0.1, eps=1e-3)
        expected, expected_momentum = rowwise_adagrad_model(expected, expected_momentum, rows.numpy(), to_model(values),
                                                            _NAME[dtype], 0.1, 1e-3)
        assert_same(to_model(ours), expected, "weight")
        assert_same(to_model(momentum), expected_momentum, "momentum")


# ---- arrays, dtypes and refusals ------------------------------------------------------------


@pytest.mark.parametrize("np_dtype", [np.float64, np.float16])
def test_numpy_tables_step_like_tensors(np_dtype):
    weight, gradients = model_gradients(torch.from_numpy(np.zeros(1, np_dtype)).dtype, 2, 11)
    as_tensor, as_array = weight.clone(), weight.numpy().copy()
    m_t, v_t = torch.zeros_like(as_tensor), torch.zeros_like(as_tensor)
    m_a, v_a = np.zeros_like(as_array), np.zeros_like(as_array)
    for step, (rows, values) in enumerate(gradients, start=1):
        optim.sparse_adam_step(as_tensor, m_t, v_t, rows, values, eps=1e-4, step=step)
        optim.sparse_adam_step(as_array, m_a, v_a, rows.numpy(), values.numpy(), eps=1e-4, step=step)
    assert as_array.dtype == np_dtype
    assert_same(torch.from_numpy(as_array), as_tensor, "numpy vs tensor")
    assert_same(torch.from_numpy(v_a), v_t, "exp_avg_sq, numpy vs tensor")


def test_mismatched_dtypes_are_refused_and_nothing_is_written():
    w = torch.ones(V, D, dtype=torch.float64)
    rows = torch.tensor([1, 4])
    values = torch.ones(2, D, dtype=torch.float64)
    cases = [
        lambda: optim.sgd_step(w, rows, values.float(), 0.1),
        lambda: optim.sgd_step(w, rows, values.to(torch.bfloat16), 0.1),
        lambda: optim.adagrad_step(w, torch.zeros(V, D), rows, values, 0.1),
        lambda: optim.rowwise_adagrad_step(w, torch.zeros(V, dtype=torch.float16), rows, values, 0.1),
        lambda: optim.sparse_adam_step(w, torch.zeros_like(w), torch.zeros(V, D, dtype=torch.bfloat16), rows, values),
        lambda: optim.sgd_step(w.numpy(), rows.numpy(), values.numpy().astype(np.float16), 0.1),
    ]
    for case in cases:
        e = raised(case)
        assert isinstance(e, en.EmbeddingRuntimeError) and isinstance(e, RuntimeError), e
        assert e.status == EMB_ERROR_UNSUPPORTED_DTYPE and "must have the weight's dtype" in str(e), e
    assert (w == 1).all()


def test_non_table_dtypes_are_refused_with_the_types_it_takes():
    e = raised(lambda: optim.sgd_step(np.zeros((6, 4), np.int64), np.array([1]), np.ones((1, 4), np.int64), lr=0.1))
    assert isinstance(e, NotImplementedError), e
    assert "float32, float64, float16 and bfloat16" in str(e)


def test_build_info_lists_every_table_type_for_the_optimizers():
    assert en.build_info()["table_dtypes"]["optimizers"] == ["float32", "float64", "float16", "bfloat16"]
