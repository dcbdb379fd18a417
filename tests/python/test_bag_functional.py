"""F.embedding_bag parity with torch 1.13 (one thread): the parity matrix.

modes sum / mean / max  x  layouts (1-D + offsets int64 / int32 / mixed, 2-D, include_last_offset
(valid CSR only), empty bags, all-padding bags, single-element bags, duplicates)  x  options
(padding_idx 1 / -1, per_sample_weights (sum), max_norm).

* outputs: bit-identical (NaN equal to NaN), spec §4.1 — sum, mean and max all reduce in position
  order in both; psw reproduces both of torch's rounding paths (fma without padding, product then
  add with padding).
* weight gradients: bit-identical in every mode (sum / mean add a row's duplicates in the order of
  torch's unstable sort, reproduced step for step: test_bag_backward_order.py).
* psw gradient: bit-identical (sequential dot, products rounded).
* sparse gradients: torch's uncoalesced layout (indices, values, shape, coalesced flag), values
  bit-identical.
"""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import embedding_native as en
import embedding_native.functional as ef
import embedding_native.torch as et
from helpers import same_values

V, D = 13, 7


def weight_table(seed=0, specials=False):
    rng = np.random.default_rng(seed)
    w = rng.standard_normal((V, D), dtype=np.float32)
    if specials:
        w[2, 0] = np.nan
        w[3, 1] = -0.0
        w[4, 1] = 0.0
        w[5, :] = w[6, :]          # a whole tied row
        w[7, 2] = np.inf
        w[8, 3] = -np.inf
    return w


def layout(name, seed=1):
    """(input, offsets, include_last_offset) for a named layout; indices are int64 unless named."""
    rng = np.random.default_rng(seed)
    if name in ("1d", "1d-int32", "mixed"):
        idx = rng.integers(0, V, size=40)
        idx[5:8] = 4                    # duplicates in one bag
        idx[20] = idx[21] = 1           # padding row 1 twice, bag of its own below
        offsets = np.array([0, 3, 3, 9, 10, 20, 22, 22, 30])   # empty bags, a single-element bag,
        idx = idx.astype(np.int32 if name == "1d-int32" else np.int64)  # an all-padding bag [20, 22)
        offsets = offsets.astype(np.int32 if name in ("1d-int32", "mixed") else np.int64)
        if name == "mixed":
            idx = idx.astype(np.int64)
        return idx, offsets, False
    if name == "ilo":
        idx = rng.integers(0, V, size=25)
        return idx, np.array([0, 0, 4, 5, 12, 12, 25]), True
    if name == "2d":
        idx = rng.integers(0, V, size=(6, 5))
        idx[2, :] = 1                   # an all-padding bag for padding_idx=1
        return idx, None, False
    if name == "2d-ilo":               # torch 1.13 would give B-1 bags; only used without ilo here
        raise ValueError(name)
    if name == "empty-input":
        return np.zeros(0, dtype=np.int64), np.array([0, 0, 0]), False
    raise ValueError(name)


LAYOUTS = ["1d", "1d-int32", "mixed", "ilo", "2d", "empty-input"]
OPTIONS = {
    "plain": {},
    "pad1": dict(padding_idx=1),
    "pad-1": dict(padding_idx=-1),
    "psw": dict(psw=True),
    "psw-pad1": dict(psw=True, padding_idx=1),
    "maxnorm": dict(max_norm=1.5),
    "maxnorm-pad1": dict(max_norm=1.0, norm_type=1.0, padding_idx=1),
}


def case_args(layout_name, option_name, mode):
    idx, offsets, ilo = layout(layout_name)
    opts = dict(OPTIONS[option_name])
    psw = None
    if opts.pop("psw", False):
        if mode != "sum":
            raise AssertionError("per_sample_weights: sum mode only (see matrix())")
        psw = np.random.default_rng(7).standard_normal(idx.shape).astype(np.float32)
    return idx, offsets, ilo, psw, opts


def matrix(modes, layouts, options):
    """(mode, layout, option) triples; per_sample_weights only with sum (the other modes reject it:
    test_bag_errors.py)."""
    return [(m, l, o) for m in modes for l in layouts for o in options if m == "sum" or "psw" not in o]


def as_tensor(x):
    return None if x is None else torch.from_numpy(np.ascontiguousarray(x))


