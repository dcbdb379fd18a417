"""Double backward through the torch drop-ins, against torch 1.13.

torch's rules (derivatives.yaml and the ops it composes): Embedding's weight gradient, dense or
sparse, is differentiable again, its derivative with respect to grad_output being the gather of
the incoming rows with padding positions zeroed (embedding_dense_double_backward, which ignores
scale_grad_by_freq). EmbeddingBag's sparse weight gradient (sum, mean) is built from
differentiable ops: its derivative is the bag of the incoming rows, and with per_sample_weights
a dot product per position. The dense bag gradient (every mode, max included) and the
per_sample_weights gradient have no derivative in torch 1.13: differentiating them raises
torch's RuntimeError, and ours raises the same.
"""

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.autograd import gradcheck, gradgradcheck

import embedding_native.torch as et
from helpers import assert_same_error, identical, within_bag_bound

INDICES = torch.tensor([[0, 2, 2], [4, 1, 0]])
BAG_INPUT = torch.tensor([0, 2, 2, 4, 1, 0, 5])
BAG_OFFSETS = torch.tensor([0, 3, 3, 5])  # an empty bag, a repeated row
EMBEDDING_CASES = [dict(padding_idx=p, scale_grad_by_freq=s, sparse=sp)
                   for p in (None, 2) for s in (False, True) for sp in (False, True) if not (s and sp)]
SPARSE_BAG_CASES = [dict(mode="sum"), dict(mode="sum", padding_idx=2), dict(mode="mean"),
                    dict(mode="mean", padding_idx=2), dict(mode="sum", psw=True),
                    dict(mode="sum", psw=True, padding_idx=2)]
DENSE_BAG_CASES = [dict(mode=m, padding_idx=p) for m in ("sum", "mean", "max") for p in (None, 2)] + [
    dict(mode="sum", psw=True), dict(mode="sum", scale_grad_by_freq=True), dict(mode="mean", padding_idx=2,
                                                                                  scale_grad_by_freq=True)]


def _dense(tensor):
    return tensor.to_dense() if tensor.is_sparse else tensor


def _weight(dtype=torch.float64, seed=0):
    return torch.randn(6, 3, dtype=dtype, generator=torch.Generator().manual_seed(seed)).requires_grad_()


def _bag(library, weight, case, psw=None):
    kwargs = {k: v for k, v in case.items() if k != "psw"}
    return library.embedding_bag(BAG_INPUT, weight, BAG_OFFSETS, per_sample_weights=psw, **kwargs)


# ---- Embedding -----------------------------------------------------------------------------------


def test_gradcheck_and_gradgradcheck_float64():
    # test_embedding_dense_grad (torch's test_nn), both halves.
    weight = _weight()
    assert gradcheck(lambda w: et.embedding(INDICES, w), (weight,))
    assert gradgradcheck(lambda w: et.embedding(INDICES, w), (weight,))


def test_gradgradcheck_with_padding_float64():
    # The first gradient is not the finite difference (the padding row gets none), so gradcheck
    # fails, for torch too; the second derivative is consistent with the first and passes.
    weight = _weight()
    for library in (F, et):
        assert gradgradcheck(lambda w: library.embedding(INDICES, w, padding_idx=2), (weight,))


@pytest.mark.parametrize("case", EMBEDDING_CASES, ids=str)
def test_gradcheck_outcomes_are_torchs(case):
    # Pass or fail, and why, as for torch: padding and scale_grad_by_freq make the first gradient
    # differ from the finite differences, a sparse gradient is not gradcheck's layout.
    def outcome(library, check):
        try:
            return check(lambda w: library.embedding(INDICES, w, **case), (_weight(),))
        except Exception as e:  # noqa: BLE001 - the outcome is compared
            # The first built-in class: our exception classes subclass torch's types.
            return next(c.__name__ for c in type(e).__mro__ if c.__module__ in ("builtins", "torch.autograd.gradcheck"))
    for check in (gradcheck, gradgradcheck):
        assert outcome(et, check) == outcome(F, check)


