"""Every error path: the same exception type as torch 1.13, torch's text first, nothing written."""

import pickle

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import embedding_native as en
from embedding_native import errors
from helpers import assert_same_error, raised, table

W = table(4, 3)


def both(idx_np, w_np=W, **kwargs):
    """(torch call, our call) on the same numpy input."""
    return (lambda: F.embedding(torch.from_numpy(idx_np), torch.from_numpy(w_np), **kwargs),
            lambda: en.embedding(idx_np, w_np, **kwargs))


# ---- indices --------------------------------------------------------------------------------------


OUT_OF_RANGE = [(index, dtype) for dtype in (np.int32, np.int64)
                for index in (4, 5, 1000, -1, -4, -5, np.iinfo(dtype).max, np.iinfo(dtype).min)]


@pytest.mark.parametrize("index,dtype", OUT_OF_RANGE, ids=lambda v: getattr(v, "__name__", str(v)))
def test_out_of_range_index(index, dtype):
    idx = np.array([0, 1, index, 2], dtype=dtype)
    _, ours = assert_same_error(*both(idx))
    assert isinstance(ours, en.EmbeddingIndexError)
    assert str(ours).startswith("index out of range in self (")
    assert ours.status == errors.EMB_ERROR_INDEX_OUT_OF_RANGE
    assert ours.status_name == "EMB_ERROR_INDEX_OUT_OF_RANGE"
    assert str(index) in ours.detail and "position 2" in ours.detail


@pytest.mark.parametrize("shape", [(), (1,), (2, 2), (1, 2, 2)], ids=str)
def test_out_of_range_any_shape(shape):
    idx = np.full(shape, 4, dtype=np.int64)
    assert_same_error(*both(idx))


def test_out_of_range_through_torch_tensors():
    idx = torch.tensor([[0, 7]])
    assert_same_error(lambda: F.embedding(idx, torch.from_numpy(W)), lambda: en.embedding(idx, torch.from_numpy(W)))


@pytest.mark.parametrize("idx", [[4], [-1], [1, 7, 9]], ids=str)
def test_zero_columns_still_checks_indices(idx):
    w = np.zeros((4, 0), np.float32)
    theirs, ours = assert_same_error(*both(np.array(idx), w))
    assert str(ours) == str(theirs)  # torch's zero-width path: "INDICES element is out of DATA bounds, ..."
    ours = raised(lambda: en.embedding(torch.tensor(idx, dtype=torch.int32), torch.from_numpy(w)))
    assert str(ours) == str(theirs)


# numpy dtype -> torch dtype, for every index type torch 1.13 refuses (message compared exactly).
BAD_INDEX_DTYPES = [(np.int8, torch.int8), (np.uint8, torch.uint8), (np.int16, torch.int16),
                    (np.float16, torch.float16), (np.float32, torch.float32), (np.float64, torch.float64),
                    (np.bool_, torch.bool), (np.complex64, torch.complex64), (np.complex128, torch.complex128)]


@pytest.mark.parametrize("np_dtype,torch_dtype", BAD_INDEX_DTYPES, ids=lambda d: str(d))
def test_index_dtype_numpy(np_dtype, torch_dtype):
    idx = np.zeros(2, dtype=np_dtype)
    theirs, ours = assert_same_error(lambda: F.embedding(torch.zeros(2, dtype=torch_dtype), torch.from_numpy(W)),
                                     lambda: en.embedding(idx, W))
    assert str(ours) == str(theirs)
    assert isinstance(ours, en.EmbeddingRuntimeError)


@pytest.mark.parametrize("torch_dtype", [d for _, d in BAD_INDEX_DTYPES] + [torch.bfloat16], ids=str)
def test_index_dtype_torch(torch_dtype):
    idx = torch.zeros(2, dtype=torch_dtype)
    theirs, ours = assert_same_error(lambda: F.embedding(idx, torch.from_numpy(W)),
                                     lambda: en.embedding(idx, torch.from_numpy(W)))
    assert str(ours) == str(theirs)


def test_index_dtype_without_torch_counterpart():
    ours = raised(lambda: en.embedding(np.zeros(2, np.uint32), W))
    assert isinstance(ours, RuntimeError)
    assert "but got numpy.uint32 instead" in str(ours)


def test_input_must_be_an_array():
    assert_same_error(lambda: F.embedding([1], torch.from_numpy(W)), lambda: en.embedding([1], W), same_message=False)


# ---- weight ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("shape", [(), (4,), (2, 2, 3)], ids=str)
def test_weight_must_be_2d(shape):
    w = np.zeros(shape, np.float32)
    theirs, ours = assert_same_error(*both(np.array([0]), w))
    assert str(ours) == str(theirs) == "'weight' must be 2-D"


