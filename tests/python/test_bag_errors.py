"""F.embedding_bag's validation: torch 1.13's order of checks, exception types and texts (spec
§3.7), on the same inputs for torch and for ours (numpy and tensor paths), and that a failing call
leaves the weight untouched (torch 1.13 may already have renormalised it: docs/divergences.md).

Only inputs torch 1.13 handles cleanly are given to torch here; the ones it crashes on are in
test_bag_divergences.py (in subprocesses).
"""

import warnings

import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

import embedding_native as en
import embedding_native.functional as ef
import embedding_native.torch as et
from helpers import assert_same_error, raised

W = torch.arange(1.0, 11.0).view(5, 2)
I = torch.tensor([3, 1, 1, 1, 4, 0])
O = torch.tensor([0, 3])


def both(kwargs_torch, same_message=True, *, weight=None, numpy=True):
    """torch and ours (tensor path, and numpy path when representable) raise the same type (and text)."""
    weight = W if weight is None else weight

    def call(fn, convert):
        kw = {k: (convert(v) if isinstance(v, torch.Tensor) else v) for k, v in kwargs_torch.items()}
        w = convert(weight.clone()) if isinstance(weight, torch.Tensor) else weight
        return lambda: fn(kw.pop("input"), w, **kw)

    theirs, ours = assert_same_error(call(F.embedding_bag, lambda t: t), call(ef.embedding_bag, lambda t: t),
                                     same_message)
    assert_same_error(call(F.embedding_bag, lambda t: t), call(et.embedding_bag, lambda t: t), same_message)
    if numpy:
        # (a numpy offsets array is named as such in the 2-D message: type only there)
        numpy_message = same_message and not str(theirs).startswith("if input is 2D")
        assert_same_error(call(F.embedding_bag, lambda t: t), call(en.embedding_bag, lambda t: t.numpy()),
                          numpy_message)
    return theirs, ours


CASES = {
    # 2. psw shape first (before the input-dim check and the mode check)
    "psw-shape": dict(input=I, offsets=O, mode="sum", per_sample_weights=torch.ones(5)),
    "psw-shape-before-mode": dict(input=I, offsets=O, mode="bogus", per_sample_weights=torch.ones(5)),
    "psw-shape-before-dims": dict(input=I.view(1, 1, 6), offsets=O, mode="sum", per_sample_weights=torch.ones(5)),
    # 3. dims
    "2d-with-offsets": dict(input=I.view(2, 3), offsets=O),
    "1d-no-offsets": dict(input=I),
    "2d-offsets": dict(input=I, offsets=O.view(2, 1)),
    "3d-input": dict(input=I.view(1, 2, 3), offsets=O),
    "0d-input": dict(input=torch.tensor(1), offsets=O),
    "2d-zero-width": dict(input=torch.zeros(3, 0, dtype=torch.long)),
    # 4. mode, then the max-mode options
    "mode": dict(input=I, offsets=O, mode="median"),
    "mode-before-padding": dict(input=I, offsets=O, mode="median", padding_idx=99),
    "max-freq": dict(input=I, offsets=O, mode="max", scale_grad_by_freq=True),
    "max-sparse": dict(input=I, offsets=O, mode="max", sparse=True),
    "max-freq-before-psw": dict(input=I, offsets=O, mode="max", scale_grad_by_freq=True,
                                per_sample_weights=torch.ones(6)),
    # 6. psw with non-sum modes
    "psw-mean": dict(input=I, offsets=O, mode="mean", per_sample_weights=torch.ones(6)),
    "psw-max": dict(input=I, offsets=O, mode="max", per_sample_weights=torch.ones(6)),
    "psw-mean-before-padding": dict(input=I, offsets=O, mode="mean", per_sample_weights=torch.ones(6),
                                    padding_idx=5),
    # 7. C++ checks: padding range, dtypes (promoted), psw dtype, offsets[0], offsets[-1], count
    "padding-high": dict(input=I, offsets=O, mode="sum", padding_idx=5),
    "padding-low": dict(input=I, offsets=O, mode="sum", padding_idx=-6),
    "padding-before-dtype": dict(input=I.short(), offsets=O.short(), mode="sum", padding_idx=9),
    "short-indices": dict(input=I.short(), offsets=O.short(), mode="sum"),
    "byte-indices": dict(input=I.to(torch.uint8), offsets=O.to(torch.uint8), mode="sum"),
    "float-offsets": dict(input=I, offsets=O.float(), mode="sum"),
    "2d-short": dict(input=I.short().view(2, 3), mode="sum"),
    "psw-double": dict(input=I, offsets=O, mode="sum", per_sample_weights=torch.ones(6, dtype=torch.float64)),
    "psw-long": dict(input=I, offsets=O, mode="sum", per_sample_weights=torch.ones(6, dtype=torch.long)),
    "offsets0": dict(input=I, offsets=torch.tensor([1, 3]), mode="sum"),
    "offsets0-int32": dict(input=I.int(), offsets=torch.tensor([1, 3], dtype=torch.int32), mode="mean"),
    "offsets0-promoted": dict(input=I, offsets=torch.tensor([1, 3], dtype=torch.int32), mode="max"),
    "offsets0-before-last": dict(input=I, offsets=torch.tensor([1, 9]), mode="sum"),
    "offsets-last": dict(input=I, offsets=torch.tensor([0, 7]), mode="sum"),
    "offsets-last-max": dict(input=I, offsets=torch.tensor([0, 7]), mode="max", padding_idx=0),
    "ilo-empty": dict(input=I, offsets=torch.tensor([], dtype=torch.long), mode="sum", include_last_offset=True),
    "padding-empty-table": dict(input=torch.tensor([], dtype=torch.long), offsets=torch.tensor([0]), mode="sum",
                                padding_idx=0),
}


