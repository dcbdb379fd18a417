"""Results of FRESH_MAPPING_BYTES and more come from a pool of huge-page mappings (_results), and new
dense gradients are accumulated into zeros instead of being cleared first: the values must be
torch's bits all the same, the arrays ordinary writable numpy arrays / CPU tensors that autograd and
the optimizers accept, a buffer must never be handed out again while any view of it lives, and a
reused one must come back zeroed when zeros were asked for."""

import gc

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import embedding_native as en
from embedding_native import _results
from embedding_native import functional as enf
from embedding_native import tables
from embedding_native import torch as ent

# Just over FRESH_MAPPING_BYTES of float32 per result (and a table of the same size).
V, D, N = 270000, 32, 270000


def _data(seed=0):
    g = torch.Generator().manual_seed(seed)
    weight = torch.randn(V, D, generator=g)
    weight[3] = -0.0  # a row of -0.0: +0.0 + (-0.0) is +0.0 in torch's zeros + index_add
    indices = torch.randint(0, V, (N,), generator=g)
    indices[:50] = 3
    grad = torch.randn(N, D, generator=g)
    grad[:50] = -0.0
    return weight, indices, grad


def test_large_results_are_over_the_fresh_mapping_size():
    assert N * D * 4 >= _results.FRESH_MAPPING_BYTES and V * D * 4 >= _results.FRESH_MAPPING_BYTES


def test_zeros_is_zero_writable_and_outlives_its_mapping():
    z = tables.zeros((V, D))
    assert z.dtype == np.float32 and z.flags.c_contiguous and z.flags.writeable and z.shape == (V, D)
    assert not z.any()
    view = z[5:7]
    del z
    gc.collect()
    view[:] = 1.5  # the mapping is still alive through the view
    assert (view == 1.5).all()


@pytest.mark.parametrize("as_tensor", [False, True])
def test_pool_reuses_a_buffer_only_once_nothing_refers_to_it(as_tensor):
    en.release_cached()
    shape = (N, D)
    first = _results.new_float32(shape, as_tensor)
    address = first.data_ptr() if as_tensor else first.ctypes.data
    first[:] = 7.0
    held = [first[10:12]]  # a view keeps the buffer in use
    if as_tensor:
        held.append(first.numpy()[3:4])
    del first
    gc.collect()
    second = _results.new_float32(shape, as_tensor, zeroed=True)
    assert (second.data_ptr() if as_tensor else second.ctypes.data) != address
    assert (held[0] == 7.0).all()
    del held
    gc.collect()
    third = _results.new_float32(shape, as_tensor, zeroed=True)
    assert (third.data_ptr() if as_tensor else third.ctypes.data) == address
    assert not third.any() if not as_tensor else not third.any().item()
    del second, third
    assert en.release_cached() == 2 * N * D * 4


def test_pool_keeps_at_most_its_capacity():
    en.release_cached()
    results = [_results.new_float32((N + k, D), False) for k in range(_results.POOL_BUFFERS + 2)]
    assert len(_results._pool) == _results.POOL_BUFFERS
    results[0][:] = 1.0  # forgotten by the pool, still alive and writable
    del results
    assert en.release_cached() == sum((N + k) * D * 4 for k in range(2, _results.POOL_BUFFERS + 2))


@pytest.mark.parametrize("as_tensor", [False, True])
def test_large_forward_output_matches_torch(as_tensor):
    weight, indices, _ = _data(1)
    expected = F.embedding(indices, weight)
    if as_tensor:
        got = en.embedding(indices, weight)
        assert isinstance(got, torch.Tensor) and got.dtype == torch.float32 and got.is_contiguous()
        assert torch.equal(got, expected)
        got.add_(1)  # writable
    else:
        got = en.embedding(indices.numpy(), weight.numpy())
        assert isinstance(got, np.ndarray) and got.flags.writeable
        assert np.array_equal(got.view(np.uint32), expected.numpy().view(np.uint32))


@pytest.mark.parametrize("scale_grad_by_freq", [False, True])
@pytest.mark.parametrize("padding_idx", [None, 3])
def test_large_dense_gradient_matches_torch_bits(scale_grad_by_freq, padding_idx):
    _, indices, grad = _data(2)
    expected = torch.ops.aten.embedding_dense_backward(grad, indices, V, -1 if padding_idx is None else padding_idx,
                                                       scale_grad_by_freq)
    for kind in (grad, grad.numpy()):
        ix = indices if isinstance(kind, torch.Tensor) else indices.numpy()
        got = enf.embedding_backward(kind, ix, V, padding_idx, scale_grad_by_freq)
        got = got if isinstance(got, torch.Tensor) else torch.from_numpy(got)
        assert torch.equal(got.view(torch.int32), expected.view(torch.int32))