def test_weight_rank_checked_before_index_dtype():
    w = np.zeros(4, np.float32)
    theirs, ours = assert_same_error(*both(np.array([0.0]), w))
    assert str(ours) == "'weight' must be 2-D"


def test_empty_table_with_indices():
    w = np.zeros((0, 3), np.float32)
    theirs, ours = assert_same_error(*both(np.array([0]), w))
    assert str(ours) == str(theirs) == "index_select(): self indexing axis dim should be positive"


def test_empty_table_checks_index_dtype_first():
    w = np.zeros((0, 3), np.float32)
    theirs, ours = assert_same_error(*both(np.array([0.0], np.float32), w))
    assert str(ours) == str(theirs)


@pytest.mark.parametrize("dtype", [np.float64, np.float16, np.int32, np.int64])
def test_weight_dtype_not_supported(dtype):
    w = np.arange(12).reshape(4, 3).astype(dtype)
    ours = raised(lambda: en.embedding(np.array([1]), w))
    assert isinstance(ours, en.EmbeddingNotSupportedError) and isinstance(ours, NotImplementedError)
    assert "float32 only in this version" in str(ours)
    ours = raised(lambda: en.embedding(torch.tensor([1]), torch.from_numpy(w)))
    assert isinstance(ours, en.EmbeddingNotSupportedError)


def test_weight_must_be_an_array():
    assert_same_error(lambda: F.embedding(torch.tensor([1]), W), lambda: en.embedding(np.array([1]), W.tolist()),
                      same_message=False)


# ---- padding_idx, max_norm ------------------------------------------------------------------------


@pytest.mark.parametrize("padding_idx", [4, 5, -5, -6, 100])
def test_padding_idx_out_of_range(padding_idx):
    theirs, ours = assert_same_error(*both(np.array([1]), padding_idx=padding_idx))
    assert isinstance(ours, en.PaddingIndexError) and isinstance(ours, AssertionError)
    assert str(ours).startswith("Padding_idx must be within num_embeddings")
    assert ours.status == errors.EMB_ERROR_INDEX_OUT_OF_RANGE


def test_padding_idx_checked_before_indices():
    assert_same_error(*both(np.array([9]), padding_idx=9))


def test_padding_idx_on_0d_weight():
    w = np.zeros((), np.float32)
    assert_same_error(*both(np.array([0]), w, padding_idx=1))
    assert_same_error(*both(np.array([0]), w, padding_idx=0))


def test_max_norm_bad_index_is_an_index_error():
    # torch raises IndexError from the renorm ("select(): index 4 out of range ..."), after
    # renormalising the rows sorted before it; we raise IndexError before changing any row.
    w = W.copy()
    assert_same_error(lambda: F.embedding(torch.tensor([0, 4]), torch.from_numpy(W.copy()), max_norm=0.5),
                      lambda: en.embedding(np.array([0, 4]), w, max_norm=0.5), same_message=False)
    assert np.array_equal(w, W)


def test_max_norm_checks_come_first():
    # With max_norm, torch's renorm reports a 1-D weight or a float index in its own words.
    for idx, w in ((np.array([1]), np.ones(3, np.float32)), (np.array([1.0]), W)):
        theirs, ours = assert_same_error(*both(idx, w, max_norm=1.0))
        assert str(ours) == str(theirs) and "embedding_renorm_" in str(ours)


# ---- out= -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("make_out", [
    lambda: np.empty((2, 3), np.float64),
    lambda: np.empty((3, 3), np.float32),
    lambda: np.empty((2, 4), np.float32),
    lambda: np.empty((3, 2), np.float32).T,
    lambda: np.broadcast_to(np.empty(3, np.float32), (2, 3)),
    lambda: torch.empty(2, 3, dtype=torch.float64),
    lambda: torch.empty(3, 2).t(),
    lambda: torch.empty(2, 3, requires_grad=True),
    lambda: torch.empty(6),
], ids=["f64", "rows", "cols", "transposed", "read-only", "torch-f64", "torch-transposed", "torch-grad",
        "torch-flat"])
def test_invalid_out(make_out):
    out = make_out()
    ours = raised(lambda: en.embedding(np.array([0, 1]), W, out=out))
    assert isinstance(ours, en.EmbeddingRuntimeError)


def test_out_of_wrong_type():
    assert isinstance(raised(lambda: en.embedding(np.array([0]), W, out=[0.0] * 3)), TypeError)


def test_failed_call_writes_nothing():
    out = np.full((5, 3), 7.0, np.float32)
    ours = raised(lambda: en.embedding(np.array([0, 1, 2, 3, 4]), W, out=out))
    assert isinstance(ours, IndexError)
    assert np.all(out == 7.0)


