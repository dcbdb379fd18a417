"""Gradients of the embedding: dense (bit-exact with torch 1.13), sparse layout, coalesce."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import embedding_native as en
from embedding_native import functional as ef
from helpers import bits, raised

SHAPES = [(), (0,), (1,), (7,), (3, 4), (2, 3, 4), (0, 3), (3, 0)]
DIMS = [1, 3, 8, 17, 64, 300]


def torch_dense_grad(idx, grad, num_embeddings, padding_idx=None, scale_grad_by_freq=False):
    """torch's weight gradient for F.embedding(idx, w, ...) with output gradient ``grad``."""
    w = torch.zeros(num_embeddings, grad.shape[-1], requires_grad=True)
    F.embedding(torch.as_tensor(idx), w, padding_idx=padding_idx, scale_grad_by_freq=scale_grad_by_freq).backward(
        torch.as_tensor(grad))
    return w.grad


def torch_sparse_grad(idx, grad, num_embeddings, padding_idx=None):
    w = torch.zeros(num_embeddings, grad.shape[-1], requires_grad=True)
    F.embedding(torch.as_tensor(idx), w, padding_idx=padding_idx, sparse=True).backward(torch.as_tensor(grad))
    return w.grad


def case(shape, dim, num_embeddings=11, dtype=np.int64, seed=0):
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, num_embeddings, size=shape).astype(dtype)
    grad = rng.standard_normal(shape + (dim,), dtype=np.float32)
    return idx, grad


# ---- dense --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("dtype", [np.int32, np.int64], ids=lambda d: d.__name__)
@pytest.mark.parametrize("padding_idx", [None, 0, 4, -1])
@pytest.mark.parametrize("scale_grad_by_freq", [False, True])
def test_dense_bit_exact(shape, dtype, padding_idx, scale_grad_by_freq):
    idx, grad = case(shape, 17, dtype=dtype)
    expected = torch_dense_grad(idx, grad, 11, padding_idx, scale_grad_by_freq)
    ours = ef.embedding_backward(grad, idx, 11, padding_idx, scale_grad_by_freq)
    assert isinstance(ours, np.ndarray) and ours.shape == (11, 17) and ours.dtype == np.float32
    assert np.array_equal(bits(ours), bits(expected))


@pytest.mark.parametrize("dim", DIMS)
@pytest.mark.parametrize("scale_grad_by_freq", [False, True])
def test_dense_duplicate_heavy_bit_exact(dim, scale_grad_by_freq):
    # Many contributions per row in position order: the accumulation order shows in the bits.
    idx, grad = case((3000,), dim, num_embeddings=5, seed=dim)
    expected = torch_dense_grad(idx, grad, 7, 2, scale_grad_by_freq)
    ours = ef.embedding_backward(grad, idx, 7, 2, scale_grad_by_freq)
    assert np.array_equal(bits(ours), bits(expected))
    assert not ours[2].any() and not ours[5:].any()  # padding row and unreferenced rows are +0.0
    assert not np.signbit(ours[2]).any()


def test_spec_example():
    idx = np.array([[0, 2, 2], [1, 2, 0]])
    grad = np.arange(18, dtype=np.float32).reshape(2, 3, 3)
    assert ef.embedding_backward(grad, idx, 4).tolist() == [[15, 17, 19], [9, 10, 11], [21, 24, 27], [0, 0, 0]]
    assert ef.embedding_backward(grad, idx, 4, padding_idx=-2).tolist() == \
        [[15, 17, 19], [9, 10, 11], [0, 0, 0], [0, 0, 0]]
    scaled = ef.embedding_backward(grad, idx, 4, scale_grad_by_freq=True)
    assert scaled[0].tolist() == [7.5, 8.5, 9.5] and scaled[2].tolist() == [7, 8, 9]


def test_non_contiguous_grad_and_indices():
    idx, grad = case((6, 4), 5)
    grad_t = np.ascontiguousarray(grad.transpose(1, 0, 2)).transpose(1, 0, 2)  # same values, other strides
    assert not grad_t.flags.c_contiguous
    idx_t = np.asfortranarray(idx)
    expected = torch_dense_grad(idx, grad, 11)
    assert np.array_equal(bits(ef.embedding_backward(grad_t, idx_t, 11)), bits(expected))
    # the spec's transposed grad example
    g = torch.tensor([[0.0, 1.0], [2.0, 3.0]]).t()
    assert ef.embedding_backward(g, torch.tensor([0, 1]), 2).tolist() == \
        torch_dense_grad(np.array([0, 1]), g.contiguous().numpy(), 2).tolist()


def test_torch_tensors_in_tensor_out():
    idx, grad = case((4, 5), 8, dtype=np.int32)
    ours = ef.embedding_backward(torch.from_numpy(grad), torch.from_numpy(idx), 11, 3, True)
    assert isinstance(ours, torch.Tensor) and ours.dtype == torch.float32
    assert torch.equal(ours, torch_dense_grad(idx, grad, 11, 3, True))


