"""embedding_native.torch: Embedding and embedding() as drop-ins for torch.nn.Embedding / F.embedding."""

import subprocess
import sys

import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

import embedding_native as en
import embedding_native.torch as et
from conftest import PACKAGE_PARENT
from helpers import assert_same_error, bits, raised


def pair(num_embeddings=11, embedding_dim=7, seed=0, **kwargs):
    """(torch.nn.Embedding, ours) with identical weights."""
    torch.manual_seed(seed)
    reference = nn.Embedding(num_embeddings, embedding_dim, **kwargs)
    ours = et.Embedding(num_embeddings, embedding_dim, _weight=reference.weight.detach().clone(), **kwargs)
    return reference, ours


def grads_equal(a, b):
    if a.is_sparse:
        assert b.is_sparse and a.shape == b.shape and a.is_coalesced() == b.is_coalesced()
        assert torch.equal(a._indices(), b._indices())
        assert a._values().shape == b._values().shape and a._values().dtype == b._values().dtype
        return np.array_equal(bits(a._values()), bits(b._values()))
    return a.dtype == b.dtype and np.array_equal(bits(a), bits(b))


# ---- import and construction ------------------------------------------------------------------------


def test_package_does_not_import_torch_and_never_binds_it():
    code = ("import sys; sys.path.insert(0, %r); import embedding_native as en; "
            "assert 'torch' not in sys.modules; assert not hasattr(en, 'torch'); "
            "import embedding_native.torch as et; import torch; "
            "assert en.torch is et and en.torch is not torch and et.Embedding.__module__ == 'embedding_native.torch'"
            % str(PACKAGE_PARENT))
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.parametrize("kwargs", [dict(), dict(padding_idx=1), dict(padding_idx=-1), dict(padding_idx=0)], ids=str)
def test_init_consumes_the_rng_like_torch(kwargs):
    torch.manual_seed(5)
    reference = nn.Embedding(6, 4, **kwargs)
    after_reference = torch.rand(1)
    torch.manual_seed(5)
    ours = et.Embedding(6, 4, **kwargs)
    assert torch.equal(torch.rand(1), after_reference)
    assert torch.equal(ours.weight, reference.weight) and isinstance(ours.weight, nn.Parameter)
    assert ours.weight.requires_grad
    ours.weight.data.fill_(3.0)
    torch.manual_seed(1)
    reference.reset_parameters()
    torch.manual_seed(1)
    ours.reset_parameters()
    assert torch.equal(ours.weight, reference.weight)


REPR_CASES = [dict(), dict(padding_idx=0), dict(padding_idx=-1), dict(norm_type=1.0), dict(norm_type=2),
              dict(max_norm=1.0), dict(scale_grad_by_freq=True), dict(sparse=True),
              dict(padding_idx=0, max_norm=1.0, norm_type=1.0, scale_grad_by_freq=True, sparse=True)]


@pytest.mark.parametrize("kwargs", REPR_CASES, ids=str)
def test_repr_and_attributes(kwargs):
    reference, ours = pair(4, 3, **kwargs)
    assert repr(ours) == repr(reference) and ours.extra_repr() == reference.extra_repr()
    for name in ("num_embeddings", "embedding_dim", "padding_idx", "max_norm", "norm_type", "scale_grad_by_freq",
                 "sparse"):
        assert getattr(ours, name) == getattr(reference, name), name


def test_state_dict_round_trip_both_ways():
    reference, ours = pair(8, 5, padding_idx=2)
    assert list(ours.state_dict()) == list(reference.state_dict()) == ["weight"]
    fresh_torch = nn.Embedding(8, 5)
    fresh_torch.load_state_dict(ours.state_dict())
    assert torch.equal(fresh_torch.weight, ours.weight)
    fresh_ours = et.Embedding(8, 5)
    fresh_ours.load_state_dict(reference.state_dict())
    assert torch.equal(fresh_ours.weight, reference.weight)
    model = nn.Sequential(nn.Embedding(8, 5), nn.Linear(5, 2))
    model_ours = nn.Sequential(et.Embedding(8, 5), nn.Linear(5, 2))
    model_ours.load_state_dict(model.state_dict())
    x = torch.tensor([[1, 2, 7]])
    assert torch.equal(model_ours(x), model(x))