def test_out_overlapping_weight():
    w = table(4, 3)
    ours = raised(lambda: en.embedding(np.array([0, 1]), w, out=w[:2]))
    assert isinstance(ours, en.EmbeddingRuntimeError)
    assert ours.status == errors.EMB_ERROR_INVALID_ARGUMENT


# ---- module -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("padding_idx", [4, 5, -5])
def test_module_padding_idx_out_of_range(padding_idx):
    theirs, ours = assert_same_error(lambda: torch.nn.Embedding(4, 3, padding_idx=padding_idx),
                                     lambda: en.Embedding(4, 3, padding_idx=padding_idx))
    assert str(ours).startswith(str(theirs))


@pytest.mark.parametrize("shape", [(-1, 3), (4, -3)])
def test_module_negative_size(shape):
    theirs, ours = assert_same_error(lambda: torch.nn.Embedding(*shape), lambda: en.Embedding(*shape))
    assert str(ours) == str(theirs)


def test_module_empty_table_with_padding():
    assert_same_error(lambda: torch.nn.Embedding(0, 3, padding_idx=0), lambda: en.Embedding(0, 3, padding_idx=0),
                      same_message=False)


def test_module_weight_shape_mismatch():
    theirs, ours = assert_same_error(lambda: torch.nn.Embedding(5, 3, _weight=torch.from_numpy(W)),
                                     lambda: en.Embedding(5, 3, _weight=W))
    assert str(ours) == "Shape of weight does not match num_embeddings and embedding_dim"


@pytest.mark.parametrize("shape", [(4,), (2, 2, 3)], ids=str)
def test_from_pretrained_needs_2d(shape):
    w = np.zeros(shape, np.float32)
    theirs, ours = assert_same_error(lambda: torch.nn.Embedding.from_pretrained(torch.from_numpy(w)),
                                     lambda: en.Embedding.from_pretrained(w))
    assert str(ours) == "Embeddings parameter is expected to be 2-dimensional"


def test_module_forward_out_of_range():
    module = en.Embedding.from_pretrained(W)
    reference = torch.nn.Embedding.from_pretrained(torch.from_numpy(W))
    assert_same_error(lambda: reference(torch.tensor([4])), lambda: module(np.array([4])))


def test_module_max_norm_bad_index():
    module = en.Embedding.from_pretrained(W.copy(), max_norm=1.0)
    reference = torch.nn.Embedding.from_pretrained(torch.from_numpy(W.copy()), max_norm=1.0)
    assert_same_error(lambda: reference(torch.tensor([4])), lambda: module(np.array([4])), same_message=False)


def test_module_dtype_not_supported():
    assert isinstance(raised(lambda: en.Embedding(4, 3, dtype=np.float64)), en.EmbeddingNotSupportedError)
    assert en.Embedding(4, 3, dtype=torch.float32).weight.dtype == np.float32
    assert en.Embedding(4, 3, dtype="float32").weight.dtype == np.float32


# ---- the exception classes --------------------------------------------------------------------------


def test_status_mapping():
    cases = {errors.EMB_ERROR_INDEX_OUT_OF_RANGE: en.EmbeddingIndexError,
             errors.EMB_ERROR_UNSUPPORTED_DTYPE: en.EmbeddingNotSupportedError,
             errors.EMB_ERROR_NOT_SUPPORTED: en.EmbeddingNotSupportedError,
             errors.EMB_ERROR_INVALID_ARGUMENT: en.EmbeddingRuntimeError,
             errors.EMB_ERROR_NULL_POINTER: en.EmbeddingRuntimeError,
             errors.EMB_ERROR_SIZE_OVERFLOW: en.EmbeddingRuntimeError,
             errors.EMB_ERROR_BUFFER_TOO_SMALL: en.EmbeddingRuntimeError,
             errors.EMB_ERROR_INTERNAL: en.EmbeddingRuntimeError}
    for status, cls in cases.items():
        assert type(errors.error_for_status(status, "NAME", "detail")) is cls
    padding = errors.error_for_status(errors.EMB_ERROR_INDEX_OUT_OF_RANGE, "NAME", "detail", "padding_idx")
    assert type(padding) is en.PaddingIndexError


def test_every_error_is_an_embedding_error():
    for cls in (en.EmbeddingIndexError, en.PaddingIndexError, en.EmbeddingNotSupportedError, en.EmbeddingRuntimeError):
        assert issubclass(cls, en.EmbeddingError)


def test_errors_pickle():
    e = raised(lambda: en.embedding(np.array([9]), W))
    copy = pickle.loads(pickle.dumps(e))
    assert type(copy) is type(e) and str(copy) == str(e) and copy.status == e.status