def test_out_and_accumulate():
    idx, grad = case((40,), 6)
    grad = np.round(grad * 8)  # small integers: every sum is exact, so += order cannot show
    out = np.full((11, 6), 1.5, np.float32)
    assert ef.embedding_backward(grad, idx, 11, out=out, accumulate=True) is out
    assert np.array_equal(out, 1.5 + torch_dense_grad(idx, grad, 11).numpy())
    assert ef.embedding_backward(grad, idx, 11, out=out) is out
    assert np.array_equal(bits(out), bits(torch_dense_grad(idx, grad, 11)))
    with pytest.raises(ValueError):
        ef.embedding_backward(grad, idx, 11, accumulate=True)


def test_zero_sizes():
    assert ef.embedding_backward(np.zeros((0, 3), np.float32), np.zeros(0, np.int64), 0).shape == (0, 3)
    assert ef.embedding_backward(np.zeros((2, 0), np.float32), np.array([1, 2]), 4).shape == (4, 0)


def test_dense_errors_write_nothing():
    idx, grad = case((5,), 3)
    idx[3] = 11
    out = np.full((11, 3), 7.0, np.float32)
    e = raised(lambda: ef.embedding_backward(grad, idx, 11, out=out))
    assert isinstance(e, en.EmbeddingIndexError) and isinstance(e, IndexError)
    assert (out == 7.0).all()
    idx[3] = -1
    assert isinstance(raised(lambda: ef.embedding_backward(grad, idx, 11)), IndexError)
    idx[3] = 0
    assert isinstance(raised(lambda: ef.embedding_backward(grad[:4], idx, 11)), RuntimeError)       # shape
    assert isinstance(raised(lambda: ef.embedding_backward(grad.astype(np.int32), idx, 11)), NotImplementedError)
    assert isinstance(raised(lambda: ef.embedding_backward(grad, idx.astype(np.int16), 11)), RuntimeError)
    assert isinstance(raised(lambda: ef.embedding_backward(grad, idx, 11, padding_idx=11)), AssertionError)
    assert isinstance(raised(lambda: ef.embedding_backward(grad, idx, 11, out=np.empty((11, 3)))), RuntimeError)


# ---- sparse ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("dtype", [np.int32, np.int64], ids=lambda d: d.__name__)
@pytest.mark.parametrize("padding_idx", [None, 0, 4, -1])
def test_sparse_layout_matches_torch(shape, dtype, padding_idx):
    idx, grad = case(shape, 5, dtype=dtype)
    rows, values = ef.embedding_sparse_backward(grad, idx, 11, padding_idx)
    if shape == () and padding_idx is not None:
        # torch 1.13 bug: masking a 0-d index tensor fails ("too many indices for tensor of
        # dimension 0"). We give the evident answer: one entry unless the index is padding.
        assert isinstance(raised(lambda: torch_sparse_grad(idx, grad, 11, padding_idx)), IndexError)
        keep = int(idx) != padding_idx % 11
        assert rows.tolist() == ([int(idx)] if keep else []) and values.shape == (int(keep), 5)
        return
    expected = torch_sparse_grad(idx, grad, 11, padding_idx)
    assert rows.dtype == np.int64 and values.dtype == np.float32
    if expected._nnz():
        assert np.array_equal(rows, expected._indices()[0].numpy())
        assert np.array_equal(bits(values), bits(expected._values()))
    else:
        assert rows.shape == (0,) and values.shape == (0, 5)


def test_sparse_spec_example_and_scaling():
    idx = np.array([[0, 2, 2], [1, 2, 0]])
    grad = np.arange(18, dtype=np.float32).reshape(2, 3, 3)
    rows, values = ef.embedding_sparse_backward(grad, idx, 4)
    assert rows.tolist() == [0, 2, 2, 1, 2, 0] and np.array_equal(values, grad.reshape(6, 3))
    rows, values = ef.embedding_sparse_backward(grad, idx, 4, padding_idx=2)
    assert rows.tolist() == [0, 1, 0] and np.array_equal(values, grad.reshape(6, 3)[[0, 3, 5]])
    rows, values = ef.embedding_sparse_backward(grad, idx, 4, scale_grad_by_freq=True)
    counts = np.bincount(idx.reshape(-1), minlength=4)
    scale = np.array([np.float32(1.0) / np.float32(counts[k]) for k in idx.reshape(-1)], np.float32)
    assert np.array_equal(bits(values), bits(grad.reshape(6, 3) * scale[:, None]))