@pytest.mark.parametrize("name", list(CASES))
def test_error_matches_torch(name):
    kwargs = dict(CASES[name])
    weight = torch.zeros(0, 2) if name == "padding-empty-table" else None
    both(kwargs, weight=weight)


@pytest.mark.parametrize("weight_dtype", [torch.bfloat16, torch.int64, torch.int32])
def test_weight_dtype_rejected_like_torch(weight_dtype):
    both(dict(input=I, offsets=O, mode="sum"), weight=W.to(weight_dtype), numpy=weight_dtype != torch.bfloat16)


@pytest.mark.parametrize("weight_dtype", [torch.float64, torch.float16])
def test_torch_valid_float_weights_compute_torch_s_values(weight_dtype):
    # torch computes these and so do we (test_table_types.py trains them) ...
    weight = W.to(weight_dtype)
    assert torch.equal(et.embedding_bag(I, weight, O, mode="sum"), F.embedding_bag(I, weight, O, mode="sum"))
    # ... after torch's own checks, which come first
    both(dict(input=I, offsets=torch.tensor([1, 3]), mode="sum"), weight=W.to(weight_dtype))


@pytest.mark.parametrize("mode", ["sum", "mean", "max"])
@pytest.mark.parametrize("padding_idx", [None, 0])
@pytest.mark.parametrize("bad", [5, 99, -1, -7])
def test_out_of_range_indices_are_runtime_errors(mode, padding_idx, bad):
    indices = torch.tensor([0, 1, bad, 2])
    theirs, ours = both(dict(input=indices, offsets=torch.tensor([0, 2]), mode=mode, padding_idx=padding_idx),
                        same_message=False)
    assert isinstance(ours, RuntimeError) and not isinstance(ours, IndexError)
    assert "found idx to be %d" % bad in str(ours)


def test_bool_padding_idx_is_a_type_error():
    both(dict(input=I, offsets=O, mode="sum", padding_idx=True))


def test_padding_idx_wraps_on_the_functional_side():
    for p in (-1, -5, 4, 0):
        assert torch.equal(ef.embedding_bag(I, W, O, mode="sum", padding_idx=p),
                           F.embedding_bag(I, W, O, mode="sum", padding_idx=p))


def test_deprecated_argument_order_swaps_and_warns():
    with pytest.warns(UserWarning, match="Argument order of nn.functional.embedding_bag was changed"):
        ours = ef.embedding_bag(torch.ones(3, 2), torch.tensor([[0, 1]]), mode="sum")
    with pytest.warns(UserWarning):
        theirs = F.embedding_bag(torch.ones(3, 2), torch.tensor([[0, 1]]), mode="sum")
    assert torch.equal(ours, theirs) and ours.tolist() == [[2.0, 2.0]]


