"""embedding_native.Embedding against torch.nn.Embedding: values, init, sharing, repr."""

import numpy as np
import pytest
import torch

import embedding_native as en
from helpers import bits, indices, table


@pytest.mark.parametrize("dim", [1, 5, 64, 300, 768])
@pytest.mark.parametrize("index_dtype", [np.int32, np.int64])
def test_forward_matches_torch(dim, index_dtype):
    w = table(25, dim, seed=dim)
    ours = en.Embedding(25, dim, _weight=w.copy())
    reference = torch.nn.Embedding(25, dim, _weight=torch.from_numpy(w.copy()))
    idx = indices((3, 4), 25, index_dtype)
    expected = reference(torch.from_numpy(idx)).detach()
    assert np.array_equal(bits(ours(idx)), bits(expected))
    assert np.array_equal(bits(ours.forward(idx)), bits(expected))


def test_forward_with_out_and_torch_input():
    module = en.Embedding.from_pretrained(table(10, 4))
    out = np.empty((2, 4), np.float32)
    assert module(torch.tensor([3, 3]), out=out) is out
    assert np.array_equal(bits(out), bits(module.weight)[[3, 3]])


@pytest.mark.parametrize("padding_idx", [None, 0, 3, -1, -4])
def test_attributes_match_torch(padding_idx):
    ours = en.Embedding(4, 3, padding_idx=padding_idx, norm_type=1.0, scale_grad_by_freq=True, sparse=True)
    reference = torch.nn.Embedding(4, 3, padding_idx=padding_idx, norm_type=1.0, scale_grad_by_freq=True, sparse=True)
    for name in ("num_embeddings", "embedding_dim", "padding_idx", "max_norm", "norm_type", "scale_grad_by_freq",
                 "sparse"):
        assert getattr(ours, name) == getattr(reference, name), name
    assert ours.weight.shape == tuple(reference.weight.shape)
    assert ours.weight.dtype == np.float32


REPR_CASES = [dict(), dict(padding_idx=0), dict(padding_idx=-1), dict(norm_type=1.0), dict(norm_type=1),
              dict(norm_type=2), dict(scale_grad_by_freq=True), dict(sparse=True),
              dict(padding_idx=2, norm_type=3.5, scale_grad_by_freq=True, sparse=True)]


@pytest.mark.parametrize("kwargs", REPR_CASES, ids=str)
def test_repr_matches_torch(kwargs):
    assert repr(en.Embedding(4, 3, **kwargs)) == repr(torch.nn.Embedding(4, 3, **kwargs))
    assert en.Embedding(4, 3, **kwargs).extra_repr() == torch.nn.Embedding(4, 3, **kwargs).extra_repr()


def test_repr_with_max_norm_matches_torch():
    reference = torch.nn.Embedding(4, 3, padding_idx=0, max_norm=1.0, norm_type=1.0, scale_grad_by_freq=True,
                                   sparse=True)
    ours = en.Embedding(4, 3, padding_idx=0, max_norm=1.0, norm_type=1.0, scale_grad_by_freq=True, sparse=True)
    assert repr(ours) == repr(reference) == \
        "Embedding(4, 3, padding_idx=0, max_norm=1.0, norm_type=1.0, scale_grad_by_freq=True, sparse=True)"


def test_from_pretrained_shares_memory():
    w = table(6, 5)
    module = en.Embedding.from_pretrained(w)
    assert module.weight is w
    w[2] = 9.0
    assert np.all(module(np.array([2])) == 9.0)
    module.weight[3] = -1.0
    assert np.all(w[3] == -1.0)


@pytest.mark.parametrize("padding_idx", [1, -1])
def test_from_pretrained_does_not_zero_padding(padding_idx):
    w = table(6, 5, specials=False)
    before = w.copy()
    ours = en.Embedding.from_pretrained(w, padding_idx=padding_idx)
    reference = torch.nn.Embedding.from_pretrained(torch.from_numpy(w.copy()), padding_idx=padding_idx)
    assert ours.padding_idx == reference.padding_idx
    assert np.array_equal(bits(w), bits(before))
    idx = np.array([0, 1, 5])
    assert np.array_equal(bits(ours(idx)), bits(reference(torch.from_numpy(idx))))


@pytest.mark.parametrize("freeze", [True, False])
def test_from_pretrained_freeze(freeze):
    reference = torch.nn.Embedding.from_pretrained(torch.zeros(2, 2), freeze=freeze)
    assert en.Embedding.from_pretrained(np.zeros((2, 2), np.float32), freeze=freeze).requires_grad == \
        reference.weight.requires_grad


def test_from_pretrained_repr_matches_torch():
    w = table(7, 2)
    ours = en.Embedding.from_pretrained(w, padding_idx=-2, sparse=True)
    reference = torch.nn.Embedding.from_pretrained(torch.from_numpy(w), padding_idx=-2, sparse=True)
    assert repr(ours) == repr(reference)


def test_weight_argument_is_used_as_is():
    w = table(4, 3)
    module = en.Embedding(4, 3, padding_idx=1, _weight=w)
    assert module.weight is w
    assert not np.all(w[1] == 0)  # torch does not zero the padding row of a given _weight either


def test_default_init_statistics():
    module = en.Embedding(1000, 100, padding_idx=3, rng=np.random.default_rng(0))
    w = module.weight
    assert w.dtype == np.float32 and w.shape == (1000, 100) and w.flags.c_contiguous
    assert np.all(w[3] == 0) and not np.signbit(w[3]).any()
    rest = np.delete(w, 3, axis=0)
    assert abs(rest.mean()) < 0.01
    assert abs(rest.std() - 1.0) < 0.01


def test_default_init_matches_torch_distribution():
    torch.manual_seed(0)
    reference = torch.nn.Embedding(1000, 100).weight.detach().numpy()
    ours = en.Embedding(1000, 100, rng=np.random.default_rng(0)).weight
    assert abs(ours.mean() - reference.mean()) < 0.01
    assert abs(ours.std() - reference.std()) < 0.01


def test_init_is_reproducible_with_rng():
    a = en.Embedding(10, 4, rng=np.random.default_rng(42)).weight
    b = en.Embedding(10, 4, rng=np.random.default_rng(42)).weight
    assert np.array_equal(bits(a), bits(b))


def test_padding_row_consumes_rng_like_torch():
    # torch draws every row, then zeroes the padding row: the other rows do not move.
    plain = en.Embedding(4, 3, rng=np.random.default_rng(0)).weight
    padded = en.Embedding(4, 3, padding_idx=1, rng=np.random.default_rng(0)).weight
    assert np.array_equal(bits(np.delete(plain, 1, axis=0)), bits(np.delete(padded, 1, axis=0)))


def test_reset_parameters_refills_in_place_and_rezeroes_padding():
    module = en.Embedding(8, 6, padding_idx=-1, rng=np.random.default_rng(1))
    weight = module.weight
    weight[7] = 5.0
    before = weight.copy()
    module.reset_parameters()
    assert module.weight is weight
    assert np.all(weight[7] == 0)
    assert not np.array_equal(weight[:7], before[:7])


def test_empty_table():
    module = en.Embedding(0, 3)
    assert repr(module) == repr(torch.nn.Embedding(0, 3))
    assert module(np.zeros((0,), np.int64)).shape == (0, 3)