@pytest.mark.parametrize("case", [c for c in EMBEDDING_CASES if c["sparse"]], ids=str)
def test_sparse_gradient_is_differentiable_float64(case):
    # gradcheck cannot take a sparse output: the sparse gradient, densified, as a function of
    # grad_output (its derivative is the double backward).
    grad_output = torch.randn(2, 3, 3, dtype=torch.float64, requires_grad=True)

    def gradient(library):
        def of(go):
            weight = _weight()
            out = library.embedding(INDICES, weight, **case)
            return torch.autograd.grad(out, weight, go, create_graph=True)[0].to_dense()
        return of
    for library in (F, et):
        assert gradcheck(gradient(library), (grad_output,))
    # A third derivative (with respect to the incoming gradient): torch's RuntimeError.
    theirs, ours = assert_same_error(lambda: gradgradcheck(gradient(F), (grad_output,)),
                                     lambda: gradgradcheck(gradient(et), (grad_output,)))
    assert str(ours) == str(theirs) == "derivative for aten::_sparse_mask_helper is not implemented"


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.float16, torch.bfloat16], ids=str)
@pytest.mark.parametrize("case", EMBEDDING_CASES, ids=str)
def test_double_backward_is_torchs_bit_for_bit(case, dtype):
    # The derivative with respect to grad_output of <gradient, gg>: the rows of gg, zero at padding
    # positions, and scale_grad_by_freq ignored as torch ignores it. Then a third derivative,
    # with respect to gg: the gather's (dense), torch's RuntimeError (sparse: the values backward
    # of sparse_coo_tensor, _sparse_mask_helper, has no derivative).
    results = []
    third_derivatives = []
    for library in (F, et):
        weight = _weight(dtype)
        grad_output = torch.randn(2, 3, 3, generator=torch.Generator().manual_seed(1)).to(dtype).requires_grad_()
        gg = torch.randn(6, 3, generator=torch.Generator().manual_seed(2)).to(dtype).requires_grad_()
        out = library.embedding(INDICES, weight, **case)
        (grad,) = torch.autograd.grad(out, weight, grad_output, create_graph=True)
        assert grad.requires_grad
        (grad_grad_output,) = torch.autograd.grad((_dense(grad) * gg).sum(), grad_output, create_graph=True)
        results.append((grad, grad_grad_output))
        third_derivatives.append(lambda ggo=grad_grad_output, gg=gg: torch.autograd.grad(ggo.pow(2).sum(), gg))
    for theirs, ours in zip(*results):
        assert identical(ours, theirs)
    if case["sparse"]:
        theirs, ours = assert_same_error(*third_derivatives)
        assert str(ours) == str(theirs)
    else:
        assert identical(third_derivatives[1]()[0], third_derivatives[0]()[0])


def test_scale_grad_by_freq_with_sparse_fails_at_backward_like_torch():
    weight = _weight()
    assert_same_error(lambda: F.embedding(INDICES, weight, scale_grad_by_freq=True, sparse=True).sum().backward(),
                      lambda: et.embedding(INDICES, weight, scale_grad_by_freq=True, sparse=True).sum().backward())


# ---- EmbeddingBag ----------------------------------------------------------------------------------


@pytest.mark.parametrize("case", SPARSE_BAG_CASES, ids=str)
def test_sparse_bag_gradient_is_differentiable_float64(case):
    # The sparse weight gradient, densified, as a function of grad_output (and per_sample_weights).
    inputs = [torch.randn(4, 3, dtype=torch.float64, requires_grad=True)]
    if case.get("psw"):
        inputs.append(torch.randn(7, dtype=torch.float64, requires_grad=True))

    def gradient(library):
        def of(go, psw=None):
            weight = _weight()
            out = _bag(library, weight, dict(case, sparse=True), psw)
            return torch.autograd.grad(out, weight, go, create_graph=True)[0].to_dense()
        return of
    for library in (F, et):
        assert gradcheck(gradient(library), inputs)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=str)
@pytest.mark.parametrize("case", SPARSE_BAG_CASES, ids=str)
def test_sparse_bag_double_backward_matches_torch(case, dtype):
    # With respect to grad_output: the bag of gg's rows, the native bag forward. Bit for bit for
    # sum without weights and wherever a bag has one term; otherwise torch rounds each term (the
    # weight product, the division by the bag size) before adding, and ours is the forward's
    # FMA / sum-then-divide: within the bag bound (docs/divergences.md). With respect to
    # per_sample_weights: the per_sample_weights backward with gg as the table (same bound).
    results = []
    for library in (F, et):
        weight = _weight(dtype)
        grad_output = torch.randn(4, 3, generator=torch.Generator().manual_seed(1)).to(dtype).requires_grad_()
        psw = torch.randn(7, generator=torch.Generator().manual_seed(3)).to(dtype).requires_grad_() \
            if case.get("psw") else None
        gg = torch.randn(6, 3, generator=torch.Generator().manual_seed(2)).to(dtype)
        out = _bag(library, weight, dict(case, sparse=True), psw)
        (grad,) = torch.autograd.grad(out, weight, grad_output, create_graph=True)
        assert grad.is_sparse and grad.requires_grad
        wrt = [grad_output] + ([psw] if psw is not None else [])
        results.append(torch.autograd.grad((grad.to_dense() * gg).sum(), wrt))
    magnitudes = [_bag(F, gg.abs(), case, None if psw is None else psw.detach().abs()),
                  gg.abs()[BAG_INPUT].mul(grad_output.detach().abs()[torch.tensor([0, 0, 0, 2, 2, 3, 3])]).sum(1)]
    for theirs, ours, magnitude in zip(*results, magnitudes):
        ok, worst = within_bag_bound(ours, theirs, magnitude)
        assert ok, worst
    if case == dict(mode="sum") or case == dict(mode="sum", padding_idx=2):
        assert identical(results[1][0], results[0][0])