def test_sparse_with_scale_grad_by_freq_fails_at_backward_like_torch():
    for fn in (F.embedding_bag, et.embedding_bag):
        w = W.clone().requires_grad_()
        out = fn(I, w, O, mode="sum", sparse=True, scale_grad_by_freq=True)   # the forward works
        e = raised(lambda: out.sum().backward())
        assert type(e) is RuntimeError or isinstance(e, RuntimeError)
        assert str(e).startswith("embedding_backward: scale_grad_by_freq not supported with sparse gradients")


def test_module_padding_idx_assertion_is_lower_case():
    for padding_idx in (5, -6):
        theirs, ours = assert_same_error(lambda: nn.EmbeddingBag(5, 2, padding_idx=padding_idx),
                                         lambda: et.EmbeddingBag(5, 2, padding_idx=padding_idx))
        assert isinstance(ours, AssertionError) and str(ours) == "padding_idx must be within num_embeddings"
        assert_same_error(lambda: nn.EmbeddingBag(5, 2, padding_idx=padding_idx),
                          lambda: en.EmbeddingBag(5, 2, padding_idx=padding_idx))


def test_module_accepts_max_options_and_fails_at_forward():
    for kwargs in (dict(scale_grad_by_freq=True), dict(sparse=True)):
        theirs = nn.EmbeddingBag(5, 2, mode="max", **kwargs)
        ours = et.EmbeddingBag(5, 2, mode="max", _weight=theirs.weight.detach().clone(), **kwargs)
        assert_same_error(lambda: theirs(I, O), lambda: ours(I, O))


# ---- failing calls and max_norm: torch renormalises before its later checks, we do not ----------------


@pytest.mark.parametrize("kwargs", [
    dict(mode="mean", per_sample_weights=torch.ones(6)),          # NotImplementedError after torch's renorm
    dict(mode="sum", offsets=torch.tensor([1, 3])),                 # offsets[0] RuntimeError after it
    dict(mode="sum", padding_idx=17),                               # padding RuntimeError after it
], ids=["psw-mean", "offsets0", "padding"])
def test_failing_call_does_not_renormalise(kwargs):
    kwargs = dict(kwargs)
    offsets = kwargs.pop("offsets", O)
    theirs_w = W.clone()
    ours_w = W.clone()
    assert_same_error(lambda: F.embedding_bag(I, theirs_w, offsets, max_norm=1.0, **kwargs),
                      lambda: ef.embedding_bag(I, ours_w, offsets, max_norm=1.0, **kwargs))
    assert not torch.equal(theirs_w, W)      # torch 1.13 already rescaled the referenced rows
    assert torch.equal(ours_w, W)            # ours: untouched


def test_max_norm_index_errors():
    # torch's renorm raises IndexError for an index >= V (before the bag's own checks) ...
    theirs, ours = assert_same_error(
        lambda: F.embedding_bag(torch.tensor([0, 5]), W.clone(), torch.tensor([0]), max_norm=1.0, mode="sum"),
        lambda: ef.embedding_bag(torch.tensor([0, 5]), W.clone(), torch.tensor([0]), max_norm=1.0, mode="sum"),
        same_message=False)
    assert isinstance(ours, IndexError)
    # ... and wraps -1, then the bag op raises RuntimeError (after renormalising row 4; we do not)
    w = W.clone()
    assert_same_error(
        lambda: F.embedding_bag(torch.tensor([0, -1]), W.clone(), torch.tensor([0]), max_norm=1.0, mode="sum"),
        lambda: ef.embedding_bag(torch.tensor([0, -1]), w, torch.tensor([0]), max_norm=1.0, mode="sum"),
        same_message=False)
    assert torch.equal(w, W)


# ---- sparse tensors: torch's NotImplementedError (no sparse kernel) or reshape's RuntimeError ----------


