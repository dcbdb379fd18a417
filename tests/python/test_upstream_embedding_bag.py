"""torch's own CPU tests of nn.EmbeddingBag / F.embedding_bag, rewritten as parity tests for
embedding_native.torch.EmbeddingBag / embedding_bag.

Sources: the TestNN / TestNNDeviceType methods of torch 1.13's test/test_nn.py whose names contain
``embedding_bag`` / ``EmbeddingBag`` / ``embeddingbag`` (2.x: test/nn/test_embedding.py; the few
tests added after 1.13 are ported where torch 1.13 runs them safely), the OpInfo of
``nn.functional.embedding_bag`` (sample_inputs_embedding_bag) and, since torch 1.13 has no
ModuleInfo for EmbeddingBag, the ``module_tests`` entries for EmbeddingBag in common_nn.py. Each
test names what it ports. Each runs the case through torch and through ours (check_bag) and
compares:

* outputs: bit for bit (spec §4.1: both reduce each bag in position order);
* with max_norm: the renormalised weight bit for bit (the library computes each row's norm as
  torch does; helpers.renorm_matches), and then the outputs and the per_sample_weights gradient
  bit for bit against torch's bag of that renormalised table;
* weight gradients: bit for bit (sum / mean dense add duplicate rows in the order of torch's
  unstable sort, reproduced step for step), except with scale_grad_by_freq, where torch divides by
  another row's count (docs/divergences.md): there within |ours - documented| <= max(4, n - 1) *
  eps * Σ|terms| per element of the documented gradient computed in double, n the number of terms
  (within_summation_bound; spec §4.2 gives the 4);
* per_sample_weights gradients: bit for bit (a sequential dot product in both).

Left out: bfloat16 bags (test_embedding_bag_bfloat16: torch 1.13 has no CPU bfloat16 bag kernel),
the half-only test_embedding_bag_half (its case is test_known_example, which float16 joins through
TABLE_DTYPES), and the raw ATen ops of test_embedding_bag_dimension_errors (torch.embedding_bag,
torch._embedding_bag, _embedding_bag_forward_only: not part of our API).
"""

import itertools
import random

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

import embedding_native as en
import embedding_native.torch as et
from helpers import (BAG_GRAD_C, BAG_DTYPES, BAG_GRADCHECK_DTYPES, assert_same_error, identical, raised,
                     renorm_matches)

dtypes = pytest.mark.parametrize("dtype", BAG_DTYPES, ids=str)
gradcheck_dtypes = pytest.mark.parametrize("dtype", BAG_GRADCHECK_DTYPES, ids=str)
INDEX_DTYPES = pytest.mark.parametrize("index_dtype, offset_dtype",
                                       list(itertools.product((torch.int32, torch.int64), repeat=2)), ids=str)


def randn(shape, dtype, seed):
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed)).to(dtype)


def known_weight(dtype):
    """The upstream tests' 5 x 2 table: rows [1, 2], [3, 4], ..., [9, 10]."""
    return torch.arange(1, 11).view(5, 2).to(dtype)


def sum_of_terms(input, weight, offsets, grad, per_sample_weights, kwargs):
    """Σ|terms| of each element of a sum/mean weight gradient: torch's gradient for |grad| and
    |per_sample_weights| (the weight values do not enter it). scale_grad_by_freq only shrinks terms,
    so it is left out (a looser, still valid bound)."""
    keep = {k: v for k, v in kwargs.items() if k in ("mode", "include_last_offset", "padding_idx")}
    table = torch.zeros_like(weight).requires_grad_()
    psw = None if per_sample_weights is None else per_sample_weights.detach().abs()
    F.embedding_bag(input, table, offsets, per_sample_weights=psw, **keep).backward(grad.abs())
    return table.grad


def count_terms(input, weight, offsets, kwargs):
    """How many positions add into each element of a sum/mean weight gradient."""
    keep = {k: v for k, v in kwargs.items() if k in ("include_last_offset", "padding_idx")}
    table = torch.zeros_like(weight).requires_grad_()
    out = F.embedding_bag(input, table, offsets, mode="sum", **keep)
    out.backward(torch.ones_like(out))
    return table.grad


def within_summation_bound(ours, theirs, magnitude, terms):
    """(ok, worst ratio): |ours - theirs| <= max(4, n - 1) * eps * Σ|terms| per element, n the
    number of terms. Each side's recursive sum is within (n - 1) * eps/2 * Σ|terms| of the exact
    one whatever its order (the standard worst-case bound), so the two within (n - 1) * eps *
    Σ|terms|; spec §4.2's c = 4 is the floor, measured on short accumulations. When many positions
    hit one row (59 in test_1d_padding_idx_equals_padded_2d's all-padding bags) the two orders were
    seen 5.3 * eps * Σ|terms| apart, beyond c = 4 but well inside n - 1."""
    eps = torch.finfo(ours.dtype).eps
    diff = (ours.detach().double() - theirs.detach().double()).abs()
    allowed = (terms.double() - 1).clamp(min=BAG_GRAD_C) * eps * magnitude.double()
    ratio = torch.where(diff == 0, torch.zeros_like(diff), diff / (eps * magnitude.double()))
    return bool((diff <= allowed).all()), float(ratio.max()) if ratio.numel() else 0.0