def test_sparse_tensors_in_tensor_out():
    idx, grad = case((3, 4), 6)
    rows, values = ef.embedding_sparse_backward(torch.from_numpy(grad), torch.from_numpy(idx), 11)
    assert isinstance(rows, torch.Tensor) and rows.dtype == torch.int64 and isinstance(values, torch.Tensor)
    assert torch.equal(torch.sparse_coo_tensor(rows[None], values, (11, 6)).to_dense(), torch_dense_grad(idx, grad, 11))


@pytest.mark.parametrize("as_tensor", [False, True], ids=["numpy", "tensor"])
@pytest.mark.parametrize("dtype", [np.int32, np.int64], ids=lambda d: d.__name__)
def test_large_sparse_gradients_are_views_as_in_torch(as_tensor, dtype):
    from embedding_native._ops.backward import VIEW_MIN_ELEMENTS
    dim = 64
    idx, grad = case((VIEW_MIN_ELEMENTS // dim // 4, 4), dim, num_embeddings=300, dtype=dtype)
    wrap = torch.from_numpy if as_tensor else (lambda a: a)
    rows, values = ef.embedding_sparse_backward(wrap(grad), wrap(idx), 300)
    expected = torch.ops.aten.embedding_sparse_backward(torch.from_numpy(grad), torch.from_numpy(idx).long(), 300, -1, False)
    assert type(values) is type(wrap(grad)) and tuple(values.shape) == (idx.size, dim)
    assert np.shares_memory(np.asarray(values), grad)  # no copy of grad_output, as torch's values
    assert np.array_equal(np.asarray(rows), expected._indices()[0].numpy()) and np.asarray(rows).dtype == np.int64
    assert np.array_equal(bits(np.asarray(values)), bits(expected._values().numpy()))
    # a padding row, scaling or an index out of range take the native call: copies, and its IndexError
    rows, values = ef.embedding_sparse_backward(wrap(grad), wrap(idx), 300, padding_idx=7)
    assert not np.shares_memory(np.asarray(values), grad) and 7 not in np.asarray(rows)
    for bad in (-1, 300):
        broken = idx.copy()
        broken[5, 2] = bad
        error = raised(lambda: ef.embedding_sparse_backward(wrap(grad), wrap(broken), 300))
        assert isinstance(error, IndexError) and "out of range" in str(error)


# ---- coalesce -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("nnz", [0, 1, 2, 50, 1000])
def test_coalesce_matches_torch(nnz):
    rng = np.random.default_rng(nnz)
    rows = rng.integers(0, 13, size=nnz)
    values = rng.standard_normal((nnz, 9), dtype=np.float32)
    expected = torch.sparse_coo_tensor(torch.from_numpy(rows)[None], torch.from_numpy(values), (13, 9)).coalesce()
    unique, summed = ef.sparse_coalesce(rows, values, 13)
    assert unique.dtype == np.int64 and np.array_equal(unique, expected._indices()[0].numpy())
    # torch's coalesce may sum duplicates in another order, so the bound is the spec's (§4.2)
    # per-element c * eps * sum|terms| with c = 4 (measured max ratio: printed on failure).
    magnitude = np.zeros((13, 9))
    np.add.at(magnitude, rows, np.abs(values.astype(np.float64)))
    bound = 4 * np.finfo(np.float32).eps * magnitude[unique]
    diff = np.abs(summed.astype(np.float64) - expected._values().numpy())
    assert (diff <= bound).all(), float((diff / np.maximum(bound, 1e-300)).max())
    # small integers sum exactly in any order
    ints = np.round(values * 4)
    unique, summed = ef.sparse_coalesce(torch.from_numpy(rows), torch.from_numpy(ints), 13)
    assert isinstance(summed, torch.Tensor)
    expected = torch.sparse_coo_tensor(torch.from_numpy(rows)[None], torch.from_numpy(ints), (13, 9)).coalesce()
    assert torch.equal(summed, expected._values()) and torch.equal(unique, expected._indices()[0])


def test_coalesce_in_entry_order_from_zero():
    rows = np.array([3, 1, 3, 3])
    values = np.array([[1e8], [-0.0], [1.0], [-1e8]], np.float32)
    unique, summed = ef.sparse_coalesce(rows, values, 4)
    assert unique.tolist() == [1, 3]
    assert summed[1, 0] == np.float32(np.float32(np.float32(1e8) + np.float32(1.0)) + np.float32(-1e8))
    assert summed[0, 0] == 0.0 and not np.signbit(summed[0, 0])  # +0.0 + -0.0


def test_coalesce_errors():
    values = np.ones((2, 3), np.float32)
    assert isinstance(raised(lambda: ef.sparse_coalesce(np.array([0, 4]), values, 4)), IndexError)
    assert isinstance(raised(lambda: ef.sparse_coalesce(np.array([0]), values, 4)), RuntimeError)
    assert isinstance(raised(lambda: ef.sparse_coalesce(np.array([0.0, 1.0]), values, 4)), RuntimeError)
