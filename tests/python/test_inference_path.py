"""Lookups with nothing to differentiate skip autograd (no_grad, a frozen table, a plain tensor):
the drop-in must still return torch's values with torch's autograd attributes, and a lookup that
needs a gradient must still record its node. Tensors also take the functional fast path, which
must give the same results as the general one."""

import pytest
import torch
import torch.nn.functional as F

import embedding_native as en
from embedding_native import torch as ent


def _table():
    return torch.randn(10, 5, generator=torch.Generator().manual_seed(3))


@pytest.mark.parametrize("indices", [torch.tensor([1, 2, 4]), torch.tensor([[0, 9], [3, 3]], dtype=torch.int32),
                                     torch.tensor(7), torch.tensor([], dtype=torch.int64)])
def test_no_grad_and_frozen_lookups_match_torch_without_a_node(indices):
    weight = _table().requires_grad_()
    with torch.no_grad():
        ours, theirs = ent.embedding(indices, weight), F.embedding(indices, weight)
    assert torch.equal(ours, theirs) and ours.shape == theirs.shape
    assert not ours.requires_grad and ours.grad_fn is None
    frozen = _table()
    ours, theirs = ent.embedding(indices, frozen), F.embedding(indices, frozen)
    assert torch.equal(ours, theirs) and not ours.requires_grad and ours.grad_fn is None
    module = ent.Embedding.from_pretrained(frozen)
    assert torch.equal(module(indices), F.embedding(indices, frozen))


def test_a_lookup_that_needs_a_gradient_still_records_it():
    weight = _table().requires_grad_()
    out = ent.embedding(torch.tensor([1, 1, 4]), weight)
    assert out.requires_grad and out.grad_fn is not None
    out.sum().backward()
    assert weight.grad[1].eq(2).all() and weight.grad[4].eq(1).all() and weight.grad[0].eq(0).all()


def test_errors_on_the_inference_path_are_torch_s():
    with torch.no_grad():
        with pytest.raises(IndexError):
            ent.embedding(torch.tensor([10]), _table())
        with pytest.raises(RuntimeError):
            ent.embedding(torch.tensor([1.0]), _table())
        with pytest.raises(NotImplementedError):
            ent.embedding(torch.tensor([1]), _table().to(torch.int64))


@pytest.mark.parametrize("dtype", [torch.float64, torch.float16, torch.bfloat16])
def test_inference_and_training_take_every_float_type(dtype):
    weight = _table().to(dtype)
    with torch.no_grad():
        assert torch.equal(ent.embedding(torch.tensor([1, 4]), weight), F.embedding(torch.tensor([1, 4]), weight))
    out = ent.embedding(torch.tensor([1, 1]), weight.requires_grad_())
    assert out.grad_fn is not None
    out.sum().backward()
    assert weight.grad.dtype == dtype and weight.grad[1].eq(2).all()


@pytest.mark.parametrize("dtype", [torch.int32, torch.int64])
def test_tensor_fast_path_matches_the_general_path(dtype):
    weight = _table()
    indices = torch.tensor([[3, 1], [0, 9]], dtype=dtype)
    fast = en.embedding(indices, weight)
    general = en.embedding(indices, weight, padding_idx=0)  # any option takes the general path
    assert isinstance(fast, torch.Tensor) and fast.dtype == torch.float32 and fast.shape == (2, 2, 5)
    assert torch.equal(fast, general) and torch.equal(fast, F.embedding(indices, weight))
    strided = torch.tensor([3, 0, 1, 0, 9], dtype=dtype)[::2]  # not contiguous: the general path
    assert torch.equal(en.embedding(strided, weight), F.embedding(strided, weight))