def check_bag(weight, input, offsets=None, per_sample_weights=None, trainable_psw=False, grad=None, **kwargs):
    """F.embedding_bag and et.embedding_bag on copies of the same tensors; compares what the module
    doc lists and returns our (output, weight)."""
    w_torch, w_ours = (weight.detach().clone().requires_grad_() for _ in range(2))
    psw_torch = psw_ours = None
    if per_sample_weights is not None:
        psw_torch, psw_ours = (per_sample_weights.detach().clone().requires_grad_(trainable_psw) for _ in range(2))
    expected = F.embedding_bag(input, w_torch, offsets, per_sample_weights=psw_torch, **kwargs)
    got = et.embedding_bag(input, w_ours, offsets, per_sample_weights=psw_ours, **kwargs)
    grad = randn(expected.shape, weight.dtype, 3) if grad is None else grad
    if kwargs.get("max_norm") is not None:
        ok, detail = renorm_matches(w_ours, w_torch, weight, kwargs.get("norm_type", 2.0))
        assert ok, detail
        # From here on the oracle is torch's bag of our renormalised table.
        plain = {k: v for k, v in kwargs.items() if k not in ("max_norm", "norm_type")}
        w_torch = w_ours.detach().clone().requires_grad_()
        if per_sample_weights is not None:
            psw_torch = per_sample_weights.detach().clone().requires_grad_(trainable_psw)
        expected = F.embedding_bag(input, w_torch, offsets, per_sample_weights=psw_torch, **plain)
    else:
        assert identical(w_ours, weight)
    assert identical(got, expected)
    got.backward(grad)
    expected.backward(grad)
    mode = kwargs.get("mode", "mean")
    if kwargs.get("sparse") or mode == "max" or not kwargs.get("scale_grad_by_freq"):
        assert identical(w_ours.grad, w_torch.grad)
    else:
        # torch divides by another row's count; the oracle is the documented gradient, in double.
        oracle = own_count_gradient(input, w_torch.double(), grad.double(),
                                    None if psw_torch is None else psw_torch.double(), mode)
        ok, ratio = within_summation_bound(w_ours.grad, oracle,
                                           sum_of_terms(input, weight, offsets, grad, per_sample_weights, kwargs),
                                           count_terms(input, weight, offsets, kwargs))
        assert ok, ratio
    if trainable_psw and per_sample_weights is not None:
        assert identical(psw_ours.grad, psw_torch.grad)
    return got, w_ours


def own_count_gradient(input, weight, grad, per_sample_weights, mode):
    """The weight gradient of a 2-D-input sum/mean bag with scale_grad_by_freq as torch documents
    it and F.embedding computes it (each row divided by its own count). torch 1.13's bag divides by
    another row's count; we follow the documentation (docs/divergences.md)."""
    assert input.dim() == 2
    table = weight.detach().clone().requires_grad_()
    rows = F.embedding(input, table, scale_grad_by_freq=True)
    if per_sample_weights is not None:
        rows = rows * per_sample_weights.detach().unsqueeze(-1)
    (rows.sum(1) if mode == "sum" else rows.mean(1)).backward(grad)
    return table.grad


# ---- TestNN -------------------------------------------------------------------------------------------


@dtypes
def test_from_pretrained_one_row_per_bag(dtype):
    # test_embedding_bag_from_pretrained
    a = torch.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]).to(dtype)
    reference, ours = nn.EmbeddingBag.from_pretrained(a.clone()), et.EmbeddingBag.from_pretrained(a)
    assert identical(ours.weight, reference.weight) and ours.weight.data_ptr() == a.data_ptr()
    idx = torch.tensor([0, 1])
    assert identical(ours(idx, torch.arange(2)), reference(idx, torch.arange(2)))
    assert identical(ours(idx, torch.arange(2)), a)


@dtypes
def test_from_pretrained_does_not_zero_the_padding_row(dtype):
    # test_embedding_bag_from_pretrained_padding_idx
    embeddings = torch.rand(4, 3, generator=torch.Generator().manual_seed(0)).to(dtype).requires_grad_()
    reference = nn.EmbeddingBag.from_pretrained(embeddings.detach().clone(), padding_idx=2)
    ours = et.EmbeddingBag.from_pretrained(embeddings, padding_idx=2)
    assert identical(ours.weight, reference.weight) and identical(ours.weight, embeddings)


@dtypes
def test_module_and_functional_agree(dtype):
    # test_embedding_bag_functional
    a = torch.tensor([[1, 3, 2], [0, 2, 1]])
    embeddings = torch.rand(4, 3, generator=torch.Generator().manual_seed(0)).to(dtype).requires_grad_()
    for padding_idx in (None, 2):
        expected = F.embedding_bag(a, embeddings, padding_idx=padding_idx)
        module = et.EmbeddingBag(4, 3)
        module.weight = nn.Parameter(embeddings)
        if padding_idx is not None:
            module = module.from_pretrained(embeddings, padding_idx=padding_idx)
        assert identical(module(a), expected)
        assert identical(et.embedding_bag(a, embeddings, padding_idx=padding_idx), expected)


