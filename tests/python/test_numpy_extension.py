"""The CPython extension for plain numpy lookups and bags (interop/numpy, embedding_native._numpy_extension).

It must give the ctypes path's bits, answer None (having written nothing) to everything else, and
be what the functional API's plain numpy calls take.
"""

import os
import subprocess
import sys

import numpy as np
import pytest

import embedding_native as en
from embedding_native import _numpy_extension as extension
from embedding_native._results import FRESH_MAPPING_BYTES
from embedding_native.errors import EmbeddingIndexError, EmbeddingRuntimeError


@pytest.fixture(scope="module", autouse=True)
def loaded():
    assert en.build_info()["numpy_extension"].startswith("on: "), en.build_info()["numpy_extension"]


@pytest.fixture
def ctypes_path(monkeypatch):
    """The lookup with the extension switched off: the ctypes way the extension replaces."""
    monkeypatch.setattr(extension, "embedding", None)
    return en.embedding


def same_bits(a, b):
    return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()


def table(rows, dim, dtype, seed=0):
    values = np.random.default_rng(seed).standard_normal((rows, dim)).astype(dtype)
    values.flat[::7] = -0.0  # zero signs must survive
    return values


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.float16], ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("index_dtype", [np.int32, np.int64, np.intc, np.longlong], ids=lambda d: np.dtype(d).char)
@pytest.mark.parametrize("shape", [(), (0,), (1,), (7,), (2, 3), (2, 0, 3)], ids=str)
@pytest.mark.parametrize("dim", [1, 5, 16, 300])
def test_embedding_gives_the_ctypes_bits(dtype, index_dtype, shape, dim, monkeypatch):
    weight = table(11, dim, dtype)
    indices = np.random.default_rng(1).integers(0, 11, shape).astype(index_dtype)
    ours = extension.embedding(weight, indices, None)
    assert type(ours) is np.ndarray and ours.dtype == weight.dtype and ours.shape == indices.shape + (dim,)
    assert same_bits(ours, weight[indices])
    monkeypatch.setattr(extension, "embedding", None)
    assert same_bits(ours, en.embedding(indices, weight))


@pytest.mark.parametrize("dtype", [np.float32, np.float16], ids=lambda d: np.dtype(d).name)
def test_embedding_into_out(dtype):
    weight, indices = table(11, 6, dtype), np.array([[3, 0], [10, 3]])
    out = np.full((2, 2, 6), 7.0, dtype=dtype)
    assert extension.embedding(weight, indices, out) is out and same_bits(out, weight[indices])
    assert en.embedding(indices.astype(np.int32), weight, out=out) is out


def test_refusals_return_none_and_write_nothing():
    weight, indices = table(11, 6, np.float32), np.array([[3, 0], [10, 3]])
    untouched = np.full((2, 2, 6), 7.0, dtype=np.float32)

    class Subclass(np.ndarray):
        pass

    read_only = untouched.copy()
    read_only.flags.writeable = False
    cases = {
        "index out of range": (weight, np.array([[3, 0], [11, 3]]), untouched),
        "negative index": (weight, np.array([[3, 0], [-1, 3]]), untouched),
        "out of the wrong shape": (weight, indices, np.full((4, 6), 7.0, dtype=np.float32)),
        "out of the wrong type": (weight, indices, untouched.astype(np.float64)),
        "non-contiguous out": (weight, indices, np.full((2, 6, 2), 7.0, dtype=np.float32).transpose(0, 2, 1)),
        "read-only out": (weight, indices, read_only),
        "out a subclass": (weight, indices, untouched.view(Subclass)),
        "out a list": (weight, indices, [[0.0] * 6] * 4),
        "byte-swapped table": (weight.astype(">f4"), indices, untouched),
        "byte-swapped indices": (weight, indices.astype(">i8"), untouched),
        "non-contiguous table": (np.asfortranarray(weight), indices, untouched),
        "non-contiguous indices": (weight, np.array([[3, 1], [0, 10]]).T, untouched),
        "integer table": (weight.astype(np.int32), indices, untouched),
        "unsigned indices": (weight, indices.astype(np.uint64), untouched),
        "int16 indices": (weight, indices.astype(np.int16), untouched),
        "1-D table": (weight[0], indices, untouched),
        "3-D table": (weight[None], indices, untouched),
        "empty table": (np.zeros((0, 6), np.float32), indices, untouched),
        "zero-width table": (np.zeros((11, 0), np.float32), indices, np.zeros((2, 2, 0), np.float32)),
        "indices a list": (weight, [[3, 0], [10, 3]], untouched),
    }
    table_itself = table(11, 6, np.float32)
    cases["out overlapping the table"] = (table_itself, np.array([1]), table_itself[2:3])
    for name, (w, i, o) in cases.items():
        before = np.array(o, copy=True)
        assert extension.embedding(w, i, o) is None, name
        assert np.array_equal(np.asarray(o), before), name
    assert extension.embedding(weight, indices) is None  # the wrong number of arguments


