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


@pytest.mark.parametrize("dtype", [np.int32, np.int64, np.bool_])
def test_weight_dtype_not_supported(dtype):
    # The lookup takes every float table type (test_table_types.py); torch also copies integer tables.
    w = np.arange(12).reshape(4, 3).astype(dtype)
    ours = raised(lambda: en.embedding(np.array([1]), w))
    assert isinstance(ours, en.EmbeddingNotSupportedError) and isinstance(ours, NotImplementedError)
    assert "float32, float64, float16 and bfloat16 tables" in str(ours)
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
    assert isinstance(raised(lambda: en.Embedding(4, 3, dtype=np.int32)), en.EmbeddingNotSupportedError)
    assert isinstance(raised(lambda: en.Embedding(4, 3, dtype=torch.bfloat16)), en.EmbeddingNotSupportedError)
    assert en.Embedding(4, 3, dtype=torch.float64).weight.dtype == np.float64
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


# ---- sparse tensors: torch's result or torch's error ------------------------------------------------


import warnings  # noqa: E402

import embedding_native.functional as ef  # noqa: E402
import embedding_native.torch as et  # noqa: E402

TW = torch.from_numpy(table(5, 2, specials=False))
LOOKUPS = {"drop-in": et.embedding, "functional": ef.embedding}