@pytest.mark.parametrize("padding_idx", range(-6, 6))
def test_padding_idx_range(padding_idx):
    # test_embedding_bag_padding_idx_error: F raises RuntimeError outside [-V, V), the module AssertionError
    a = torch.tensor([[1, 3, 2], [0, 2, 1]])
    embeddings = torch.rand(4, 3, generator=torch.Generator().manual_seed(0))
    if -4 <= padding_idx < 4:
        check_bag(embeddings, a, padding_idx=padding_idx)
        assert et.EmbeddingBag(4, 3, padding_idx=padding_idx).padding_idx == nn.EmbeddingBag(
            4, 3, padding_idx=padding_idx).padding_idx
        return
    for theirs, ours in ((lambda: F.embedding_bag(a, embeddings, padding_idx=padding_idx),
                          lambda: et.embedding_bag(a, embeddings, padding_idx=padding_idx)),
                         (lambda: nn.EmbeddingBag(4, 3, padding_idx=padding_idx),
                          lambda: et.EmbeddingBag(4, 3, padding_idx=padding_idx))):
        expected, got = assert_same_error(theirs, ours)
        assert str(got) == str(expected)


@dtypes
@pytest.mark.parametrize("mode, opts", [("mean", {}), ("max", dict(max_norm=2.0, norm_type=0.5))],
                         ids=["test_embeddingbag_from_pretrained", "test_embeddingbag_from_pretrained_options"])
def test_from_pretrained_2d_input(dtype, mode, opts):
    # test_embeddingbag_from_pretrained; test_embeddingbag_from_pretrained_options (upstream in float64)
    a = torch.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]).to(dtype)
    original, a_torch = a.clone(), a.clone()
    reference = nn.EmbeddingBag.from_pretrained(a_torch, mode=mode, **opts)
    ours = et.EmbeddingBag.from_pretrained(a, mode=mode, **opts)
    idx = torch.tensor([[0, 1]])
    expected, got = reference(idx), ours(idx)
    if opts:
        ok, detail = renorm_matches(a, a_torch, original, 0.5)
        assert ok, detail
        assert a.ne(original).all()
        if dtype not in (torch.float16, torch.float32):  # their rescaled rows' own norms round above max_norm (torch's too)
            assert a.norm(p=0.5, dim=1).le(2.0).all()
        assert identical(got, a.max(0, keepdim=True)[0])
    else:
        assert identical(got, expected)


@dtypes
def test_include_last_offset_issue_89677(dtype):
    # test_embeddingbag_include_last_offset (added after 1.13). offsets [0, 3, 4] cover the input:
    # compared with torch. offsets [0, 3, 3] leave position 3 in no bag: torch 1.13 corrupts the heap
    # there and 2.x makes bag 1 weight[3]; we raise (docs/divergences.md), so torch is not run on it.
    weight = randn((100, 3), dtype, 0)
    weight[61] = 0
    input = torch.tensor([0, 1, 2, 3])
    got, _ = check_bag(weight, input, torch.tensor([0, 3, 4]), include_last_offset=True, padding_idx=61)
    assert identical(got, torch.stack([F.embedding_bag(input[:3].view(1, 3), weight)[0], weight[3]]))
    module = et.EmbeddingBag(100, 3, include_last_offset=True, padding_idx=61, _weight=weight)
    e = raised(lambda: module(input, torch.tensor([0, 3, 3])))
    assert isinstance(e, en.EmbeddingRuntimeError) and "must equal the input's length" in str(e)


# ---- TestNNDeviceType: padding_idx -------------------------------------------------------------------


NUM_BAGS, BAG_LIMIT, NUM_WORDS = 10, 10, 100


def one_d_bags(rng, include_last_offset, allpad):
    """test_embedding_bag_1D_padding_idx's bags: one full, one empty, the others 1..9 long."""
    empty = rng.randrange(NUM_BAGS)
    full = rng.choice([b for b in range(NUM_BAGS) if b != empty])
    indices, offsets = [], []
    for bag in range(NUM_BAGS):
        offsets.append(len(indices))
        size = BAG_LIMIT if bag == full else 0 if bag == empty else rng.randint(1, BAG_LIMIT - 1)
        indices += [1 if allpad else rng.randrange(NUM_WORDS) for _ in range(size)]
    if include_last_offset:
        offsets.append(len(indices))
    return torch.tensor(indices), torch.tensor(offsets)


def padded_2d(indices, offsets, include_last_offset, padding_idx):
    """The same bags as a (NUM_BAGS, BAG_LIMIT) input, filled up with padding_idx."""
    ends = offsets.tolist()[1:] + ([] if include_last_offset else [len(indices)])
    rows = [indices[start:end].tolist() for start, end in zip(offsets.tolist(), ends)]
    return torch.tensor([row + [padding_idx] * (BAG_LIMIT - len(row)) for row in rows])