@pytest.mark.parametrize("mode,layout_name,option", matrix(["sum", "mean", "max"], LAYOUTS, OPTIONS))
def test_forward_bit_exact(mode, layout_name, option):
    idx, offsets, ilo, psw, opts = case_args(layout_name, option, mode)
    w_torch = torch.from_numpy(weight_table(specials=True))
    w_numpy = weight_table(specials=True)
    w_tensor = torch.from_numpy(weight_table(specials=True))
    expected = F.embedding_bag(as_tensor(idx), w_torch, as_tensor(offsets), mode=mode, include_last_offset=ilo,
                               per_sample_weights=as_tensor(psw), **opts)
    ours_numpy = en.embedding_bag(idx, w_numpy, offsets, mode=mode, include_last_offset=ilo, per_sample_weights=psw,
                                  **opts)
    ours_tensor = ef.embedding_bag(as_tensor(idx), w_tensor, as_tensor(offsets), mode=mode, include_last_offset=ilo,
                                   per_sample_weights=as_tensor(psw), **opts)
    assert isinstance(ours_numpy, np.ndarray) and isinstance(ours_tensor, torch.Tensor)
    assert same_values(ours_tensor, ours_numpy)
    # With max_norm the renormalised table is torch's too (docs/exactness.md#max_norm), so the bags are as well.
    assert same_values(w_tensor, w_numpy)
    assert same_values(w_numpy, w_torch)
    assert same_values(ours_numpy, expected), (ours_numpy, expected)


def grads(fn, idx, offsets, ilo, psw, opts, mode, sparse, weight, grad_out=None, psw_abs=False):
    w = torch.from_numpy(weight.copy()).requires_grad_()
    p = None if psw is None else torch.from_numpy(np.abs(psw) if psw_abs else psw.copy()).requires_grad_()
    out = fn(as_tensor(idx), w, as_tensor(offsets), mode=mode, include_last_offset=ilo, per_sample_weights=p,
             sparse=sparse, **opts)
    g = grad_out if grad_out is not None else torch.from_numpy(
        np.random.default_rng(3).standard_normal(tuple(out.shape)).astype(np.float32))
    out.backward(g)
    return out, w.grad, (None if p is None else p.grad), g


@pytest.mark.parametrize("mode,layout_name,option",
                         matrix(["sum", "mean", "max"], LAYOUTS, ["plain", "pad1", "pad-1", "psw", "psw-pad1"]))
def test_dense_gradients(mode, layout_name, option):
    idx, offsets, ilo, psw, opts = case_args(layout_name, option, mode)
    weight = weight_table(seed=5)   # finite: the max arg-max is then torch's
    _, expected_w, expected_p, g = grads(F.embedding_bag, idx, offsets, ilo, psw, opts, mode, False, weight)
    _, ours_w, ours_p, _ = grads(et.embedding_bag, idx, offsets, ilo, psw, opts, mode, False, weight, grad_out=g)
    assert same_values(ours_w, expected_w)
    if psw is not None:
        assert same_values(ours_p, expected_p)


@pytest.mark.parametrize("mode,layout_name,option", matrix(["sum", "mean"], LAYOUTS, ["plain", "pad1", "psw", "psw-pad1"]))
def test_sparse_gradients_layout(mode, layout_name, option):
    idx, offsets, ilo, psw, opts = case_args(layout_name, option, mode)
    weight = weight_table(seed=5)
    _, expected_w, expected_p, g = grads(F.embedding_bag, idx, offsets, ilo, psw, opts, mode, True, weight)
    _, ours_w, ours_p, _ = grads(et.embedding_bag, idx, offsets, ilo, psw, opts, mode, True, weight, grad_out=g)
    assert ours_w.is_sparse and expected_w.is_sparse
    assert ours_w.shape == expected_w.shape and ours_w.is_coalesced() == expected_w.is_coalesced()
    assert torch.equal(ours_w._indices(), expected_w._indices())
    assert ours_w._values().shape == expected_w._values().shape
    assert same_values(ours_w._values(), expected_w._values())
    if psw is not None:
        assert same_values(ours_p, expected_p)