def test_large_results_are_left_to_python():
    dim = 1024
    rows = FRESH_MAPPING_BYTES // (4 * dim)
    weight, indices = np.ones((2, dim), np.float32), np.zeros(rows, np.int64)
    assert extension.embedding(weight, indices, None) is None
    assert extension.embedding(weight, indices[:-1], None).shape == (rows - 1, dim)
    assert extension.embedding(weight, indices, np.empty((rows, dim), np.float32)) is not None  # out: no allocation


def test_failures_reach_the_checked_path_with_torchs_errors():
    weight = table(10, 4, np.float32)
    with pytest.raises(EmbeddingIndexError, match="index out of range in self"):
        en.embedding(np.array([1, 10]), weight)
    with pytest.raises(EmbeddingRuntimeError, match="out has shape"):
        en.embedding(np.array([1, 2]), weight, out=np.empty((3, 4), np.float32))
    with pytest.raises(EmbeddingRuntimeError, match="Expected tensor for argument #1 'indices'"):
        en.embedding(np.array([1.0]), weight)


def test_plain_numpy_calls_take_the_extension(monkeypatch):
    calls = []
    real = extension.embedding
    monkeypatch.setattr(extension, "embedding", lambda *args: calls.append(args) or real(*args))
    weight, indices = table(10, 4, np.float32), np.array([1, 2, 9])
    en.embedding(indices, weight)
    en.embedding(indices, weight, out=np.empty((3, 4), np.float32))
    en.embedding(indices, weight, padding_idx=0)      # an option: the checked path
    en.embedding(np.int64(1), weight)                 # a numpy scalar: the checked path
    assert [args[2] is None for args in calls] == [True, False]


def test_the_torch_rows_of_numpy_calls_are_unchanged():
    torch = pytest.importorskip("torch")
    weight, indices = table(9, 3, np.float32), np.array([4, 1])
    assert np.array_equal(en.embedding(indices, weight), torch.nn.functional.embedding(
        torch.from_numpy(indices), torch.from_numpy(weight)).numpy())


MODES = {"sum": 0, "mean": 1, "max": 2}


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.float16], ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("mode, weighted", [("sum", False), ("mean", False), ("max", False), ("sum", True)],
                         ids=["sum", "mean", "max", "weighted-sum"])