BAG_CASES = [(mode, sparse, ilo, allpad)
             for mode, sparse, ilo, allpad in itertools.product(("max", "mean", "sum"), *[(False, True)] * 3)
             if not (mode == "max" and sparse)]


@dtypes
@pytest.mark.parametrize("mode, sparse, include_last_offset, allpad", BAG_CASES, ids=str)
def test_1d_padding_idx_equals_padded_2d(dtype, mode, sparse, include_last_offset, allpad):
    # test_embedding_bag_1D_padding_idx: every index value of the input as padding_idx, and None.
    # Ours against torch, and (the upstream's check) our 1-D bags against our padded 2-D ones.
    rng = random.Random(BAG_CASES.index((mode, sparse, include_last_offset, allpad)))
    indices, offsets = one_d_bags(rng, include_last_offset, allpad)
    for padding_idx in sorted(set(indices.tolist())) + [None]:
        padding_2d = NUM_WORDS if padding_idx is None else padding_idx
        weight = randn((NUM_WORDS + (padding_idx is None), 3), dtype, padding_2d)
        kwargs = dict(mode=mode, sparse=sparse)
        got_1d, w_1d = check_bag(weight, indices, offsets, padding_idx=padding_idx,
                                 include_last_offset=include_last_offset, **kwargs)
        got_2d, w_2d = check_bag(weight, padded_2d(indices, offsets, include_last_offset, padding_2d),
                                 padding_idx=padding_2d, **kwargs)
        assert identical(got_1d, got_2d)
        if sparse or mode == "max":
            assert identical(w_1d.grad.to_dense(), w_2d.grad.to_dense())
        else:
            # Each is torch's bit for bit (check_bag); torch's sort sees the 2-D padding positions too,
            # so its order, and the last bits, may differ between the two layouts: within the bound of
            # two orders of one sum (upstream: assertEqual with its tolerance).
            one_d = dict(kwargs, padding_idx=padding_idx, include_last_offset=include_last_offset)
            ok, ratio = within_summation_bound(w_1d.grad, w_2d.grad,
                                               sum_of_terms(indices, weight, offsets, randn(got_1d.shape, dtype, 3), None, one_d),
                                               count_terms(indices, weight, offsets, one_d))
            assert ok, ratio


@dtypes
@pytest.mark.parametrize("mode, sparse, allpad, rows",
                         [c for c in itertools.product(("max", "mean", "sum"), (False, True), (False, True), (1, 10))
                          if not (c[0] == "max" and c[1])], ids=str)
def test_2d_padding_idx(dtype, mode, sparse, allpad, rows):
    # test_embedding_bag_2D_padding_idx: every index value of the input as padding_idx; one bag all
    # one index (so all padding for that value). Its F.embedding-based reference is replaced by torch's bag.
    g = torch.Generator().manual_seed(rows)
    indices = torch.ones(rows, 10, dtype=torch.int64) if allpad else torch.randint(0, 10, (rows, 10), generator=g)
    if rows > 1 and not allpad:
        indices[3] = indices[3][0]
    for padding_idx in sorted(set(indices.flatten().tolist())):
        check_bag(randn((10, 3), dtype, padding_idx), indices, padding_idx=padding_idx, mode=mode, sparse=sparse)


# ---- TestNNDeviceType: inputs, offsets, errors --------------------------------------------------------


@dtypes
@INDEX_DTYPES
@pytest.mark.parametrize("sparse", [True, False], ids=["sparse", "dense"])
def test_empty_input(dtype, index_dtype, offset_dtype, sparse):
    # test_embedding_bag_empty_input
    x = torch.tensor([], dtype=index_dtype)
    for offsets in ([0], [0, 0]):
        got, _ = check_bag(randn((4, 3), dtype, 0), x, torch.tensor(offsets, dtype=offset_dtype), sparse=sparse)
        assert identical(got, torch.zeros(len(offsets), 3, dtype=dtype))


@dtypes
@pytest.mark.parametrize("index_dtype", [torch.int32, torch.int64], ids=str)
@pytest.mark.parametrize("padding_idx", [None, 0])
@pytest.mark.parametrize("mode", ["sum", "mean", "max"])
def test_out_of_bounds_index(dtype, index_dtype, padding_idx, mode):
    # test_embedding_bag_out_of_bounds_idx (which forces padding_idx=0: with None torch's float fast path
    # raises caffe2's text instead, spec §3.7). Ours always raises the second text; nothing is written.
    weight = randn((10, 2), dtype, 0)
    for idx in (torch.tensor([[-1, 1]], dtype=index_dtype), torch.tensor([[11, 8]], dtype=index_dtype)):
        for psw in ((None, randn(idx.shape, dtype, 1)) if mode == "sum" else (None,)):
            kwargs = dict(per_sample_weights=psw, padding_idx=padding_idx, mode=mode)
            theirs, ours = assert_same_error(lambda: F.embedding_bag(idx, weight, **kwargs),
                                             lambda: et.embedding_bag(idx, weight, **kwargs), same_message=False)
            assert "Expected idx >= 0 && idx < num_embeddings" in str(ours)
            if padding_idx is not None:
                assert "Expected idx >= 0 && idx < num_embeddings" in str(theirs)