def to_csr(t):
    """``t.to_sparse_csr()`` without torch's "support is in beta" warning."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return t.to_sparse_csr()


def sparse_table():
    """A sparse COO table with an all-zero row (absent from its entries)."""
    w = TW.clone()
    w[2] = 0
    return w.to_sparse()


SPARSE_INDEX_CASES = {
    "1d": dict(input=torch.tensor([1, 2, 0]).to_sparse()),
    "1d-int32": dict(input=torch.tensor([1, 2, 0], dtype=torch.int32).to_sparse()),
    "2d": dict(input=torch.tensor([[1, 0], [2, 3]]).to_sparse()),
    "0d": dict(input=torch.tensor(1).to_sparse()),
    "float": dict(input=torch.tensor([1.0, 2.0]).to_sparse()),
    "csr": dict(input=to_csr(torch.tensor([[1, 0], [2, 3]]))),
    "padding": dict(input=torch.tensor([1, 2, 0]).to_sparse(), padding_idx=1),
    "max_norm": dict(input=torch.tensor([1, 2, 0]).to_sparse(), max_norm=1.0),
    "both-sparse": dict(input=torch.tensor([1, 2]).to_sparse(), weight=sparse_table()),
}


@pytest.mark.parametrize("lookup", list(LOOKUPS))
@pytest.mark.parametrize("name", list(SPARSE_INDEX_CASES))
def test_sparse_indices_raise_torchs_error(lookup, name):
    # torch: index_select refuses a sparse index (IndexError), reshape/view a sparse one of other
    # ranks (RuntimeError), the renorm has no sparse kernel (NotImplementedError).
    kwargs = dict(SPARSE_INDEX_CASES[name])
    idx, weight = kwargs.pop("input"), kwargs.pop("weight", TW)
    theirs, ours = assert_same_error(lambda: F.embedding(idx, weight.clone(), **kwargs),
                                     lambda: LOOKUPS[lookup](idx, weight.clone(), **kwargs), same_message=False)
    assert str(ours).startswith(str(theirs).split(" This could be")[0])


def test_sparse_indices_into_a_numpy_table():
    assert_same_error(lambda: F.embedding(torch.tensor([1, 2]).to_sparse(), TW),
                      lambda: en.embedding(torch.tensor([1, 2]).to_sparse(), TW.numpy()))


def same_sparse(a, b):
    return (a.layout == b.layout == torch.sparse_coo and a.shape == b.shape and a.is_coalesced() == b.is_coalesced()
            and torch.equal(a._indices(), b._indices()) and torch.equal(a._values(), b._values()))


@pytest.mark.parametrize("lookup", list(LOOKUPS))
@pytest.mark.parametrize("idx", [[1, 2, 4, 1], [-1, 3], []], ids=str)
@pytest.mark.parametrize("kwargs", [dict(), dict(padding_idx=1), dict(sparse=True), dict(scale_grad_by_freq=True)],
                         ids=str)
def test_sparse_weight_gives_torchs_sparse_result(lookup, idx, kwargs):
    # torch computes these: index_select on the sparse table, a sparse result (rows of the
    # all-zero row have no entries; -1 wraps, as index_select on a sparse table does).
    idx = torch.tensor(idx, dtype=torch.int64)
    expected = F.embedding(idx, sparse_table(), **kwargs)
    got = LOOKUPS[lookup](idx, sparse_table(), **kwargs)
    assert same_sparse(got, expected)


def test_sparse_weight_gradient_is_torchs():
    # A sparse table that requires grad: torch's node; its backward has no sparse kernel either.
    for kwargs in (dict(), dict(sparse=True)):
        w_theirs, w_ours = sparse_table().requires_grad_(), sparse_table().requires_grad_()
        theirs, ours = F.embedding(torch.tensor([1, 2]), w_theirs, **kwargs), et.embedding(torch.tensor([1, 2]), w_ours,
                                                                                            **kwargs)
        assert same_sparse(ours.detach(), theirs.detach()) and ours.requires_grad
        assert type(ours.grad_fn).__name__ == type(theirs.grad_fn).__name__
        assert_same_error(lambda: torch.sparse.sum(theirs).backward(), lambda: torch.sparse.sum(ours).backward())


@pytest.mark.parametrize("lookup", list(LOOKUPS))
@pytest.mark.parametrize("kwargs", [dict(input=torch.tensor([[1, 2], [0, 4]])), dict(input=torch.tensor(3)),
                                    dict(input=torch.tensor([1, 2], dtype=torch.int32)), dict(input=torch.tensor([7])),
                                    dict(input=torch.tensor([1.0])), dict(input=torch.tensor([1]), max_norm=1.0),
                                    dict(input=torch.tensor([1]), weight=torch.ones(5).to_sparse()),
                                    dict(input=torch.tensor([1]), weight=to_csr(TW))],
                         ids=["2d", "0d", "int32", "out-of-range", "float", "max_norm", "1d-table", "csr"])
def test_sparse_weight_errors_are_torchs(lookup, kwargs):
    kwargs = dict(kwargs)
    idx, weight = kwargs.pop("input"), kwargs.pop("weight", None)
    make = sparse_table if weight is None else weight.clone
    theirs, ours = assert_same_error(lambda: F.embedding(idx, make(), **kwargs),
                                     lambda: LOOKUPS[lookup](idx, make(), **kwargs), same_message=False)
    assert str(ours).startswith(str(theirs).split(" This could be")[0])


def test_modules_with_a_sparse_table():
    for freeze in (True, False):
        reference = torch.nn.Embedding.from_pretrained(sparse_table(), freeze=freeze)
        ours = et.Embedding.from_pretrained(sparse_table(), freeze=freeze)
        assert same_sparse(ours(torch.tensor([1, 3])).detach(), reference(torch.tensor([1, 3])).detach())
    assert_same_error(lambda: torch.nn.Embedding(5, 2)(torch.tensor([1]).to_sparse()),
                      lambda: et.Embedding(5, 2)(torch.tensor([1]).to_sparse()))
    assert_same_error(lambda: torch.nn.Embedding(5, 2)(torch.tensor([1]).to_sparse()),
                      lambda: en.Embedding(5, 2)(torch.tensor([1]).to_sparse()))


def test_out_cannot_hold_a_sparse_result():
    ours = raised(lambda: ef.embedding(torch.tensor([1]), sparse_table(), out=torch.empty(1, 2)))
    assert isinstance(ours, en.EmbeddingRuntimeError)


@pytest.mark.parametrize("call", [
    lambda s: ef.embedding_backward(torch.ones(2, 2), s(torch.tensor([1, 2])), 5),
    lambda s: ef.embedding_backward(s(torch.ones(2, 2)), torch.tensor([1, 2]), 5),
    lambda s: ef.embedding_sparse_backward(torch.ones(2, 2), s(torch.tensor([1, 2])), 5),
    lambda s: ef.sparse_coalesce(s(torch.tensor([1, 2])), torch.ones(2, 2), 5),
    lambda s: ef.embedding_renorm_(s(TW.clone()), torch.tensor([1]), 1.0),
    lambda s: ef.embedding_renorm_(TW.clone(), s(torch.tensor([1])), 1.0),
], ids=["backward-indices", "backward-grad", "sparse-backward-indices", "coalesce-rows", "renorm-weight",
        "renorm-indices"])
def test_gradient_functions_refuse_sparse_tensors(call):
    # No torch function to copy here (except the renorm, whose error is torch's NotImplementedError):
    # a plain NotImplementedError instead of "Cannot access data pointer".
    ours = raised(lambda: call(lambda t: t.to_sparse()))
    assert isinstance(ours, en.EmbeddingNotSupportedError) and isinstance(ours, NotImplementedError)
    assert "layout torch.sparse_coo" in str(ours) or "'SparseCPU' backend" in str(ours)


# ---- argument types: torch's parser (TypeError), and what it lets through ------------------------------


def values_of(*names):
    values = {"int": 2, "float": 2.0, "bool": True, "np.int64": np.int64(2), "np.float64": np.float64(2.0),
              "np.bool_": np.bool_(True), "str": "x", "numeric-str": "2", "None": None, "list": [2],
              "0d-long": torch.tensor(2), "0d-float": torch.tensor(2.0),
              "0d-float-grad": torch.tensor(2.0, requires_grad=True), "1d": torch.tensor([2]),
              "0d-ndarray": np.array(2), "complex": 2j}
    return [pytest.param(values[n], id=n) for n in names]


ALL_VALUES = values_of("int", "float", "bool", "np.int64", "np.float64", "np.bool_", "str", "numeric-str", "None",
                       "list", "0d-long", "0d-float", "0d-float-grad", "1d", "0d-ndarray", "complex")


def same_outcome(torch_call, our_call):
    """Both raise (ours an instance of torch's type, with torch's text first), or both return equal tensors."""
    try:
        expected = torch_call()
    except Exception:  # noqa: BLE001
        return assert_same_error(torch_call, our_call)
    got = our_call()
    assert torch.allclose(got, expected, rtol=1e-6, atol=0), (got, expected)


@pytest.mark.parametrize("lookup", list(LOOKUPS))
@pytest.mark.parametrize("value", ALL_VALUES)
@pytest.mark.parametrize("name", ["padding_idx", "max_norm", "norm_type", "scale_grad_by_freq", "sparse"])
@pytest.mark.parametrize("max_norm", [None, 1.0], ids=["plain", "max_norm"])
@pytest.mark.parametrize("requires_grad", [False, True], ids=["frozen", "grad"])
def test_argument_types_like_torch(lookup, value, name, max_norm, requires_grad):
    # padding_idx: int, numpy integer or 0-d integer tensor; max_norm/norm_type: any real number,
    # numpy scalar or 0-d tensor without grad; scale_grad_by_freq/sparse: True or False only.
    kwargs = {"max_norm": max_norm, name: value}
    idx = torch.tensor([3, 1, 1])
    same_outcome(lambda: F.embedding(idx, TW.clone().requires_grad_(requires_grad), **kwargs),
                 lambda: LOOKUPS[lookup](idx, TW.clone().requires_grad_(requires_grad), **kwargs))


@pytest.mark.parametrize("name,value", [("padding_idx", 2.0), ("padding_idx", True), ("scale_grad_by_freq", 1),
                                        ("sparse", None), ("max_norm", "x"), ("max_norm", "1.5"),
                                        ("norm_type", "2")], ids=str)
def test_drop_in_module_argument_types_fail_at_forward_like_torch(name, value):
    # torch's constructors store these as given; the forward's call into torch raises TypeError.
    kwargs = {name: value, "max_norm": 1.0} if name == "norm_type" else {name: value}
    reference = torch.nn.Embedding.from_pretrained(TW.clone(), **kwargs)
    ours = et.Embedding.from_pretrained(TW.clone(), **kwargs)
    theirs, got = assert_same_error(lambda: reference(torch.tensor([1])), lambda: ours(torch.tensor([1])))
    assert isinstance(got, TypeError)


NOT_TENSORS = {"ndarray": lambda t: t.numpy(), "list": lambda t: t.tolist(), "int": lambda t: 1,
               "numpy-scalar": lambda t: np.int64(1), "tuple": lambda t: tuple(t.tolist())}


@pytest.mark.parametrize("kwargs", [dict(), dict(max_norm=1.0), dict(padding_idx=1), dict(padding_idx=-1)], ids=str)
@pytest.mark.parametrize("kind", list(NOT_TENSORS))
@pytest.mark.parametrize("argument", ["input", "weight"])
def test_drop_in_needs_tensors_like_torch(argument, kind, kwargs):
    # torch: TypeError from its parser, or AttributeError/TypeError where F.embedding's Python code
    # touches the object first (input.contiguous(), weight.detach(), weight.size(0)).
    args = {"input": torch.tensor([1, 2]), "weight": TW.clone()}
    args[argument] = NOT_TENSORS[kind](args[argument])
    theirs, ours = assert_same_error(lambda: F.embedding(args["input"], args["weight"], **kwargs),
                                     lambda: et.embedding(args["input"], args["weight"], **kwargs))


def test_drop_in_module_with_numpy_indices():
    reference, ours = torch.nn.Embedding(10, 5), et.Embedding(10, 5)
    theirs, got = assert_same_error(lambda: reference(np.array([1])), lambda: ours(np.array([1])))
    assert isinstance(got, TypeError)
    with torch.no_grad():
        assert_same_error(lambda: reference(np.array([1])), lambda: ours(np.array([1])))


def test_drop_in_with_a_numpy_table():
    theirs, ours = assert_same_error(lambda: F.embedding(torch.tensor([1]), W), lambda: et.embedding(torch.tensor([1]), W))
    assert isinstance(ours, TypeError)


@pytest.mark.parametrize("kwargs", [dict(padding_idx=True), dict(padding_idx=np.bool_(True)), dict(padding_idx=2.0),
                                    dict(padding_idx=np.array(1))], ids=["bool", "numpy-bool", "float", "0d-ndarray"])
def test_numpy_module_padding_idx_type(kwargs):
    # torch's module stores these and its forward raises TypeError; ours checks at construction.
    reference = torch.nn.Embedding.from_pretrained(torch.from_numpy(W), **kwargs)
    theirs = raised(lambda: reference(torch.tensor([1])))
    ours = raised(lambda: en.Embedding.from_pretrained(W, **kwargs))
    assert isinstance(ours, type(theirs)) and str(ours) == str(theirs)


def test_numpy_module_accepts_what_torch_accepts():
    for padding_idx in (np.int64(1), torch.tensor(1), np.uint8(3)):
        reference = torch.nn.Embedding.from_pretrained(torch.from_numpy(W), padding_idx=padding_idx)
        ours = en.Embedding.from_pretrained(W, padding_idx=padding_idx)
        assert ours.padding_idx == int(padding_idx)
        assert np.array_equal(ours(np.array([1, 3])), reference(torch.tensor([1, 3])).numpy())


@pytest.mark.parametrize("kwargs", [dict(num_embeddings=True, embedding_dim=3), dict(num_embeddings=4, embedding_dim=3,
                                                                                      dtype=2),
                                    dict(num_embeddings=4, embedding_dim=3, dtype="x")],
                         ids=["bool-size", "int-dtype", "str-dtype"])
def test_numpy_module_constructor_types(kwargs):
    for cls in ("Embedding", "EmbeddingBag"):
        assert_same_error(lambda: getattr(torch.nn, cls)(**kwargs), lambda: getattr(en, cls)(**kwargs),
                          same_message=False)


@pytest.mark.parametrize("lookup", list(LOOKUPS))
@pytest.mark.parametrize("kwargs", [dict(sparse=1), dict(padding_idx=2.0), dict(scale_grad_by_freq=None)], ids=str)
def test_argument_type_error_does_not_renormalise(lookup, kwargs):
    # torch 1.13 renormalises, then its parser raises; ours raises first (docs/divergences.md).
    theirs_w, ours_w = TW.clone(), TW.clone()
    assert_same_error(lambda: F.embedding(torch.tensor([1, 3]), theirs_w, max_norm=0.5, **kwargs),
                      lambda: LOOKUPS[lookup](torch.tensor([1, 3]), ours_w, max_norm=0.5, **kwargs))
    assert not torch.equal(theirs_w, TW) and torch.equal(ours_w, TW)
