"""EmbeddingBag modules: embedding_native.EmbeddingBag (numpy) and embedding_native.torch.EmbeddingBag
(torch drop-in): constructor defaults, padding_idx normalisation, init, from_pretrained, repr,
state dict, forward equal to torch's module."""

import numpy as np
import pytest
import torch
import torch.nn as nn

import embedding_native as en
import embedding_native.torch as et
from helpers import same_values

REPR_CASES = [dict(), dict(mode="sum"), dict(max_norm=2.0, mode="sum", padding_idx=1), dict(padding_idx=-1),
              dict(norm_type=1.0), dict(scale_grad_by_freq=True, mode="max"), dict(sparse=True),
              dict(include_last_offset=True)]


@pytest.mark.parametrize("kwargs", REPR_CASES, ids=str)
def test_repr_and_attributes(kwargs):
    torch.manual_seed(0)
    reference = nn.EmbeddingBag(4, 3, **kwargs)
    ours = et.EmbeddingBag(4, 3, _weight=reference.weight.detach().clone(), **kwargs)
    numpy_ours = en.EmbeddingBag(4, 3, **kwargs)
    assert repr(ours) == repr(reference) == repr(numpy_ours)
    for name in ("num_embeddings", "embedding_dim", "max_norm", "norm_type", "scale_grad_by_freq", "mode", "sparse",
                 "include_last_offset", "padding_idx"):
        assert getattr(ours, name) == getattr(reference, name) == getattr(numpy_ours, name), name


def test_documented_reprs():
    assert repr(en.EmbeddingBag(4, 3)) == "EmbeddingBag(4, 3, mode=mean)"
    assert repr(et.EmbeddingBag(4, 3, max_norm=2.0, mode="sum", padding_idx=1)) == \
        "EmbeddingBag(4, 3, max_norm=2.0, mode=sum, padding_idx=1)"


@pytest.mark.parametrize("padding_idx", [None, 0, 2, -1])
def test_init_consumes_the_rng_like_torch(padding_idx):
    torch.manual_seed(3)
    reference = nn.EmbeddingBag(6, 4, padding_idx=padding_idx)
    after = torch.rand(1)
    torch.manual_seed(3)
    ours = et.EmbeddingBag(6, 4, padding_idx=padding_idx)
    assert torch.equal(torch.rand(1), after) and torch.equal(ours.weight, reference.weight)
    assert isinstance(ours.weight, nn.Parameter) and ours.weight.requires_grad
    numpy_ours = en.EmbeddingBag(6, 4, padding_idx=padding_idx, rng=np.random.default_rng(0))
    assert numpy_ours.weight.dtype == np.float32
    if padding_idx is not None:
        assert not numpy_ours.weight[padding_idx].any()


def test_from_pretrained_shares_and_does_not_zero_padding():
    w = torch.arange(12.0).view(4, 3)
    reference = nn.EmbeddingBag.from_pretrained(w.clone(), padding_idx=1)
    ours = et.EmbeddingBag.from_pretrained(w, padding_idx=1)
    assert ours.weight.data_ptr() == w.data_ptr() and not ours.weight.requires_grad
    assert torch.equal(ours.weight, reference.weight) and ours.mode == "mean"
    assert et.EmbeddingBag.from_pretrained(w, freeze=False).weight.requires_grad
    wn = np.arange(12.0, dtype=np.float32).reshape(4, 3)
    numpy_ours = en.EmbeddingBag.from_pretrained(wn, padding_idx=-1, mode="max")
    assert numpy_ours.weight is wn and numpy_ours.padding_idx == 3 and numpy_ours.requires_grad is False
    with pytest.raises(AssertionError, match="Embeddings parameter is expected to be 2-dimensional"):
        et.EmbeddingBag.from_pretrained(torch.zeros(3))


def test_state_dict_round_trip():
    torch.manual_seed(1)
    reference = nn.EmbeddingBag(8, 5, mode="sum")
    ours = et.EmbeddingBag(8, 5, mode="sum")
    assert list(ours.state_dict()) == list(reference.state_dict()) == ["weight"]
    ours.load_state_dict(reference.state_dict())
    assert torch.equal(ours.weight, reference.weight)
    reference.load_state_dict(et.EmbeddingBag(8, 5).state_dict())


@pytest.mark.parametrize("mode", ["sum", "mean", "max"])
def test_forward_equals_torch_module(mode):
    torch.manual_seed(2)
    reference = nn.EmbeddingBag(10, 3, mode=mode, padding_idx=0)
    ours = et.EmbeddingBag(10, 3, mode=mode, padding_idx=0, _weight=reference.weight.detach().clone())
    numpy_ours = en.EmbeddingBag.from_pretrained(reference.weight.detach().numpy().copy(), mode=mode, padding_idx=0)
    x = torch.tensor([1, 2, 4, 5, 4, 3, 2, 9, 0, 0])
    offsets = torch.tensor([0, 4, 8])
    expected = reference(x, offsets)
    assert same_values(ours(x, offsets), expected)
    assert same_values(numpy_ours(x.numpy(), offsets.numpy()), expected)
    x2 = x.view(2, 5)
    assert same_values(ours(x2), reference(x2))


def test_psw_through_module():
    torch.manual_seed(4)
    reference = nn.EmbeddingBag(10, 3, mode="sum")
    ours = et.EmbeddingBag(10, 3, mode="sum", _weight=reference.weight.detach().clone())
    x = torch.tensor([[1, 2, 4], [5, 4, 3]])
    psw = torch.rand(2, 3)
    assert same_values(ours(x, per_sample_weights=psw), reference(x, per_sample_weights=psw))


def test_module_table_types():
    # The numpy module takes numpy's float types; bfloat16 (no numpy type) and integers are refused.
    bag = en.EmbeddingBag(4, 3, dtype=np.float64, mode="sum")
    assert bag.weight.dtype == np.float64
    got = bag(np.array([[1, 2]]))
    assert got.dtype == np.float64 and got.tobytes() == (bag.weight[1] + bag.weight[2]).tobytes()
    assert en.EmbeddingBag(4, 3, dtype=torch.float16).weight.dtype == np.float16
    for dtype in (torch.bfloat16, np.int64):
        with pytest.raises(NotImplementedError):
            en.EmbeddingBag(4, 3, dtype=dtype)