@dtypes
def test_dimension_errors(dtype):
    # test_embedding_bag_dimension_errors (added after 1.13), the F.embedding_bag part. The weight
    # check is 2.x's: torch 1.13 accepts a 3-D weight silently, we raise 2.x's ValueError
    # (docs/divergences.md), so that case is not compared with torch.
    indices, offsets = torch.full((2, 0, 0, 6, 6), 2), torch.full((2, 0, 0, 6, 6), 0)
    for args in ((indices, torch.zeros(2, 6, dtype=dtype), offsets),
                 (torch.full((2,), 1), torch.zeros(2, 2, dtype=dtype), offsets)):
        theirs, ours = assert_same_error(lambda: F.embedding_bag(*args), lambda: et.embedding_bag(*args))
        assert isinstance(ours, ValueError) and str(ours) == str(theirs)
    e = raised(lambda: et.embedding_bag(torch.full((2,), 2), torch.zeros(2, 2, 2, dtype=dtype), torch.full((2,), 0)))
    assert isinstance(e, ValueError) and str(e) == "weight has to be a 2D Tensor, but got Tensor of dimension 3"


@INDEX_DTYPES
def test_per_sample_weights_failures(index_dtype, offset_dtype):
    # test_EmbeddingBag_per_sample_weights_failures
    g = torch.Generator().manual_seed(0)
    reference, ours = nn.EmbeddingBag(5, 2, mode="sum"), et.EmbeddingBag(5, 2, mode="sum")
    input = torch.tensor([3, 1, 1, 1, 4, 0], dtype=index_dtype)
    offsets = torch.tensor([0, 0, 3, 3, 6], dtype=offset_dtype)
    input_2d = torch.randint(5, (7, 3), dtype=index_dtype, generator=g)
    cases = [(input, offsets, torch.randn(6, dtype=torch.double, generator=g)),   # dtype differs from weight's
             (input, offsets, torch.randn(5, generator=g)),                         # shape differs (1-D)
             (input_2d, None, torch.randn(7 * 3, generator=g))]                      # shape differs (2-D)
    for args in cases:
        theirs, got = assert_same_error(lambda: reference(*args), lambda: ours(*args))
        assert str(got) == str(theirs)
    for mode in ("max", "mean"):  # per_sample_weights only with mode='sum'
        args = (input_2d, None, torch.randn(7, 3, generator=g))
        theirs, got = assert_same_error(lambda: nn.EmbeddingBag(5, 2, mode=mode)(*args),
                                        lambda: et.EmbeddingBag(5, 2, mode=mode)(*args))
        assert isinstance(got, NotImplementedError) and str(got) == str(theirs)


@dtypes
@INDEX_DTYPES
@pytest.mark.parametrize("trainable", [True, False], ids=["trainable-psw", "fixed-psw"])
def test_empty_per_sample_weights_and_offsets(dtype, index_dtype, offset_dtype, trainable):
    # test_EmbeddingBag_empty_per_sample_weights_and_offsets
    got, weight = check_bag(known_weight(dtype), torch.tensor([], dtype=index_dtype),
                            torch.tensor([0, 0, 0, 0, 0], dtype=offset_dtype), torch.tensor([], dtype=dtype),
                            trainable, mode="sum")
    assert identical(got, torch.zeros(5, 2, dtype=dtype)) and identical(weight.grad, torch.zeros(5, 2, dtype=dtype))


@dtypes
@INDEX_DTYPES
@pytest.mark.parametrize("mode, with_psw", [("sum", True), ("sum", False), ("max", False), ("mean", False)], ids=str)
@pytest.mark.parametrize("include_last_offset", [False, True], ids=["K-offsets", "include_last_offset"])
@pytest.mark.parametrize("trainable", [True, False], ids=["trainable-psw", "fixed-psw"])
def test_per_sample_weights_and_offsets(dtype, index_dtype, offset_dtype, mode, with_psw, include_last_offset,
                                        trainable):
    # test_EmbeddingBag_per_sample_weights_and_offsets (sum, K offsets) and
    # test_EmbeddingBag_per_sample_weights_and_new_offsets (all of these)
    input = torch.tensor([3, 1, 1, 1, 4, 0], dtype=index_dtype)
    offsets = torch.tensor([0, 0, 3, 3, 6] + [6] * include_last_offset, dtype=offset_dtype)
    psw = randn(input.shape, dtype, 5) if with_psw else None
    check_bag(known_weight(dtype), input, offsets, psw, trainable, mode=mode, include_last_offset=include_last_offset)


@dtypes
@pytest.mark.parametrize("index_dtype", [torch.int32, torch.int64], ids=str)
@pytest.mark.parametrize("sparse", [True, False], ids=["sparse", "dense"])
@pytest.mark.parametrize("trainable", [True, False], ids=["trainable-psw", "fixed-psw"])
@pytest.mark.parametrize("N, D, B, L", [(2, 3, 5, 7), (2, 5, 53, 23), (101, 5, 3, 7), (2, 101, 3, 7)],
                         ids=["simple", "B*L>1000", "large-V", "large-D"])