@pytest.mark.parametrize("mode", ["sum", "mean", "max"])
def test_max_ties_nan_signed_zero(mode):
    # spec §3.6's worked examples, forward and (max) backward
    rows = np.array([[1, 5], [1, 2], [0, 5], [3, 3], [1, np.nan], [np.nan, 2], [3, 1], [-0.0, -np.inf],
                     [0.0, -np.inf], [0.0, 1], [-0.0, 1]], dtype=np.float32)
    idx = np.array([0, 1, 2, 3, 0, 4, 5, 6, 5, 4, 6, 7, 8, 9, 10, 1, 1, 2])
    offsets = np.array([0, 3, 5, 8, 11, 13, 15])
    w1 = torch.from_numpy(rows.copy()).requires_grad_()
    w2 = torch.from_numpy(rows.copy()).requires_grad_()
    expected = F.embedding_bag(torch.from_numpy(idx), w1, torch.from_numpy(offsets), mode=mode)
    ours = et.embedding_bag(torch.from_numpy(idx), w2, torch.from_numpy(offsets), mode=mode)
    assert same_values(ours, expected)
    g = torch.arange(1.0, 1.0 + expected.numel()).view(expected.shape) * 10
    expected.backward(g)
    ours.backward(g)
    assert same_values(w2.grad, w1.grad)


def test_spec_worked_examples():
    w = np.arange(1, 11, dtype=np.float32).reshape(5, 2)
    idx = np.array([3, 1, 1, 1, 4, 0])
    offsets = np.array([0, 0, 3, 3, 6])
    assert en.embedding_bag(idx, w, offsets, mode="sum").tolist() == [[0, 0], [13, 16], [0, 0], [13, 16], [0, 0]]
    assert en.embedding_bag(idx, w, offsets, mode="max").tolist() == [[0, 0], [7, 8], [0, 0], [9, 10], [0, 0]]
    assert en.embedding_bag(idx, w, offsets, mode="sum", include_last_offset=True).tolist() == \
        [[0, 0], [13, 16], [0, 0], [13, 16]]
    psw = np.array([2, 0.5, -1, 3, 0.25, 10], dtype=np.float32)
    assert en.embedding_bag(idx, w, np.array([0, 3]), mode="sum", per_sample_weights=psw).tolist() == \
        [[12.5, 14.0], [21.25, 34.5]]
    assert en.embedding_bag(idx, w, np.array([0, 3]), mode="sum", per_sample_weights=psw,
                            padding_idx=1).tolist() == [[14, 16], [12.25, 22.5]]
    # default mode is mean
    assert same_values(en.embedding_bag(idx, w, np.array([0, 3])),
                       F.embedding_bag(torch.from_numpy(idx), torch.from_numpy(w), torch.tensor([0, 3])))
    # -0.0 alone: sum/mean give +0.0, max keeps -0.0
    neg = np.array([[-0.0, 1.0]], dtype=np.float32)
    assert np.signbit(en.embedding_bag(np.array([0]), neg, np.array([0]), mode="sum")[0, 0]) == False  # noqa: E712
    assert np.signbit(en.embedding_bag(np.array([0]), neg, np.array([0]), mode="max")[0, 0])


def test_equivalence_2d_and_embedding():
    """§3.11: 2-D bags equal F.embedding then sum/mean/max over dim 1 (no padding, no psw)."""
    w = weight_table(seed=9)
    idx = np.random.default_rng(2).integers(0, V, size=(5, 4))
    looked = en.embedding(idx, w)
    assert same_values(en.embedding_bag(idx, w, mode="sum"), looked.sum(1, dtype=np.float32)) or \
        np.allclose(en.embedding_bag(idx, w, mode="sum"), looked.sum(1), rtol=1e-6)
    np.testing.assert_array_equal(en.embedding_bag(idx, w, mode="max"), looked.max(1))


def test_zero_copy_and_out():
    w = torch.from_numpy(weight_table())
    idx = torch.tensor([1, 2, 3, 4], dtype=torch.int32)
    out = torch.empty(2, D)
    result = ef.embedding_bag(idx, w, torch.tensor([0, 2]), mode="sum", out=out)
    assert result is out
    assert same_values(out, F.embedding_bag(idx, w, torch.tensor([0, 2]), mode="sum"))
    # non-contiguous inputs are accepted (copied) and give torch's result
    big = torch.tensor([1, 9, 2, 9, 3, 9, 4, 9])[::2]
    wt = torch.from_numpy(np.asfortranarray(weight_table()))
    assert same_values(ef.embedding_bag(big, wt, torch.tensor([0, 2]), mode="mean"),
                       F.embedding_bag(big, wt, torch.tensor([0, 2]), mode="mean"))