def test_from_pretrained():
    w = torch.randn(6, 3)
    frozen = et.Embedding.from_pretrained(w)
    assert frozen.weight.data_ptr() == w.data_ptr() and not frozen.weight.requires_grad
    trainable = et.Embedding.from_pretrained(w, freeze=False, padding_idx=-1, max_norm=2.0, sparse=True)
    assert trainable.weight.requires_grad and trainable.padding_idx == 5
    assert torch.equal(trainable.weight[5], w[5])  # not zeroed
    assert repr(trainable) == repr(nn.Embedding.from_pretrained(w, freeze=False, padding_idx=-1, max_norm=2.0,
                                                               sparse=True))
    out = frozen(torch.tensor([[0, 5]]))
    assert not out.requires_grad and torch.equal(out, w[torch.tensor([[0, 5]])])
    # storage shared: renorm through the module changes the caller's tensor
    w2 = torch.tensor([[3.0, 4.0]])
    et.Embedding.from_pretrained(w2, max_norm=1.0)(torch.tensor([0]))
    assert w2.tolist() == [[0.6000000238418579, 0.800000011920929]]


# ---- forward and backward --------------------------------------------------------------------------


SHAPES = [(), (0,), (5,), (3, 4), (2, 3, 2), (0, 3)]


@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("index_dtype", [torch.int64, torch.int32], ids=str)
@pytest.mark.parametrize("kwargs", [dict(), dict(padding_idx=3), dict(scale_grad_by_freq=True),
                                    dict(padding_idx=-1, scale_grad_by_freq=True), dict(sparse=True),
                                    dict(sparse=True, padding_idx=0)], ids=str)
def test_forward_backward_parity(shape, index_dtype, kwargs):
    if shape == () and kwargs.get("sparse") and "padding_idx" in kwargs:
        pytest.skip("torch 1.13 fails here (masking a 0-d index); see test_backward")
    reference, ours = pair(**kwargs)
    idx = torch.randint(0, 11, shape, dtype=index_dtype, generator=torch.Generator().manual_seed(1))
    if idx.numel():
        idx.view(-1)[0] = 3
    expected, got = reference(idx), ours(idx)
    assert got.shape == expected.shape and got.requires_grad and np.array_equal(bits(got), bits(expected))
    upstream = torch.randn(expected.shape, generator=torch.Generator().manual_seed(2))
    expected.backward(upstream)
    got.backward(upstream)
    assert grads_equal(reference.weight.grad, ours.weight.grad)


def test_sparse_gradient_layouts():
    for V, D, idx in [(4, 3, torch.tensor([[0, 2, 2], [1, 2, 0]])), (4, 3, torch.tensor(2)),
                      (4, 3, torch.tensor([], dtype=torch.int64)), (4, 3, torch.tensor([1, 1, 1])),
                      (0, 0, torch.tensor([], dtype=torch.int64)), (10, 0, torch.tensor([1, 2]))]:
        for padding_idx in (None, 1):
            if V == 0 and padding_idx is not None or idx.dim() == 0 and padding_idx is not None:
                continue
            reference, ours = pair(V, D, sparse=True, padding_idx=padding_idx)
            reference(idx).sum().backward()
            ours(idx).sum().backward()
            assert grads_equal(reference.weight.grad, ours.weight.grad), (V, D, idx, padding_idx)


def test_gradients_accumulate_over_calls():
    for sparse in (False, True):
        reference, ours = pair(sparse=sparse)
        for idx in (torch.tensor([1, 2]), torch.tensor([2, 3])):
            reference(idx).sum().backward()
            ours(idx).sum().backward()
        assert grads_equal(reference.weight.grad, ours.weight.grad)  # sparse: concatenated, uncoalesced


def test_non_contiguous_grad_output_and_input():
    reference, ours = pair(padding_idx=4)
    idx = torch.tensor([[1, 4, 4], [2, 9, 1]]).t()  # non-contiguous input
    upstream = torch.randn(7, 3, 2).permute(1, 2, 0)  # non-contiguous grad_output, shape (3, 2, 7)
    reference(idx).backward(upstream)
    ours(idx).backward(upstream)
    assert grads_equal(reference.weight.grad, ours.weight.grad)
    reference, ours = pair()
    reference(idx).sum().backward()  # expanded (stride 0) grad_output
    ours(idx).sum().backward()
    assert grads_equal(reference.weight.grad, ours.weight.grad)


def test_functional_matches_F_embedding():
    w = torch.randn(9, 4) * 3
    w_ours = w.clone().requires_grad_()
    w_ref = w.clone().requires_grad_()
    idx = torch.tensor([[0, 8, 8], [3, 0, 5]])
    for kwargs in (dict(), dict(padding_idx=-1, scale_grad_by_freq=True), dict(max_norm=2.0, norm_type=1.0)):
        got = et.embedding(idx, w_ours, **kwargs)
        expected = F.embedding(idx, w_ref, **kwargs)
        np.testing.assert_allclose(got.detach().numpy(), expected.detach().numpy(), rtol=2.4e-7, atol=0)
        got.pow(2).sum().backward()
        expected.pow(2).sum().backward()
        np.testing.assert_allclose(w_ours.grad.numpy(), w_ref.grad.numpy(), rtol=1e-6, atol=0)
        w_ours.grad = w_ref.grad = None