def test_per_sample_weights_without_offsets(dtype, index_dtype, sparse, trainable, N, D, B, L):
    # test_EmbeddingBag_per_sample_weights_and_no_offsets (_test_EmbeddingBag_vs_Embedding): fixed-length
    # bags given as offsets, psw summing to 1 per bag. The reference is torch's bag, not F.embedding + sum.
    g = torch.Generator().manual_seed(N * B)
    input = torch.randint(N, (B, L), dtype=index_dtype, generator=g)
    psw = torch.randn(B, L, generator=g).softmax(dim=-1).to(dtype)
    check_bag(randn((N, D), dtype, D), input.view(-1), torch.arange(0, B * L, L, dtype=index_dtype), psw.view(-1),
              trainable, mode="sum", sparse=sparse)


@dtypes
@INDEX_DTYPES
@pytest.mark.parametrize("mode, sparse", [("sum", False), ("mean", False), ("max", False), ("sum", True),
                                          ("mean", True)], ids=str)
def test_known_example(dtype, index_dtype, offset_dtype, mode, sparse):
    # test_embedding_bag_device (_test_EmbeddingBag); test_embedding_bag_half's case for float16
    input = torch.tensor([3, 1, 1, 1, 4, 0], dtype=index_dtype)
    offsets = torch.tensor([0, 0, 3, 3, 6], dtype=offset_dtype)
    kwargs = dict(mode=mode, sparse=sparse)
    grad = torch.tensor([[99, 99], [1, 2], [99, 99], [3, 4], [99, 99]]).to(dtype)  # empty bags' grads ignored
    got, weight = check_bag(known_weight(dtype), input, offsets, grad=grad, **kwargs)
    denominator = 3 if mode == "mean" else 1
    expected_bags = {"max": [[7, 8], [9, 10]]}.get(mode, [[13, 16], [13, 16]])
    expected_grad = {"max": [[0, 0], [0, 0], [0, 0], [1, 2], [3, 4]]}.get(mode, [[3, 4], [5, 8], [0, 0], [1, 2], [3, 4]])
    assert identical(got[1::2], torch.tensor(expected_bags).to(dtype) / denominator)
    # (check_bag compared with torch bit for bit; here upstream's closed form, within half's precision)
    tolerance = dict(rtol=1e-3, atol=1e-3) if dtype == torch.float16 else {}
    assert torch.allclose(weight.grad.to_dense(), torch.tensor(expected_grad).to(dtype) / denominator, **tolerance)
    # the same bags as a 2 x 3 input
    check_bag(known_weight(dtype), input.view(2, 3), grad=grad[1::2], **kwargs)
    # only empty bags: a zero gradient
    _, weight = check_bag(known_weight(dtype), torch.tensor([], dtype=index_dtype),
                          torch.tensor([0, 0, 0, 0], dtype=offset_dtype), **kwargs)
    assert identical(weight.grad.to_dense(), torch.zeros(5, 2, dtype=dtype))
    # EmbeddingBag against Embedding + reduction (the upstream's N, D, B, L): here against torch's bag,
    # with and without max_norm
    for max_norm, (N, D, B, L) in itertools.product((None, 3), [(37, 12, 9, 5)] + list(
            itertools.product([1, 2], repeat=4))):
        g = torch.Generator().manual_seed(N + D + B + L)
        idx = torch.randint(N, (B, L), dtype=index_dtype, generator=g)
        check_bag(randn((N, D), dtype, B) * 2, idx.view(-1), torch.arange(0, B * L, L, dtype=offset_dtype),
                  max_norm=max_norm, **kwargs)
    # illegal combinations
    reference, ours = nn.EmbeddingBag(10, 20, **kwargs), et.EmbeddingBag(10, 20, **kwargs)
    input = torch.ones(3, 4, dtype=index_dtype)
    offset = torch.arange(0, 3, dtype=offset_dtype)
    bad_first, bad_last = offset.clone(), offset.clone()
    bad_first[0], bad_last[-1] = 1, 100
    for args in ((input, offset), (input.view(-1),), (input.view(-1), bad_first), (input.view(-1), bad_last)):
        theirs, got = assert_same_error(lambda: reference(*args), lambda: ours(*args))
        assert str(got) == str(theirs)


@dtypes
@INDEX_DTYPES
@pytest.mark.parametrize("mode", ["sum", "mean", "max"])
def test_non_contiguous_weight(dtype, index_dtype, offset_dtype, mode):
    # test_embedding_bag_non_contiguous_weight
    weight = randn((3, 4), dtype, 0)[:, :3]
    assert not weight.is_contiguous()
    index = torch.tensor([0, 1, 2], dtype=index_dtype)
    offsets = torch.tensor([0, 2], dtype=offset_dtype)
    expected = F.embedding_bag(index, weight.contiguous(), offsets, mode=mode)
    assert identical(et.embedding_bag(index, weight, offsets, mode=mode), expected)
    check_bag(weight, index, offsets, mode=mode)


