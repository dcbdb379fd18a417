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
    # The bag backward takes float32 only for now; the library names what it takes.
    with pytest.raises(NotImplementedError, match="float32"):
        F.embedding_bag_backward(torch.zeros(1, 4, dtype=torch.float64), torch.tensor([1, 2]), 6,
                                 torch.tensor([0]), mode="sum")