def test_module_and_functional_agree():
    w = torch.from_numpy(weight_table())
    module = et.EmbeddingBag.from_pretrained(w.clone(), mode="max", padding_idx=2)
    idx, offsets, _ = layout("1d")
    assert same_values(module(torch.from_numpy(idx), torch.from_numpy(offsets)),
                       et.embedding_bag(torch.from_numpy(idx), w, torch.from_numpy(offsets), mode="max",
                                        padding_idx=2))


def test_numpy_level_backward_functions_match_autograd():
    idx, offsets, _ = layout("1d")
    w = weight_table(seed=4)
    psw = np.random.default_rng(1).standard_normal(idx.shape).astype(np.float32)
    g = np.random.default_rng(2).standard_normal((len(offsets), D)).astype(np.float32)
    wt = torch.from_numpy(w.copy()).requires_grad_()
    pt = torch.from_numpy(psw.copy()).requires_grad_()
    F.embedding_bag(torch.from_numpy(idx), wt, torch.from_numpy(offsets), mode="sum", per_sample_weights=pt,
                    padding_idx=1).backward(torch.from_numpy(g))
    dense = ef.embedding_bag_backward(g, idx, V, offsets, mode="sum", per_sample_weights=psw, padding_idx=1)
    assert same_values(dense, wt.grad)
    assert same_values(ef.embedding_bag_per_sample_weights_backward(g, w, idx, offsets, padding_idx=1), pt.grad)
    rows, values = ef.embedding_bag_sparse_backward(g, idx, V, offsets, mode="mean", padding_idx=1)
    wt.grad = None
    wt2 = torch.from_numpy(w.copy()).requires_grad_()
    F.embedding_bag(torch.from_numpy(idx), wt2, torch.from_numpy(offsets), mode="mean", sparse=True,
                    padding_idx=1).backward(torch.from_numpy(g))
    np.testing.assert_array_equal(rows, wt2.grad._indices()[0].numpy())
    assert same_values(values, wt2.grad._values())
    result, max_indices = ef.embedding_bag_max_indices(idx, w, offsets)
    wt3 = torch.from_numpy(w.copy()).requires_grad_()
    F.embedding_bag(torch.from_numpy(idx), wt3, torch.from_numpy(offsets), mode="max").backward(torch.from_numpy(g))
    assert same_values(ef.embedding_bag_backward(g, idx, V, offsets, mode="max", max_indices=max_indices), wt3.grad)
    assert (max_indices[1] == -1).all()   # an empty bag: -1 (torch's raw op reports 0)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.float16])
@pytest.mark.parametrize("kind", ["tensor", "numpy"])
def test_weighted_sums_take_the_plain_path(monkeypatch, kind, dtype):
    """1-D indices with offsets and contiguous per-sample weights of the table's type skip the
    checked path (its ~15 µs of checks) and still give torch's bits; anything else about the
    weights goes the checked way and raises torch's error."""
    from embedding_native._ops import embedding_bag as bag_ops
    weight = torch.randn(20, 7, generator=torch.Generator().manual_seed(3)).to(dtype)
    indices, offsets = torch.tensor([1, 2, 19, 2, 0, 7]), torch.tensor([0, 2, 2, 5])
    weights = torch.rand(6, generator=torch.Generator().manual_seed(4)).to(dtype)
    expected = F.embedding_bag(indices, weight, offsets, mode="sum", per_sample_weights=weights)
    convert = (lambda t: t) if kind == "tensor" else (lambda t: t.numpy())
    checked = []
    original = bag_ops.prepare_embedding_bag
    monkeypatch.setattr(bag_ops, "prepare_embedding_bag", lambda *args: checked.append(args) or original(*args))
    ours = en.embedding_bag(convert(indices), convert(weight), convert(offsets), mode="sum",
                            per_sample_weights=convert(weights))
    assert checked == []
    assert torch.equal(torch.as_tensor(ours), expected)
    other_type = weights.double() if dtype != torch.float64 else weights.float()
    for mode, bad in (("sum", weights[:5]), ("sum", other_type), ("mean", weights)):   # torch's checks
        with pytest.raises(Exception) as torchs:
            F.embedding_bag(indices, weight, offsets, mode=mode, per_sample_weights=bad)
        with pytest.raises(type(torchs.value)) as ours_error:
            en.embedding_bag(convert(indices), convert(weight), convert(offsets), mode=mode,
                             per_sample_weights=convert(bad))
        assert str(ours_error.value).split("\n")[0] == str(torchs.value).split("\n")[0]
    assert len(checked) == 3
