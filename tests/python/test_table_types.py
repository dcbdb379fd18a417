"""The lookup of float64, float16 and bfloat16 tables, against torch 1.13, bit for bit.

The other operations take float32 tables only for now; they refuse the other types with
EmbeddingNotSupportedError (NotImplementedError), which tests elsewhere pin.
"""

import numpy as np
import pytest
import torch

import embedding_native.functional as F
from embedding_native.errors import EmbeddingNotSupportedError

TORCH_TYPES = [torch.float64, torch.float16, torch.bfloat16, torch.float32]
NUMPY_TYPES = [np.float64, np.float16, np.float32]
DIMS = [1, 3, 7, 8, 9, 16, 31, 32, 33, 64, 65, 300]


def random_bits(shape, dtype, seed):
    """A table of random bit patterns (NaN payloads, infinities, -0.0, subnormals): a lookup copies bits."""
    bits = torch.from_numpy(np.random.default_rng(seed).integers(0, 256, size=shape + (torch.finfo(dtype).bits // 8,),
                                                                   dtype=np.uint8))
    return bits.view(dtype).reshape(shape)


_BITS = {2: torch.int16, 4: torch.int32, 8: torch.int64}


def same_bits(a, b):
    """Same dtype, shape and bit patterns (NaN payloads included)."""
    a, b = torch.as_tensor(a), torch.as_tensor(b)
    return (a.dtype == b.dtype and a.shape == b.shape
            and torch.equal(a.contiguous().view(_BITS[a.element_size()]), b.contiguous().view(_BITS[b.element_size()])))


@pytest.mark.parametrize("dtype", TORCH_TYPES)
@pytest.mark.parametrize("dim", DIMS)
@pytest.mark.parametrize("index_dtype", [torch.int32, torch.int64])
def test_tensor_lookup_is_bit_identical(dtype, dim, index_dtype):
    weight = random_bits((23, dim), dtype, seed=dim)
    indices = torch.randint(0, 23, (5, 7), generator=torch.Generator().manual_seed(dim)).to(index_dtype)
    ours = F.embedding(indices, weight)
    assert same_bits(ours, torch.nn.functional.embedding(indices, weight))


@pytest.mark.parametrize("dtype", NUMPY_TYPES)
@pytest.mark.parametrize("dim", [1, 5, 33, 300])
def test_numpy_lookup_is_bit_identical(dtype, dim):
    weight = random_bits((11, dim), torch.from_numpy(np.zeros(1, dtype)).dtype, seed=dim).numpy()
    indices = np.array([[10, 0, 3], [3, 3, 7]])
    ours = F.embedding(indices, weight)
    assert ours.dtype == weight.dtype and ours.shape == (2, 3, dim)
    assert ours.tobytes() == weight[indices].tobytes()


@pytest.mark.parametrize("dtype", TORCH_TYPES)
def test_shapes_options_and_out(dtype):
    weight = random_bits((6, 4), dtype, seed=1)
    for indices in (torch.tensor(5), torch.empty(0, dtype=torch.int64), torch.tensor([[[1, 2]], [[0, 5]]])):
        assert same_bits(F.embedding(indices, weight), torch.nn.functional.embedding(indices, weight))
    indices = torch.tensor([1, 1, 4])
    # padding_idx and scale_grad_by_freq do not change the forward.
    assert same_bits(F.embedding(indices, weight, padding_idx=1, scale_grad_by_freq=True), weight[indices])
    out = torch.empty(3, 4, dtype=dtype)
    assert F.embedding(indices, weight, out=out) is out and same_bits(out, weight[indices])
    # A non-contiguous table is read through a copy, as for float32.
    wide = random_bits((6, 8), dtype, seed=2)
    assert same_bits(F.embedding(indices, wide[:, ::2]), wide[:, ::2][indices])


@pytest.mark.parametrize("dtype", [torch.float64, torch.float16, torch.bfloat16])
def test_out_of_another_type_is_refused(dtype):
    weight = torch.zeros(6, 4, dtype=dtype)
    with pytest.raises(RuntimeError, match="out must be %s" % str(dtype)[len("torch."):]):
        F.embedding(torch.tensor([1]), weight, out=torch.empty(1, 4))


@pytest.mark.parametrize("dtype", [torch.float64, torch.float16, torch.bfloat16])
def test_out_of_range_index_raises_like_torch(dtype):
    weight = torch.zeros(6, 4, dtype=dtype)
    with pytest.raises(IndexError) as theirs:
        torch.nn.functional.embedding(torch.tensor([1, 6]), weight)
    with pytest.raises(IndexError) as ours:
        F.embedding(torch.tensor([1, 6]), weight)
    assert str(ours.value).startswith(str(theirs.value))


def test_integer_table_is_refused_with_the_types_it_takes():
    # torch looks up any dtype (index_select); the library copies float tables only.
    with pytest.raises(EmbeddingNotSupportedError, match="float32, float64, float16 and bfloat16"):
        F.embedding(torch.tensor([1]), torch.ones(3, 2, dtype=torch.int64))


def test_operations_without_the_type_refuse_it_clearly():
    # The fused optimizer steps take every table type (test_optim_table_types.py); an integer
    # table is refused, naming the types they take.
    import embedding_native.optim as optim
    with pytest.raises(NotImplementedError, match="float32, float64, float16 and bfloat16"):
        optim.sgd_step(np.zeros((6, 4), np.int64), np.array([1]), np.ones((1, 4), np.int64), lr=0.1)


# ---- training an Embedding of every table type ------------------------------------------------------

import embedding_native.torch as ent  # noqa: E402

TRAIN_TYPES = [torch.float64, torch.float16, torch.bfloat16]


def _pair(dtype, seed, **kwargs):
    """torch's module and ours with the same initial weight (torch's RNG stream)."""
    torch.manual_seed(seed)
    theirs = torch.nn.Embedding(31, kwargs.pop("dim", 37), dtype=dtype, **kwargs)
    ours = ent.Embedding.from_pretrained(theirs.weight.detach().clone(), freeze=False,
                                         padding_idx=theirs.padding_idx, max_norm=theirs.max_norm,
                                         norm_type=theirs.norm_type, scale_grad_by_freq=theirs.scale_grad_by_freq,
                                         sparse=theirs.sparse)
    return theirs, ours


@pytest.mark.parametrize("dtype", TRAIN_TYPES)
@pytest.mark.parametrize("dim", [1, 5, 32, 37, 64, 300])
@pytest.mark.parametrize("options", [{}, {"padding_idx": 3}, {"scale_grad_by_freq": True},
                                     {"scale_grad_by_freq": True, "padding_idx": 0}, {"sparse": True},
                                     {"sparse": True, "padding_idx": 30}])
def test_embedding_gradients_are_bit_identical(dtype, dim, options):
    theirs, ours = _pair(dtype, seed=dim, dim=dim, **options)
    gen = torch.Generator().manual_seed(dim + 1)
    # Duplicate-heavy indices: half/bfloat16 round at every accumulation step, as torch does.
    indices = torch.randint(0, 31, (40, 7), generator=gen) % (5 if dim % 2 else 31)
    grad = torch.randn(40, 7, dim, generator=gen).to(dtype)
    out_theirs, out_ours = theirs(indices), ours(indices)
    assert same_bits(out_ours, out_theirs)
    out_theirs.backward(grad)
    out_ours.backward(grad)
    g_theirs, g_ours = theirs.weight.grad, ours.weight.grad
    assert g_ours.dtype == dtype and g_ours.is_sparse == g_theirs.is_sparse
    if g_theirs.is_sparse:
        g_theirs, g_ours = g_theirs.coalesce().to_dense(), g_ours.coalesce().to_dense()
    assert same_bits(g_ours, g_theirs)


@pytest.mark.parametrize("dtype", TRAIN_TYPES)
@pytest.mark.parametrize("norm_type", [1.0, 2.0, 3.0, float("inf")])
def test_max_norm_rescales_like_torch(dtype, norm_type):
    theirs, ours = _pair(dtype, seed=5, dim=19, max_norm=1.5, norm_type=norm_type)
    indices = torch.tensor([[0, 4, 4, 30], [7, 0, 12, 3]])
    assert same_bits(ours(indices), theirs(indices))
    assert same_bits(ours.weight.detach(), theirs.weight.detach())


@pytest.mark.parametrize("dtype", TRAIN_TYPES)
@pytest.mark.parametrize("norm_type", [1.1, 2.0000001, 0.3, -1.3, 1e-50, 1e40, -1e40])
def test_renorm_takes_norm_type_as_a_float_like_torch(dtype, norm_type):
    # torch 1.13 hands its norm a float: 1.1 is used as float(1.1), 2.0000001 is the 2-norm,
    # 1e-50 the count of non-zeros, +-1e40 the max / min.
    gen = torch.Generator().manual_seed(9)
    for dim in (5, 16, 33, 300):
        weight = (torch.randn(40, dim, generator=gen) * 3).to(dtype)
        indices = torch.randint(0, 40, (60,), generator=gen)
        max_norm = float(weight.double().norm(2, dim=1).median()) * 0.5
        theirs, ours = weight.clone(), weight.clone()
        torch.embedding_renorm_(theirs, indices, max_norm, norm_type)
        F.embedding_renorm_(ours, indices, max_norm, norm_type)
        assert same_bits(ours, theirs), dim


@pytest.mark.parametrize("dtype", TRAIN_TYPES)
def test_sgd_steps_train_the_same_weights(dtype):
    theirs, ours = _pair(dtype, seed=11, dim=16, padding_idx=2)
    opt_theirs = torch.optim.SGD(theirs.parameters(), lr=0.1)
    opt_ours = torch.optim.SGD(ours.parameters(), lr=0.1)
    gen = torch.Generator().manual_seed(3)
    for _ in range(5):
        indices = torch.randint(0, 31, (8, 6), generator=gen)
        for module, opt in ((theirs, opt_theirs), (ours, opt_ours)):
            opt.zero_grad()
            module(indices).float().pow(2).sum().backward()
            opt.step()
    assert same_bits(ours.weight.detach(), theirs.weight.detach())


def test_float64_embedding_passes_gradcheck():
    weight = torch.randn(6, 3, dtype=torch.float64, requires_grad=True)
    indices = torch.tensor([[0, 2, 2], [5, 1, 0]])
    assert torch.autograd.gradcheck(lambda w: ent.embedding(indices, w), (weight,))


@pytest.mark.parametrize("dtype", NUMPY_TYPES)
def test_numpy_gradients_of_every_type(dtype):
    rng = np.random.default_rng(4)
    grad = rng.standard_normal((9, 6)).astype(dtype)
    indices = np.array([1, 4, 4, 0, 8, 4, 1, 1, 3])
    expected = torch.ops.aten.embedding_dense_backward(torch.from_numpy(grad), torch.from_numpy(indices), 10, -1, True)
    ours = F.embedding_backward(grad, indices, 10, scale_grad_by_freq=True)
    assert ours.dtype == grad.dtype and ours.tobytes() == expected.numpy().tobytes()
    rows, values = F.embedding_sparse_backward(grad, indices, 10, padding_idx=4)
    assert values.dtype == grad.dtype and rows.tolist() == [1, 0, 8, 1, 1, 3]


# ---- EmbeddingBag forward of float64 and float16 tables ---------------------------------------------

BAG_TYPES = [torch.float64, torch.float16]


@pytest.mark.parametrize("dtype", BAG_TYPES)
@pytest.mark.parametrize("mode", ["sum", "mean", "max"])
@pytest.mark.parametrize("padding_idx", [None, 7])
@pytest.mark.parametrize("dim", [1, 8, 33, 64])
def test_bag_forward_is_bit_identical(dtype, mode, padding_idx, dim):
    gen = torch.Generator().manual_seed(dim)
    weight = torch.randn(50, dim, generator=gen).to(dtype)
    # Long bags: float16 accumulates in float32 and rounds once, as torch does.
    indices = torch.randint(0, 50, (300,), generator=gen)
    for include_last_offset in (False, True):
        # With include_last_offset the last offset is the input's length: anything else reads past
        # the indices in torch 1.13 (a heap overflow; see the spec's crash list).
        offsets = torch.tensor([0, 3, 3, 40, 100, 300 if include_last_offset else 299])
        expected = torch.nn.functional.embedding_bag(indices, weight, offsets, mode=mode, padding_idx=padding_idx,
                                                     include_last_offset=include_last_offset)
        assert same_bits(ent.embedding_bag(indices, weight, offsets, mode=mode, padding_idx=padding_idx,
                                           include_last_offset=include_last_offset), expected)
        assert same_bits(F.embedding_bag(indices, weight, offsets, mode=mode, padding_idx=padding_idx,
                                         include_last_offset=include_last_offset), expected)


@pytest.mark.parametrize("dtype", BAG_TYPES)
@pytest.mark.parametrize("padding_idx", [None, 2])
def test_weighted_bag_is_bit_identical(dtype, padding_idx):
    gen = torch.Generator().manual_seed(9)
    weight = torch.randn(20, 24, generator=gen).to(dtype)
    indices = torch.randint(0, 20, (6, 25), generator=gen)
    psw = torch.rand(6, 25, generator=gen).to(dtype)
    expected = torch.nn.functional.embedding_bag(indices, weight, mode="sum", per_sample_weights=psw,
                                                 padding_idx=padding_idx)
    assert same_bits(ent.embedding_bag(indices, weight, mode="sum", per_sample_weights=psw, padding_idx=padding_idx),
                     expected)
    numpy_result = F.embedding_bag(indices.numpy(), weight.numpy(), mode="sum", per_sample_weights=psw.numpy(),
                                   padding_idx=padding_idx)
    assert numpy_result.tobytes() == expected.numpy().tobytes()


def test_bag_refusals_are_torch_s():
    # torch 1.13 has no bfloat16 EmbeddingBag on the CPU; per_sample_weights must have the table's type.
    weight = torch.randn(5, 3)
    for args in ((weight.bfloat16(), None), (weight.double(), torch.ones(2)), (weight.half(), torch.ones(2).double())):
        with pytest.raises(RuntimeError) as theirs:
            torch.nn.functional.embedding_bag(torch.tensor([1, 2]), args[0], torch.tensor([0]), mode="sum",
                                              per_sample_weights=args[1])
        with pytest.raises(RuntimeError) as ours:
            ent.embedding_bag(torch.tensor([1, 2]), args[0], torch.tensor([0]), mode="sum", per_sample_weights=args[1])
        assert str(ours.value) == str(theirs.value)


@pytest.mark.parametrize("dtype", BAG_TYPES)
@pytest.mark.parametrize("mode", ["sum", "mean", "max"])
def test_bag_module_trains_like_torch(dtype, mode):
    torch.manual_seed(2)
    theirs = torch.nn.EmbeddingBag(30, 12, mode=mode, dtype=dtype)
    ours = ent.EmbeddingBag.from_pretrained(theirs.weight.detach().clone(), freeze=False, mode=mode)
    gen = torch.Generator().manual_seed(4)
    indices = torch.randint(0, 30, (6, 9), generator=gen) % 7
    grad = torch.randn(6, 12, generator=gen).to(dtype)
    out_theirs, out_ours = theirs(indices), ours(indices)
    assert same_bits(out_ours, out_theirs)
    out_theirs.backward(grad)
    out_ours.backward(grad)
    # every mode bit for bit: sum / mean add a row's duplicates in torch's sort order (docs/exactness.md)
    assert same_bits(ours.weight.grad, theirs.weight.grad)


@pytest.mark.parametrize("dtype", BAG_TYPES)
def test_bag_per_sample_weights_gradient_is_bit_identical(dtype):
    gen = torch.Generator().manual_seed(6)
    weight = torch.randn(20, 10, generator=gen).to(dtype)
    indices = torch.randint(0, 20, (5, 8), generator=gen)
    psw = torch.rand(5, 8, generator=gen).to(dtype)
    grads = []
    for bag in (torch.nn.functional.embedding_bag, ent.embedding_bag):
        w, p = weight.clone().requires_grad_(), psw.clone().requires_grad_()
        bag(indices, w, mode="sum", per_sample_weights=p).backward(torch.ones(5, 10, dtype=dtype))
        grads.append((w.grad, p.grad))
    # The per_sample_weights gradient is exact (a sequential dot per position); the weight's is
    # test_bag_module_trains_like_torch's.
    assert same_bits(grads[1][1], grads[0][1])


# ---- the numpy modules ---------------------------------------------------------------------------

import embedding_native as en  # noqa: E402


@pytest.mark.parametrize("dtype", [np.float64, np.float16])
def test_numpy_embedding_module_of_every_numpy_type(dtype):
    module = en.Embedding(12, 7, padding_idx=2, dtype=dtype, rng=np.random.default_rng(0))
    assert module.weight.dtype == dtype and not module.weight[2].any()
    indices = np.array([[2, 11], [0, 0]])
    assert module(indices).tobytes() == module.weight[indices].tobytes()
    pretrained = en.Embedding.from_pretrained(module.weight.copy())
    assert pretrained.weight.dtype == dtype