def to_csr(t):
    """``t.to_sparse_csr()`` without torch's "support is in beta" warning."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return t.to_sparse_csr()


SPARSE_CASES = {
    "input": dict(input=I.to_sparse(), offsets=O, mode="sum"),
    "weight": dict(input=I, offsets=O, mode="sum", weight=W.to_sparse()),
    "offsets": dict(input=I, offsets=O.to_sparse(), mode="mean"),
    "psw": dict(input=I, offsets=O, mode="sum", per_sample_weights=torch.ones(6).to_sparse()),
    "csr-weight": dict(input=I, offsets=O, mode="max", weight=to_csr(W)),
    "float-input": dict(input=I.float().to_sparse(), offsets=O, mode="sum"),      # dispatch comes first
    "input-bad-padding": dict(input=I.to_sparse(), offsets=O, mode="sum", padding_idx=9),  # padding first
    "input-bogus-mode": dict(input=I.to_sparse(), offsets=O, mode="bogus"),
    "input-psw-mean": dict(input=I.to_sparse(), offsets=O, mode="mean", per_sample_weights=torch.ones(6)),
    "input-max_norm": dict(input=I.to_sparse(), offsets=O, mode="sum", max_norm=1.0),
    "weight-max_norm": dict(input=I, offsets=O, mode="sum", max_norm=1.0, weight=W.to_sparse()),
    "2d-input": dict(input=I.view(2, 3).to_sparse(), mode="sum"),
    "2d-csr-input": dict(input=to_csr(I.view(2, 3)), mode="sum"),
    "2d-psw": dict(input=I.view(2, 3), mode="sum", per_sample_weights=torch.ones(2, 3).to_sparse()),
}


@pytest.mark.parametrize("requires_grad", [False, True], ids=["frozen", "grad"])
@pytest.mark.parametrize("name", list(SPARSE_CASES))
def test_sparse_tensors_fail_like_torch(name, requires_grad):
    kwargs = dict(SPARSE_CASES[name])
    weight = kwargs.pop("weight", W).clone()
    if requires_grad and weight.layout == torch.strided:
        weight.requires_grad_()
    input = kwargs.pop("input")
    for ours in (ef.embedding_bag, et.embedding_bag):
        theirs, got = assert_same_error(lambda: F.embedding_bag(input, weight, **kwargs),
                                        lambda: ours(input, weight, **kwargs), same_message=False)
        # torch's text up to its advice on custom builds ('aten::_embedding_bag' when the table
        # needs a gradient, '_forward_only' otherwise)
        assert str(got).startswith(str(theirs).split(" This could be")[0])


def test_sparse_tensors_in_modules():
    reference, ours = nn.EmbeddingBag(5, 2, mode="sum"), et.EmbeddingBag(5, 2, mode="sum")
    assert_same_error(lambda: reference(I.to_sparse(), O), lambda: ours(I.to_sparse(), O), same_message=False)
    reference = nn.EmbeddingBag.from_pretrained(W.to_sparse(), mode="sum")
    ours = et.EmbeddingBag.from_pretrained(W.to_sparse(), mode="sum")
    assert_same_error(lambda: reference(I, O), lambda: ours(I, O), same_message=False)
    assert_same_error(lambda: nn.EmbeddingBag(5, 2)(I.to_sparse(), O), lambda: en.EmbeddingBag(5, 2)(I.to_sparse(), O),
                      same_message=False)


def test_sparse_psw_with_max_norm_does_not_renormalise():
    # torch renormalises, then finds no sparse kernel; ours fails first (docs/divergences.md).
    theirs_w, ours_w = W.clone(), W.clone()
    psw = torch.ones(6).to_sparse()
    assert_same_error(lambda: F.embedding_bag(I, theirs_w, O, max_norm=1.0, mode="sum", per_sample_weights=psw),
                      lambda: ef.embedding_bag(I, ours_w, O, max_norm=1.0, mode="sum", per_sample_weights=psw),
                      same_message=False)
    assert not torch.equal(theirs_w, W) and torch.equal(ours_w, W)


@pytest.mark.parametrize("call", [
    lambda s: ef.embedding_bag_backward(torch.ones(2, 2), s(I), 5, s(O)),
    lambda s: ef.embedding_bag_backward(s(torch.ones(2, 2)), I, 5, O),
    lambda s: ef.embedding_bag_sparse_backward(torch.ones(2, 2), I, 5, s(O), mode="sum"),
    lambda s: ef.embedding_bag_per_sample_weights_backward(torch.ones(2, 2), s(W), I, O),
], ids=["indices", "grad", "offsets", "weight"])
def test_bag_gradient_functions_refuse_sparse_tensors(call):
    ours = raised(lambda: call(lambda t: t.to_sparse()))
    assert isinstance(ours, en.EmbeddingNotSupportedError) and "layout torch.sparse_coo" in str(ours)


# ---- argument types: torch's parser (TypeError), and what it lets through ------------------------------


BAG_VALUES = {"int": 2, "float": 2.0, "bool": True, "np.int64": np.int64(2), "np.float64": np.float64(2.0),
              "np.bool_": np.bool_(True), "str": "x", "None": None, "list": [2], "0d-long": torch.tensor(2),
              "0d-float": torch.tensor(2.0), "1d": torch.tensor([2]), "0d-ndarray": np.array(2)}


@pytest.mark.parametrize("value", list(BAG_VALUES))
@pytest.mark.parametrize("name", ["max_norm", "norm_type", "scale_grad_by_freq", "sparse", "include_last_offset",
                                  "padding_idx", "mode"])
@pytest.mark.parametrize("max_norm", [None, 1.0], ids=["plain", "max_norm"])
def test_argument_types_like_torch(name, value, max_norm):
    # flags are True/False only; padding_idx an int, numpy integer or 0-d integer tensor;
    # max_norm/norm_type any real number or 0-d tensor; mode compared with == (a list is no mode).
    kwargs = dict(mode="sum", max_norm=max_norm)
    kwargs[name] = BAG_VALUES[value]
    offsets = torch.tensor([0, 6]) if name == "include_last_offset" else O   # valid with either value
    for ours in (ef.embedding_bag, et.embedding_bag):
        try:
            expected = F.embedding_bag(I, W.clone(), offsets, **kwargs)
        except Exception:  # noqa: BLE001
            assert_same_error(lambda: F.embedding_bag(I, W.clone(), offsets, **kwargs),
                              lambda: ours(I, W.clone(), offsets, **kwargs))
            continue
        assert torch.allclose(ours(I, W.clone(), offsets, **kwargs), expected, rtol=1e-6, atol=0)


@pytest.mark.parametrize("kwargs", [dict(sparse=1), dict(scale_grad_by_freq=None), dict(include_last_offset=0),
                                    dict(max_norm="1.5"), dict(max_norm=1.0, norm_type="2")], ids=str)
def test_module_argument_types_fail_at_forward_like_torch(kwargs):
    reference = nn.EmbeddingBag.from_pretrained(W.clone(), mode="sum", **kwargs)
    for ours in (et.EmbeddingBag.from_pretrained(W.clone(), mode="sum", **kwargs),
                 en.EmbeddingBag.from_pretrained(W.numpy().copy(), mode="sum", **kwargs)):
        convert = (lambda t: t) if isinstance(ours, et.EmbeddingBag) else (lambda t: t.numpy())
        theirs, got = assert_same_error(lambda: reference(I, O), lambda: ours(convert(I), convert(O)))
        assert isinstance(got, TypeError)


BAG_NOT_TENSORS = {"ndarray": lambda t: t.numpy(), "list": lambda t: t.tolist(), "int": lambda t: 1,
                   "numpy-scalar": lambda t: np.int64(1)}


@pytest.mark.parametrize("kwargs", [dict(), dict(max_norm=1.0), dict(padding_idx=1)], ids=str)
@pytest.mark.parametrize("kind", list(BAG_NOT_TENSORS))
@pytest.mark.parametrize("argument", ["input", "weight", "offsets", "per_sample_weights"])
def test_drop_in_needs_tensors_like_torch(argument, kind, kwargs):
    # torch: AttributeError or TypeError where F.embedding_bag's Python code touches the object
    # (weight.dtype, input.size(), input.dim(), offsets.dim(), weight.detach()), else its parser's.
    args = dict(input=I, weight=W.clone(), offsets=O, per_sample_weights=torch.ones(6))
    args[argument] = BAG_NOT_TENSORS[kind](args[argument])
    assert_same_error(lambda: F.embedding_bag(mode="sum", **args, **kwargs),
                      lambda: et.embedding_bag(mode="sum", **args, **kwargs))


def test_drop_in_module_with_numpy_indices():
    reference, ours = nn.EmbeddingBag(10, 5), et.EmbeddingBag(10, 5)
    for offsets in (torch.tensor([0]), np.array([0])):
        assert_same_error(lambda: reference(np.array([1]), offsets), lambda: ours(np.array([1]), offsets))
    assert_same_error(lambda: reference(torch.tensor([1]), np.array([0])), lambda: ours(torch.tensor([1]), np.array([0])))