def test_max_norm_renorms_in_place_and_gradient_is_a_count_scatter():
    reference, ours = pair(5, 4, max_norm=1.0)
    with torch.no_grad():
        reference.weight.mul_(3)
        ours.weight.mul_(3)
    idx = torch.tensor([0, 1, 2, 2])
    version = ours.weight._version
    got, expected = ours(idx), reference(idx)
    assert ours.weight._version > version
    np.testing.assert_allclose(got.detach().numpy(), expected.detach().numpy(), rtol=2.4e-7, atol=0)
    np.testing.assert_allclose(ours.weight.detach().numpy(), reference.weight.detach().numpy(), rtol=2.4e-7, atol=0)
    got.sum().backward()
    expected.sum().backward()
    assert ours.weight.grad[:, 0].tolist() == [1, 1, 2, 0, 0] and grads_equal(reference.weight.grad, ours.weight.grad)


def test_max_norm_inplace_error_like_torch():
    # The docs example without .clone(): torch raises "modified by an inplace operation"; so do we.
    for module in (nn.Embedding(3, 5, max_norm=True), et.Embedding(3, 5, max_norm=True)):
        W = torch.randn((7, 5), requires_grad=True)
        a = module.weight @ W.t()
        b = module(torch.tensor([1, 2])) @ W.t()
        e = raised(lambda: (a.unsqueeze(0) + b.unsqueeze(1)).sigmoid().prod().backward())
        assert isinstance(e, RuntimeError) and "modified by an inplace operation" in str(e)
        a = module.weight.clone() @ W.t()  # with the clone it works
        b = module(torch.tensor([1, 2])) @ W.t()
        (a.unsqueeze(0) + b.unsqueeze(1)).sigmoid().prod().backward()


def test_frozen_weight_gets_no_grad():
    w = torch.randn(5, 3)
    module = et.Embedding.from_pretrained(w)
    x = torch.randn(3, requires_grad=True)
    (module(torch.tensor([1, 2])) * x).sum().backward()
    assert module.weight.grad is None and x.grad is not None


def test_double_backward_is_torchs():
    # The gradient is differentiable again, as torch's (test_double_backward.py has the cases).
    grads = []
    for module_type in (torch.nn.Embedding, et.Embedding):
        torch.manual_seed(0)
        module = module_type(4, 3)
        out = module(torch.tensor([1, 2, 1]))
        (grad,) = torch.autograd.grad(out.pow(2).sum(), module.weight, create_graph=True)
        grad.pow(2).sum().backward()
        grads.append(module.weight.grad)
    assert torch.equal(grads[1], grads[0])


def test_finite_difference_gradient_float32():
    # float64 is not supported natively, so gradcheck's float64 path cannot run: central
    # differences in float32 on loss = sum(out * c). Step 1e-2; the loss is linear in the
    # weight, so the error is the rounding of the float32 loss only: tolerance atol 1e-3
    # (measured max 3.4e-5).
    torch.manual_seed(3)
    module = et.Embedding(6, 4, padding_idx=2, scale_grad_by_freq=True)
    idx = torch.tensor([[0, 2, 5, 5], [1, 0, 0, 3]])
    c = torch.randn(2, 4, 4)
    (module(idx) * c).sum().backward()
    numeric = torch.zeros(6, 4)
    h = 1e-2
    with torch.no_grad():
        for r in range(6):
            for d in range(4):
                module.weight[r, d] += h
                up = (module(idx) * c).sum()
                module.weight[r, d] -= 2 * h
                down = (module(idx) * c).sum()
                module.weight[r, d] += h
                numeric[r, d] = (up - down) / (2 * h)
    # scale_grad_by_freq is not a derivative: undo it to compare with finite differences.
    counts = torch.bincount(idx.reshape(-1), minlength=6).clamp(min=1).float()
    analytic = module.weight.grad * counts[:, None]
    analytic[2] = numeric[2]  # the padding row's true derivative is not 0; its gradient is by definition
    assert (analytic - numeric).abs().max().item() < 1e-3
    assert torch.equal(module.weight.grad[2], torch.zeros(4))


# ---- with torch.optim ------------------------------------------------------------------------------


@pytest.mark.parametrize("make_optimizer", [lambda p: torch.optim.SGD(p, lr=0.5),
                                            lambda p: torch.optim.SparseAdam(p, lr=0.1),
                                            lambda p: torch.optim.Adagrad(p, lr=0.1)],
                         ids=["SGD", "SparseAdam", "Adagrad"])