@pytest.mark.parametrize("weight_grad, psw_grad", [(True, True), (True, False), (False, True), (False, False)])
def test_per_sample_weights_grad(weight_grad, psw_grad):
    # test_embedding_bag_per_sample_weights_grad (added after 1.13). torch 1.13 fails the frozen-weight,
    # trainable-psw case with an INTERNAL ASSERT; we compute it (docs/divergences.md), checked against
    # torch's psw gradient with a trainable weight, which does not depend on the weight's.
    weight = randn((256, 256), torch.float32, 0)
    x = torch.arange(1, 5).expand(3, -1)
    w = torch.rand(3, 4, generator=torch.Generator().manual_seed(1))
    outputs, psw_grads = [], []
    for embedding_bag, needs_weight_grad in ((F.embedding_bag, weight_grad or psw_grad),
                                             (et.embedding_bag, weight_grad)):
        w_leaf = w.clone().requires_grad_(psw_grad)
        out = embedding_bag(x, weight.clone().requires_grad_(needs_weight_grad), mode="sum",
                            per_sample_weights=F.softmax(w_leaf, dim=-1))
        outputs.append(out)
        if psw_grad:
            out.sum().backward()
            psw_grads.append(w_leaf.grad)
    assert identical(outputs[1], outputs[0])
    assert outputs[1].requires_grad == (weight_grad or psw_grad)
    if psw_grad:
        assert identical(psw_grads[1], psw_grads[0])


# ---- OpInfo nn.functional.embedding_bag: sample_inputs_embedding_bag ----------------------------------

S, M = 5, 10  # common_methods_invocations' small and medium sizes
OFFSETS = [0, 3]


def _weight(shape, dtype, g, scale=1.0):
    # make_tensor's range for floats: uniform in [-9, 9)
    return ((torch.rand(shape, generator=g) * 18 - 9) * scale).to(dtype)


def _index(shape, high, g, noncontiguous=False):
    idx = torch.randint(0, high, shape, generator=g)
    if noncontiguous:  # make_tensor(noncontiguous=True): every other element of a longer tensor
        idx = torch.stack([idx, torch.zeros_like(idx)], -1)[..., 0]
    return idx


def embedding_bag_samples(mode, dtype, g):
    """(name, weight, input, kwargs) of sample_inputs_embedding_bag for one mode (psw added by the test)."""
    offsets = torch.tensor(OFFSETS)
    yield "1-d", _weight((M, S), dtype, g), _index((S,), M, g), dict(offsets=offsets)
    yield "1-d-noncontiguous", _weight((M, S), dtype, g), _index((S,), M, g, True), dict(offsets=offsets)
    yield "empty-bag", _weight((M, S), dtype, g), _index((S,), M, g, True), dict(offsets=torch.tensor([0, 0, 3]))
    yield "2-d", _weight((M, S), dtype, g), _index((S, S), M, g), {}
    yield "2-d-noncontiguous", _weight((M, S), dtype, g), _index((S, S), M, g, True), {}
    idx = _index((6,), S, g)
    idx[0] = idx[4] = 4
    yield "padding_idx=-1", _weight((S, S), dtype, g), idx, dict(padding_idx=-1, offsets=offsets)
    idx = _index((3, 3), S, g)
    idx[0, 0] = idx[1, 1] = 2
    yield "padding_idx=2", _weight((S, S), dtype, g), idx, dict(padding_idx=2)
    yield "include_last_offset", _weight((S, S), dtype, g), _index((6,), S, g), \
        dict(offsets=torch.tensor([0, 3, 6]), include_last_offset=True)
    yield "max_norm", _weight((S, S), dtype, g, 2), _index((2, 2), S, g), dict(max_norm=1.0)
    yield "max_norm-p1", _weight((S, S), dtype, g, 2), _index((6,), S, g), dict(max_norm=1.0, norm_type=1.0,
                                                                                 offsets=offsets)
    if mode != "max":
        idx = _index((2, 2), S, g)
        idx[0, 0] = idx[0, 1] = 1
        yield "scale_grad_by_freq", _weight((S, S), dtype, g), idx, dict(scale_grad_by_freq=True)
        yield "sparse", _weight((S, S), dtype, g), _index((6,), S, g), dict(sparse=True, offsets=offsets)
        idx = _index((6,), S, g)
        idx[0] = idx[1] = 1
        idx[3] = 0
        yield "sparse-freq-pad-max_norm", _weight((S, S), dtype, g, 2), idx, \
            dict(sparse=True, scale_grad_by_freq=True, padding_idx=0, max_norm=1.0, offsets=offsets)


SAMPLE_GROUPS = [("sum", True), ("sum", False), ("mean", False), ("max", False)]
BAG_SAMPLES = [(mode, psw, name) for mode, psw in SAMPLE_GROUPS
               for name, *_ in embedding_bag_samples(mode, torch.float32, torch.Generator().manual_seed(0))]


def bag_sample(mode, psw, name, dtype):
    g = torch.Generator().manual_seed(SAMPLE_GROUPS.index((mode, psw)))
    weight, input, kwargs = {n: rest for n, *rest in embedding_bag_samples(mode, dtype, g)}[name]
    kwargs = dict(kwargs, mode=mode)
    # the upstream gives no per_sample_weights to its include_last_offset sample
    per_sample_weights = randn(input.shape, dtype, 7) if psw and name != "include_last_offset" else None
    return weight, input, kwargs.pop("offsets", None), per_sample_weights, kwargs


