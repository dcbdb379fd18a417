"""embedding_native.embedding against torch.nn.functional.embedding: values bit for bit."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import embedding_native as en
from helpers import ALL_DIMS, SPECIAL_BITS, bits, indices, table, torch_embedding

INDEX_DTYPES = [np.int32, np.int64]
SHAPES = [(), (0,), (0, 3), (3, 0), (1,), (7,), (4, 5), (2, 3, 4)]


@pytest.mark.parametrize("index_dtype", INDEX_DTYPES)
@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_shapes_match_torch(shape, index_dtype):
    w = table(11, 6)
    idx = indices(shape, 11, index_dtype)
    ours = en.embedding(idx, w)
    expected = torch_embedding(idx, w)
    assert isinstance(ours, np.ndarray)
    assert ours.shape == expected.shape == shape + (6,)
    assert ours.dtype == np.float32
    assert np.array_equal(bits(ours), bits(expected))


@pytest.mark.parametrize("index_dtype", INDEX_DTYPES)
@pytest.mark.parametrize("dim", ALL_DIMS)
def test_every_dim_matches_torch(dim, index_dtype):
    num_embeddings = 37
    w = table(num_embeddings, dim, seed=dim)
    idx = indices((5, 9), num_embeddings, index_dtype, seed=dim)
    ours = en.embedding(idx, w)
    assert np.array_equal(bits(ours), bits(torch_embedding(idx, w)))
    assert np.array_equal(bits(ours), bits(w)[idx])


@pytest.mark.parametrize("dim", [1, 5, 16, 300, 768])
def test_special_values_preserved_bit_for_bit(dim):
    w = np.zeros((len(SPECIAL_BITS), dim), dtype=np.float32)
    w.view(np.uint32)[:] = SPECIAL_BITS[:, None]
    idx = np.arange(len(SPECIAL_BITS))[::-1].copy()
    ours = en.embedding(idx, w)
    assert np.array_equal(bits(ours), SPECIAL_BITS[idx][:, None].repeat(dim, axis=1))
    assert np.array_equal(bits(ours), bits(torch_embedding(idx, w)))


def test_all_same_index_and_boundaries():
    w = table(9, 33)
    for idx in (np.zeros(50, np.int64), np.full(50, 8, np.int32), np.array([0, 8, 0, 8])):
        assert np.array_equal(bits(en.embedding(idx, w)), bits(torch_embedding(idx, w)))


def test_large_table_and_many_indices():
    w = table(50_000, 64, specials=False)
    idx = indices((8192,), 50_000)
    assert np.array_equal(bits(en.embedding(idx, w)), bits(torch_embedding(idx, w)))


def test_zero_columns():
    w = np.zeros((4, 0), np.float32)
    ours = en.embedding(np.array([1, 2]), w)
    assert ours.shape == (2, 0) == tuple(F.embedding(torch.tensor([1, 2]), torch.zeros(4, 0)).shape)


def test_empty_table_with_empty_input():
    w = np.zeros((0, 3), np.float32)
    ours = en.embedding(np.zeros((0,), np.int64), w)
    assert ours.shape == (0, 3) == tuple(F.embedding(torch.zeros(0, dtype=torch.long), torch.zeros(0, 3)).shape)


@pytest.mark.parametrize("padding_idx", [0, 2, -1, -5, 4])
def test_padding_row_returned_as_stored(padding_idx):
    w = table(5, 4)
    idx = np.array([0, 1, 2, 3, 4, 2])
    ours = en.embedding(idx, w, padding_idx=padding_idx)
    assert np.array_equal(bits(ours), bits(w)[idx])
    assert np.array_equal(bits(ours), bits(torch_embedding(idx, w, padding_idx=padding_idx)))


def test_gradient_only_arguments_accepted():
    w = table(6, 3)
    idx = np.array([[1, 5], [0, 0]])
    ours = en.embedding(idx, w, norm_type=1.0, scale_grad_by_freq=True, sparse=True)
    expected = torch_embedding(idx, w, norm_type=1.0, scale_grad_by_freq=True, sparse=True)
    assert np.array_equal(bits(ours), bits(expected))


def test_numpy_scalar_index():
    w = table(6, 3)
    ours = en.embedding(np.int64(4), w)
    assert ours.shape == (3,)
    assert np.array_equal(bits(ours), bits(w[4]))


def test_result_is_fresh_and_not_aliased():
    w = table(6, 3)
    ours = en.embedding(np.array([1]), w)
    ours[...] = 42
    assert not np.any(w == 42)


# ---- torch tensors -----------------------------------------------------------------------------


@pytest.mark.parametrize("index_dtype", [torch.int32, torch.int64])
@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_torch_tensors_match_torch(shape, index_dtype):
    w = torch.from_numpy(table(13, 7))
    idx = torch.from_numpy(indices(shape, 13)).to(index_dtype)
    ours = en.embedding(idx, w)
    expected = F.embedding(idx, w)
    assert isinstance(ours, torch.Tensor)
    assert ours.dtype == torch.float32 and tuple(ours.shape) == tuple(expected.shape)
    assert ours.is_contiguous()
    assert np.array_equal(bits(ours), bits(expected))


def test_torch_parameter_weight():
    torch.manual_seed(0)
    module = torch.nn.Embedding(10, 5, padding_idx=2)
    idx = torch.tensor([[1, 2, 4], [9, 0, 2]])
    ours = en.embedding(idx, module.weight, padding_idx=module.padding_idx)
    assert not ours.requires_grad
    assert np.array_equal(bits(ours), bits(module(idx)))


def test_torch_out_buffer_is_written_in_place():
    w = torch.from_numpy(table(10, 8))
    idx = torch.tensor([[3, 1], [9, 0]])
    out = torch.empty(2, 2, 8)
    pointer = out.data_ptr()
    result = en.embedding(idx, w, out=out)
    assert result is out and result.data_ptr() == pointer
    assert np.array_equal(bits(out), bits(F.embedding(idx, w)))


def test_numpy_out_buffer_is_written_in_place():
    w = table(10, 8)
    idx = np.array([3, 1, 9])
    out = np.empty((3, 8), np.float32)
    pointer = out.ctypes.data
    result = en.embedding(idx, w, out=out)
    assert result is out and result.ctypes.data == pointer
    assert np.array_equal(bits(out), bits(torch_embedding(idx, w)))


def test_mixed_kinds_follow_the_weight():
    w = table(10, 4)
    idx = np.array([1, 2])
    from_tensor_indices = en.embedding(torch.from_numpy(idx), w)
    from_tensor_weight = en.embedding(idx, torch.from_numpy(w))
    assert isinstance(from_tensor_indices, np.ndarray)
    assert isinstance(from_tensor_weight, torch.Tensor)
    assert np.array_equal(bits(from_tensor_indices), bits(from_tensor_weight))


def test_numpy_out_into_torch_result_kind():
    w = torch.from_numpy(table(10, 4))
    out = np.empty((2, 4), np.float32)
    assert en.embedding(torch.tensor([0, 9]), w, out=out) is out
    assert np.array_equal(bits(out), bits(w[[0, 9]]))


# ---- non-contiguous inputs ---------------------------------------------------------------------


def test_non_contiguous_numpy_indices():
    w = table(20, 5)
    base = indices((6, 8), 20, np.int64)
    for idx in (base.T, base[:, ::3], base[::-1], np.broadcast_to(base[0], (4, 8))):
        assert not idx.flags.c_contiguous
        assert np.array_equal(bits(en.embedding(idx, w)), bits(torch_embedding(idx, w)))


def test_non_contiguous_torch_indices():
    w = torch.from_numpy(table(20, 5))
    base = torch.from_numpy(indices((6, 8), 20, np.int32))
    for idx in (base.t(), base[:, ::3], base[0].expand(4, 8)):
        assert not idx.is_contiguous()
        assert np.array_equal(bits(en.embedding(idx, w)), bits(F.embedding(idx, w)))


def test_non_contiguous_weights():
    base = table(12, 30)
    idx = np.array([[0, 4], [11, 4]])
    for w in (base.T.copy().T, base[:, ::2], base[::2], base[:, 3:20]):
        assert np.array_equal(bits(en.embedding(idx % w.shape[0], w)),
                              bits(torch_embedding(idx % w.shape[0], np.ascontiguousarray(w))))
        wt = torch.from_numpy(np.ascontiguousarray(w)).t().contiguous().t()
        ours = en.embedding(torch.from_numpy(idx % w.shape[0]), wt)
        assert np.array_equal(bits(ours), bits(F.embedding(torch.from_numpy(idx % w.shape[0]), wt)))


def test_byte_swapped_indices():
    w = table(10, 3)
    idx = np.array([9, 0, 5], dtype=">i8")
    assert np.array_equal(bits(en.embedding(idx, w)), bits(w)[[9, 0, 5]])


def test_tensor_with_storage_offset():
    w = torch.from_numpy(table(16, 6))
    idx = (torch.arange(20) % 16)[4:10]
    rows = w[3:13]
    assert rows.storage_offset() != 0 and idx.storage_offset() != 0
    assert np.array_equal(bits(en.embedding(idx, rows)), bits(F.embedding(idx, rows)))


# ---- package-level ------------------------------------------------------------------------------


def test_build_info():
    info = en.build_info()
    assert info["tier"] in ("x86-64-v2", "x86-64-v3", "x86-64-v4")
    assert info["vector_width"] == {"x86-64-v2": 128, "x86-64-v3": 256, "x86-64-v4": 512}[info["tier"]]
    assert info["library_path"].endswith("libembedding_native.so")
    assert info["version"] == en.__version__
    assert info["selected_by"] in ("cpu", "EMBEDDING_NATIVE_TIER", "EMBEDDING_NATIVE_LIBRARY")
    # The torch kernel set the library follows is the one this process's torch runs.
    used = torch.__config__.show().split("CPU capability usage: ")[1].split()[0]
    assert info["torch_kernels"] == {"AVX2": "avx2", "AVX512": "avx512"}.get(used, "default")
    assert info["fused_products"] == (info["torch_kernels"] != "default")
    # torch's weighted lookups fuse on a CPU with AVX2 and FMA, which every x86-64-v3 CPU has.
    assert isinstance(info["fused_lookups"], bool)
    assert info["fused_lookups"] or info["cpu_tier"] == "x86-64-v2"


def test_package_never_binds_torch():
    assert getattr(en, "torch", None) is not torch