def test_sparse_grads_accepted_by_torch_optimizers(make_optimizer):
    reference, ours = pair(sparse=True, padding_idx=0)
    opt_ref, opt_ours = make_optimizer(reference.parameters()), make_optimizer(ours.parameters())
    for seed in range(3):
        idx = torch.randint(0, 11, (4, 5), generator=torch.Generator().manual_seed(seed))
        for module, opt in ((reference, opt_ref), (ours, opt_ours)):
            opt.zero_grad()
            module(idx).pow(2).sum().backward()
            opt.step()
        assert torch.equal(ours.weight, reference.weight)  # same gradient, same torch optimizer


# ---- errors --------------------------------------------------------------------------------------------


def test_constructor_errors_match_torch():
    assert_same_error(lambda: nn.Embedding(4, 3, padding_idx=4), lambda: et.Embedding(4, 3, padding_idx=4))
    assert_same_error(lambda: nn.Embedding(4, 3, padding_idx=-5), lambda: et.Embedding(4, 3, padding_idx=-5))
    assert isinstance(raised(lambda: et.Embedding(4, 3, padding_idx=4)), en.PaddingIndexError)
    assert_same_error(lambda: nn.Embedding(-1, 3), lambda: et.Embedding(-1, 3))
    assert_same_error(lambda: nn.Embedding(0, 3, padding_idx=0), lambda: et.Embedding(0, 3, padding_idx=0))
    assert_same_error(lambda: nn.Embedding(4, 3, padding_idx=1.0), lambda: et.Embedding(4, 3, padding_idx=1.0))
    assert_same_error(lambda: nn.Embedding(5, 3, _weight=torch.zeros(4, 3)),
                      lambda: et.Embedding(5, 3, _weight=torch.zeros(4, 3)))
    assert_same_error(lambda: nn.Embedding(4, 3, dtype=torch.int64), lambda: et.Embedding(4, 3, dtype=torch.int64))
    assert_same_error(lambda: nn.Embedding.from_pretrained(torch.zeros(3)),
                      lambda: et.Embedding.from_pretrained(torch.zeros(3)))
    assert_same_error(lambda: nn.Embedding.from_pretrained(torch.tensor([[1, 2]])),
                      lambda: et.Embedding.from_pretrained(torch.tensor([[1, 2]])))
    for dtype in (torch.float64, torch.float16, torch.bfloat16):  # every float type: test_table_types.py trains them
        assert et.Embedding(4, 3, dtype=dtype).weight.dtype == dtype
        assert et.Embedding.from_pretrained(torch.zeros(4, 3, dtype=dtype)).weight.dtype == dtype


def test_forward_errors_match_torch():
    reference, ours = pair(4, 3)
    for idx in (torch.tensor([4]), torch.tensor([[0, -1]]), torch.tensor(7)):
        assert_same_error(lambda: reference(idx), lambda: ours(idx), same_message=True)
    for idx in (torch.tensor([1.0]), torch.tensor([1], dtype=torch.int16)):
        theirs, got = assert_same_error(lambda: reference(idx), lambda: ours(idx))
        assert str(got) == str(theirs)
    reference, ours = pair(4, 3, max_norm=1.0)
    assert_same_error(lambda: reference(torch.tensor([9])), lambda: ours(torch.tensor([9])), same_message=False)
    assert_same_error(lambda: F.embedding(torch.tensor([0]), torch.zeros(3)),
                      lambda: et.embedding(torch.tensor([0]), torch.zeros(3)))
    assert_same_error(lambda: F.embedding(torch.tensor([0]), torch.zeros(3), padding_idx=1),
                      lambda: et.embedding(torch.tensor([0]), torch.zeros(3), padding_idx=1))
    assert_same_error(lambda: F.embedding(torch.tensor([0]), torch.zeros(2, 3), padding_idx=2),
                      lambda: et.embedding(torch.tensor([0]), torch.zeros(2, 3), padding_idx=2))
    ours = et.Embedding(4, 3).double()  # converted later: trained as float64
    assert ours(torch.tensor([1])).dtype == torch.float64
    ours = et.Embedding(4, 3)
    ours.weight = torch.nn.Parameter(ours.weight.detach().to(torch.int32), requires_grad=False)
    assert isinstance(raised(lambda: ours(torch.tensor([1]))), en.EmbeddingNotSupportedError)


def test_sparse_scale_grad_by_freq_raises_at_backward():
    reference, ours = pair(sparse=True, scale_grad_by_freq=True)
    idx = torch.tensor([1, 1, 2])
    expected, got = reference(idx), ours(idx)  # the forward succeeds in both
    theirs, e = assert_same_error(lambda: expected.sum().backward(), lambda: got.sum().backward())
    assert str(e) == str(theirs) == "embedding_backward: scale_grad_by_freq not supported with sparse gradients"