@pytest.mark.parametrize("case", DENSE_BAG_CASES, ids=str)
def test_dense_bag_double_backward_raises_torchs_error(case):
    # torch 1.13: "derivative for _embedding_bag_dense_backward is not implemented" (RuntimeError),
    # when the second derivative is taken, not when the graph is built.
    def second(library):
        weight = _weight()
        psw = torch.randn(7, dtype=torch.float64, requires_grad=True) if case.get("psw") else None
        grad_output = torch.randn(4, 3, dtype=torch.float64, requires_grad=True)
        (grad,) = torch.autograd.grad(_bag(library, weight, case, psw), weight, grad_output, create_graph=True)
        assert grad.requires_grad
        return lambda: grad.sum().backward()
    theirs, ours = assert_same_error(second(F), second(et))
    assert str(ours) == str(theirs) == "derivative for _embedding_bag_dense_backward is not implemented"


@pytest.mark.parametrize("sparse", [False, True])
def test_per_sample_weights_gradient_double_backward_raises_torchs_error(sparse):
    def second(library):
        weight = _weight()
        psw = torch.randn(7, dtype=torch.float64, requires_grad=True)
        grad_output = torch.randn(4, 3, dtype=torch.float64, requires_grad=True)
        out = _bag(library, weight, dict(mode="sum", sparse=sparse), psw)
        (grad,) = torch.autograd.grad(out, psw, grad_output, create_graph=True)
        assert grad.requires_grad
        return lambda: grad.sum().backward()
    theirs, ours = assert_same_error(second(F), second(et))
    assert str(ours) == str(theirs)


def test_bag_double_backward_without_a_graph_is_a_constant_like_torch():
    # A constant grad_output and a frozen per_sample_weights: the max gradient is a constant
    # (no graph), as torch's.
    for library in (F, et):
        weight = _weight()
        out = _bag(library, weight, dict(mode="max"))
        (grad,) = torch.autograd.grad(out, weight, torch.ones(4, 3, dtype=torch.float64), create_graph=True)
        assert not grad.requires_grad and grad.grad_fn is None


# ---- a second-order use: a gradient penalty ---------------------------------------------------------


def _train_with_gradient_penalty(model, embedding, batches, steps=3):
    """SGD on loss + 0.1·|∂loss/∂weight|², the penalty differentiated through the embedding's
    backward (a double backward)."""
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05)
    history = []
    for step in range(steps):
        for inputs in batches:
            optimizer.zero_grad()
            loss = model(*inputs).tanh().pow(2).sum()
            (grad,) = torch.autograd.grad(loss, embedding.weight, create_graph=True)
            total = loss + 0.1 * _dense(grad).pow(2).sum()
            total.backward()
            history.append(total.detach().clone())
            optimizer.step()
    return history


@pytest.mark.parametrize("kwargs", [dict(), dict(padding_idx=1), dict(scale_grad_by_freq=True),
                                    dict(sparse=True), dict(sparse=True, padding_idx=0)], ids=str)
def test_gradient_penalty_training_matches_torch_bit_for_bit(kwargs):
    def run(module_type):
        torch.manual_seed(5)
        embedding = module_type(12, 4, **kwargs)
        model = nn.Sequential(embedding, nn.Linear(4, 2))
        batches = [(torch.randint(0, 12, (3, 5), generator=torch.Generator().manual_seed(s)),) for s in range(3)]
        history = _train_with_gradient_penalty(model, embedding, batches)
        return history, list(model.parameters())
    (their_losses, their_params), (our_losses, our_params) = run(nn.Embedding), run(et.Embedding)
    for theirs, ours in zip(their_losses + their_params, our_losses + our_params):
        assert identical(ours, theirs)


class _BagModel(nn.Module):
    def __init__(self, bag):
        super().__init__()
        self.bag = bag
        self.linear = nn.Linear(4, 2)

    def forward(self, input, offsets):
        return self.linear(self.bag(input, offsets))


def test_gradient_penalty_training_with_a_sparse_bag_matches_torch_bit_for_bit():
    # sum mode, sparse gradient: the one bag configuration torch differentiates twice whose
    # numbers are the native forward's exactly (no per-term rounding in between).
    def run(module_type):
        torch.manual_seed(5)
        bag = module_type(12, 4, mode="sum", sparse=True, padding_idx=3)
        model = _BagModel(bag)
        batches = [(torch.randint(0, 12, (9,), generator=torch.Generator().manual_seed(s)), torch.tensor([0, 2, 2, 7]))
                   for s in range(3)]
        history = _train_with_gradient_penalty(model, bag, batches)
        return history, list(model.parameters())
    (their_losses, their_params), (our_losses, our_params) = run(nn.EmbeddingBag), run(et.EmbeddingBag)
    for theirs, ours in zip(their_losses + their_params, our_losses + our_params):
        assert identical(ours, theirs)