@dtypes
@pytest.mark.parametrize("mode, psw, name", BAG_SAMPLES, ids=lambda v: {True: "psw", False: "-"}.get(v, v))
def test_opinfo_sample(dtype, mode, psw, name):
    weight, input, offsets, per_sample_weights, kwargs = bag_sample(mode, psw, name, dtype)
    if kwargs.get("sparse") and kwargs.get("scale_grad_by_freq"):
        # both refuse at backward, with the same error; the forward (and its renorm) is compared first
        expected = F.embedding_bag(input, weight.clone().requires_grad_(), offsets, per_sample_weights=per_sample_weights,
                                   **kwargs)
        w_ours = weight.clone().requires_grad_()
        got = et.embedding_bag(input, w_ours, offsets, per_sample_weights=per_sample_weights, **kwargs)
        plain = {k: v for k, v in kwargs.items() if k not in ("max_norm", "norm_type")}
        assert identical(got, F.embedding_bag(input, w_ours.detach(), offsets, per_sample_weights=per_sample_weights,
                                              **plain))
        theirs, ours = assert_same_error(lambda: expected.sum().backward(), lambda: got.sum().backward())
        assert str(ours) == str(theirs)
        return
    check_bag(weight, input, offsets, per_sample_weights, trainable_psw=per_sample_weights is not None, **kwargs)


@gradcheck_dtypes
@pytest.mark.parametrize("mode, psw, name", [s for s in BAG_SAMPLES if s[2] in (
    "1-d", "1-d-noncontiguous", "empty-bag", "2-d", "2-d-noncontiguous", "padding_idx=-1", "padding_idx=2",
    "include_last_offset")], ids=str)  # the samples OpInfo offers with requires_grad
def test_opinfo_gradcheck(dtype, mode, psw, name):
    # TestGradients.test_fn_grad on sample_inputs_embedding_bag (float64)
    weight, input, offsets, per_sample_weights, kwargs = bag_sample(mode, psw, name, dtype)
    inputs = (weight.requires_grad_(),) + (() if per_sample_weights is None else (per_sample_weights.requires_grad_(),))
    assert torch.autograd.gradcheck(
        lambda w, *p: et.embedding_bag(input, w, offsets, per_sample_weights=p[0] if p else None, **kwargs), inputs)


# ---- common_nn module_tests: EmbeddingBag (torch 1.13 has no ModuleInfo for it) ---------------------------


def module_tests(g):
    """(name, constructor kwargs, input) of common_nn's EmbeddingBag entries."""
    yield "EmbeddingBag_mean", {}, torch.randint(0, 4, (2, 3), generator=g)
    yield "EmbeddingBag_discontiguous", {}, torch.randint(0, 4, (1, 512), generator=g).expand(7, 512)
    yield "EmbeddingBag_sum", dict(mode="sum"), torch.randint(0, 4, (2, 3), generator=g)
    yield "EmbeddingBag_max", dict(mode="max"), torch.randint(0, 4, (2, 3), generator=g)
    for mode in ("mean", "sum", "max"):
        rows = torch.stack([torch.randperm(3, generator=g), torch.randperm(3, generator=g)])
        yield "EmbeddingBag_%s_padding_idx" % mode, dict(mode=mode, padding_idx=1), rows
    yield "EmbeddingBag_sparse", dict(sparse=True), torch.randperm(2, generator=g).repeat(1, 2)


MODULE_TESTS = [name for name, *_ in module_tests(torch.Generator().manual_seed(0))]


@dtypes
@pytest.mark.parametrize("case", MODULE_TESTS)
def test_module_test(dtype, case):
    # NewModuleTest: forward, backward, repr, with the table converted to the dtype
    kwargs, input = {n: rest for n, *rest in module_tests(torch.Generator().manual_seed(0))}[case]
    torch.manual_seed(1)
    reference = nn.EmbeddingBag(4, 3, **kwargs).to(dtype)
    torch.manual_seed(1)
    ours = et.EmbeddingBag(4, 3, **kwargs).to(dtype)
    assert identical(ours.weight, reference.weight) and repr(ours) == repr(reference)
    expected, got = reference(input), ours(input)
    assert identical(got, expected)
    check_bag(reference.weight, input, **kwargs)


@gradcheck_dtypes
@pytest.mark.parametrize("case", [c for c in MODULE_TESTS if c != "EmbeddingBag_sparse"])
def test_module_gradcheck(dtype, case):
    # NewModuleTest's jacobian check (gradcheck has no sparse gradients)
    kwargs, input = {n: rest for n, *rest in module_tests(torch.Generator().manual_seed(0))}[case]
    module = et.EmbeddingBag(4, 3, dtype=dtype, **kwargs)
    assert torch.autograd.gradcheck(lambda w: et.embedding_bag(input, w, **{**kwargs, "mode": module.mode}),
                                    (module.weight,))