@pytest.mark.parametrize("index_dtype", [np.int32, np.int64], ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("dim", [1, 7, 64, 300])
def test_embedding_bag_gives_the_ctypes_bits(dtype, mode, weighted, index_dtype, dim, monkeypatch):
    rng = np.random.default_rng(dim)
    weight = table(13, dim, dtype, seed=2)
    indices = rng.integers(0, 13, 20).astype(index_dtype)
    offsets = np.array([0, 0, 3, 9, 20], dtype=index_dtype)  # an empty bag first, and one at the end
    weights = rng.standard_normal(20).astype(dtype) if weighted else None
    ours = extension.embedding_bag(weight, indices, offsets, MODES[mode], weights)
    assert type(ours) is np.ndarray and ours.dtype == weight.dtype and ours.shape == (5, dim)
    monkeypatch.setattr(extension, "embedding_bag", None)
    assert same_bits(ours, en.embedding_bag(indices, weight, offsets, mode=mode, per_sample_weights=weights))


def test_bag_refusals_return_none():
    weight, indices, offsets = table(11, 6, np.float32), np.array([3, 0, 10, 3]), np.array([0, 2])
    weights = np.ones(4, np.float32)
    cases = {
        "index out of range": (weight, np.array([3, 0, 11, 3]), offsets, 0, None),
        "offsets not starting at 0": (weight, indices, np.array([1, 2]), 0, None),
        "decreasing offsets": (weight, indices, np.array([0, 3, 2]), 0, None),
        "offsets past the end": (weight, indices, np.array([0, 5]), 0, None),
        "no offsets": (weight, indices, np.array([], np.int64), 0, None),
        "2-D indices": (weight, indices.reshape(2, 2), offsets, 0, None),
        "2-D offsets": (weight, indices, offsets.reshape(1, 2), 0, None),
        "weights with mean": (weight, indices, offsets, 1, weights),
        "weights with max": (weight, indices, offsets, 2, weights),
        "weights of another type": (weight, indices, offsets, 0, weights.astype(np.float64)),
        "too few weights": (weight, indices, offsets, 0, weights[:3]),
        "2-D weights": (weight, indices, offsets, 0, weights.reshape(2, 2)),
        "non-contiguous weights": (weight, indices, offsets, 0, np.ones(8, np.float32)[::2]),
        "weights a list": (weight, indices, offsets, 0, [1.0] * 4),
        "unknown mode": (weight, indices, offsets, 3, None),
        "mode not an int": (weight, indices, offsets, "sum", None),
        "float offsets": (weight, indices, offsets.astype(np.float64), 0, None),
        "non-contiguous table": (np.asfortranarray(weight), indices, offsets, 0, None),
        "empty table": (np.zeros((0, 6), np.float32), indices, offsets, 0, None),
        "byte-swapped table": (weight.astype(">f4"), indices, offsets, 0, None),
    }
    for name, args in cases.items():
        assert extension.embedding_bag(*args) is None, name
    assert extension.embedding_bag(weight, indices, offsets, 0) is None  # the wrong number of arguments


def test_plain_numpy_bags_take_the_extension(monkeypatch):
    calls = []
    real = extension.embedding_bag
    monkeypatch.setattr(extension, "embedding_bag", lambda *args: calls.append(args[3]) or real(*args))
    weight, indices, offsets = table(10, 4, np.float32), np.array([1, 2, 9]), np.array([0, 2])
    for mode in ("sum", "mean", "max"):
        en.embedding_bag(indices, weight, offsets, mode=mode)
    en.embedding_bag(indices, weight, offsets, mode="sum", per_sample_weights=np.ones(3, np.float32))
    en.embedding_bag(indices, weight, offsets, mode="sum", padding_idx=0)   # an option: the checked path
    assert calls == [0, 1, 2, 0]


def test_bag_failures_reach_the_checked_path_with_torchs_errors():
    weight = table(10, 4, np.float32)
    with pytest.raises(RuntimeError, match="idx < num_embeddings but found idx to be 10"):
        en.embedding_bag(np.array([1, 10]), weight, np.array([0]))
    with pytest.raises(RuntimeError, match="can not be greater than input's length 2"):
        en.embedding_bag(np.array([1, 2]), weight, np.array([0, 3]))


def test_switched_off_by_the_environment():
    script = ("import numpy as np, embedding_native as en; w = np.random.rand(10, 3).astype(np.float32); "
              "i = np.array([4, 1]); r = en.embedding(i, w); assert (r == w[i]).all(); "
              "print(en.build_info()['numpy_extension'])")
    package_parent = os.path.dirname(os.path.dirname(os.path.abspath(en.__file__)))
    env = dict(os.environ, EMBEDDING_NATIVE_NUMPY_EXTENSION="0", PYTHONPATH=package_parent)
    out = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True).stdout
    assert out.strip() == "off: EMBEDDING_NATIVE_NUMPY_EXTENSION=0"