def test_drop_in_training_step_with_a_large_gradient_matches_torch():
    weight, indices, grad = _data(3)
    theirs = torch.nn.Embedding.from_pretrained(weight.clone(), freeze=False)
    ours = ent.Embedding.from_pretrained(weight.clone(), freeze=False)
    for module in (theirs, ours):
        optimizer = torch.optim.SGD(module.parameters(), lr=0.1)
        for _ in range(2):  # the second backward adds into the first gradient, then the step uses it
            module(indices).backward(grad)
        optimizer.step()
    assert torch.equal(ours.weight.grad, theirs.weight.grad)
    assert torch.equal(ours.weight, theirs.weight)


@pytest.mark.parametrize("mode", ["sum", "mean", "max"])
def test_large_bag_gradient_matches_torch(mode):
    weight, indices, grad = _data(4)
    offsets = torch.arange(0, N, 8)
    w_theirs = weight.clone().requires_grad_()
    w_ours = weight.clone().requires_grad_()
    g = torch.randn(offsets.numel(), D, generator=torch.Generator().manual_seed(5))
    F.embedding_bag(indices, w_theirs, offsets, mode=mode).backward(g)
    ent.embedding_bag(indices, w_ours, offsets, mode=mode).backward(g)
    assert w_ours.grad.shape == (V, D)
    # Duplicates add in position order here and in torch's sort order there (docs/training.md):
    # |ours - torch| <= 4 eps sum|terms| per element.
    w_abs = weight.clone().requires_grad_()
    F.embedding_bag(indices, w_abs, offsets, mode=mode).backward(g.abs())
    bound = 4 * torch.finfo(torch.float32).eps * w_abs.grad
    assert ((w_ours.grad - w_theirs.grad).abs() <= bound).all()
    if mode == "max":
        assert torch.equal(w_ours.grad, w_theirs.grad)
    numpy_grad = enf.embedding_bag_backward(g.numpy(), indices.numpy(), V, offsets.numpy(), mode=mode,
                                            max_indices=(enf.embedding_bag_max_indices(indices.numpy(), weight.numpy(),
                                                                                        offsets.numpy())[1]
                                                         if mode == "max" else None))
    assert np.array_equal(numpy_grad.view(np.uint32), w_ours.grad.numpy().view(np.uint32))


@pytest.mark.parametrize("threads", [1, 2])
def test_gather_of_64_mib_and_more_streams_the_same_bits(threads):
    # Outputs of 64 MiB and more, 64-byte aligned (the pool's are 2 MiB aligned), rows of whole
    # cache lines (D = 32): the library writes them with non-temporal stores on every x86 tier.
    rng = np.random.default_rng(7)
    weight = rng.standard_normal((1000, 32), dtype=np.float32)
    weight[5] = -0.0
    indices = rng.integers(0, 1000, size=(64 << 20) // (32 * 4) + 5, dtype=np.int64)
    previous = en.get_num_threads()
    en.set_num_threads(threads)
    try:
        got = en.embedding(indices, weight)
    finally:
        en.set_num_threads(previous)
    assert got.ctypes.data % 64 == 0 and got.nbytes >= 64 << 20
    assert np.array_equal(got.view(np.uint32), weight[indices].view(np.uint32))


@pytest.mark.parametrize("dtype", [torch.float64, torch.float16, torch.bfloat16])
def test_large_results_of_every_table_type_come_from_the_pool(dtype):
    # 36 MiB of output for 2-byte types, 72 MiB for float64: above FRESH_MAPPING_BYTES either way.
    weight = torch.randn(100, 2048).to(dtype)
    indices = torch.randint(0, 100, (9216,))
    first = enf.embedding(indices, weight)
    assert first.dtype == dtype and torch.equal(first, torch.nn.functional.embedding(indices, weight))
    address = first.data_ptr()
    del first
    again = enf.embedding(indices, weight)
    assert again.data_ptr() == address and torch.equal(again, weight[indices])
