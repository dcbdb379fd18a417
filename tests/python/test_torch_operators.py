"""The torch dispatcher operators for plain tensor calls (interop/torch, embedding_native._torch_operators).

They must give the ctypes path's bits, answer None (having written nothing) to everything else, and
be what the functional API's plain tensor calls take.
"""

import os
import subprocess
import sys

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import embedding_native as en
from embedding_native import _torch_operators as operators
from embedding_native._bindings import EMB_BAG_MAX, EMB_BAG_MEAN, EMB_BAG_SUM
from embedding_native._ops.embedding import lookup
from embedding_native._results import FRESH_MAPPING_BYTES

MODES = {"sum": EMB_BAG_SUM, "mean": EMB_BAG_MEAN, "max": EMB_BAG_MAX}


@pytest.fixture(scope="module", autouse=True)
def loaded():
    en.embedding(torch.tensor([0]), torch.zeros(1, 1))  # the first tensor call loads them
    assert en.build_info()["torch_operators"].startswith("on: "), en.build_info()["torch_operators"]


def same_bits(a, b):
    """Equal dtypes and shapes, and equal bits (NaN payloads and zero signs included)."""
    as_int = {8: torch.int64, 4: torch.int32, 2: torch.int16}[a.element_size()]
    return a.dtype == b.dtype and a.shape == b.shape and torch.equal(a.view(as_int), b.view(as_int))


def table(rows, dim, dtype, seed=0):
    return torch.randn(rows, dim, generator=torch.Generator().manual_seed(seed)).to(dtype)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.float16, torch.bfloat16], ids=str)
@pytest.mark.parametrize("index_dtype", [torch.int32, torch.int64], ids=str)
@pytest.mark.parametrize("shape", [(), (0,), (1,), (7,), (2, 3), (2, 0, 3)], ids=str)
@pytest.mark.parametrize("dim", [1, 5, 16, 300])
def test_embedding_gives_the_ctypes_bits(dtype, index_dtype, shape, dim):
    weight = table(11, dim, dtype)
    indices = torch.randint(0, 11, shape, dtype=index_dtype, generator=torch.Generator().manual_seed(1))
    ours = operators.embedding(weight, indices)
    assert ours.dtype == dtype and ours.shape == indices.shape + (dim,) and not ours.requires_grad
    assert same_bits(ours, lookup(indices, weight)) and same_bits(ours, F.embedding(indices.long(), weight))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.float16], ids=str)
@pytest.mark.parametrize("mode, weighted", [("sum", False), ("mean", False), ("max", False), ("sum", True)],
                         ids=["sum", "mean", "max", "weighted-sum"])
@pytest.mark.parametrize("dim", [1, 7, 64])
def test_embedding_bag_gives_torch_bits(dtype, mode, weighted, dim):
    gen = torch.Generator().manual_seed(dim)
    weight = table(13, dim, dtype, seed=2)
    indices = torch.randint(0, 13, (20,), generator=gen)
    offsets = torch.tensor([0, 0, 3, 11, 11, 19])  # empty bags, a single row, the last bag
    psw = torch.rand(20, generator=gen).to(dtype) if weighted else None
    ours = operators.embedding_bag(weight, indices, offsets, MODES[mode], psw)
    expected = F.embedding_bag(indices, weight, offsets, mode=mode, per_sample_weights=psw)
    assert same_bits(ours, expected)
    assert same_bits(en.embedding_bag(indices.int(), weight, offsets.int(), mode=mode, per_sample_weights=psw), expected)


def test_everything_but_a_plain_call_is_none_and_writes_nothing():
    weight, indices, offsets = table(10, 4, torch.float32), torch.tensor([1, 2, 9]), torch.tensor([0, 2])
    refused = {
        "index out of range": (weight, torch.tensor([1, 10])),
        "negative index": (weight, torch.tensor([-1])),
        "non-contiguous table": (table(4, 10, torch.float32).t(), indices),
        "non-contiguous indices": (weight, torch.arange(6)[::2]),
        "int16 indices": (weight, indices.short()),
        "float indices": (weight, indices.float()),
        "1-D table": (weight[0], indices),
        "3-D table": (weight[None], indices),
        "empty table": (torch.zeros(0, 4), torch.tensor([], dtype=torch.int64)),
        "zero-width table": (torch.zeros(10, 0), indices),
        "integer table": (weight.int(), indices),
        "sparse table": (weight.to_sparse(), indices),
        "sparse indices": (weight, indices.to_sparse()),
        "meta table": (torch.empty(10, 4, device="meta"), indices),
        "result of FRESH_MAPPING_BYTES": (torch.zeros(1, FRESH_MAPPING_BYTES // 4), torch.tensor([0])),
    }
    for name, (w, i) in refused.items():
        assert operators.embedding(w, i) is None, name
    bag_refused = {
        "index out of range": (weight, torch.tensor([1, 10]), offsets, EMB_BAG_SUM, None),
        "first offset not 0": (weight, indices, torch.tensor([1, 2]), EMB_BAG_SUM, None),
        "decreasing offsets": (weight, indices, torch.tensor([0, 2, 1]), EMB_BAG_SUM, None),
        "offset past the end": (weight, indices, torch.tensor([0, 4]), EMB_BAG_SUM, None),
        "no offsets": (weight, indices, torch.tensor([], dtype=torch.int64), EMB_BAG_SUM, None),
        "2-D indices": (weight, indices.view(1, 3), offsets, EMB_BAG_SUM, None),
        "2-D offsets": (weight, indices, offsets.view(1, 2), EMB_BAG_SUM, None),
        "weights in mean mode": (weight, indices, offsets, EMB_BAG_MEAN, torch.ones(3)),
        "weights of another type": (weight, indices, offsets, EMB_BAG_SUM, torch.ones(3, dtype=torch.float64)),
        "a weight too few": (weight, indices, offsets, EMB_BAG_SUM, torch.ones(2)),
        "non-contiguous weights": (weight, indices, offsets, EMB_BAG_SUM, torch.ones(6)[::2]),
        "bfloat16 table": (weight.bfloat16(), indices, offsets, EMB_BAG_SUM, None),
        "unknown mode": (weight, indices, offsets, 7, None),
    }
    for name, arguments in bag_refused.items():
        assert operators.embedding_bag(*arguments) is None, name


def test_failures_still_raise_torchs_errors():
    weight = table(10, 4, torch.float32)
    with pytest.raises(IndexError, match="index out of range in self"):
        en.embedding(torch.tensor([3, 10]), weight)
    with pytest.raises(RuntimeError):
        en.embedding_bag(torch.tensor([3, 10]), weight, torch.tensor([0, 1]), mode="sum")
    with pytest.raises(RuntimeError, match="offsets"):
        en.embedding_bag(torch.tensor([3, 4]), weight, torch.tensor([1, 2]), mode="sum")


def test_plain_tensor_calls_take_the_operators(monkeypatch):
    calls = []

    def counted(op):
        return lambda *args: calls.append(op) or getattr(operators, "_real_" + op)(*args)

    for op in ("embedding", "embedding_bag"):
        monkeypatch.setattr(operators, "_real_" + op, getattr(operators, op), raising=False)
        monkeypatch.setattr(operators, op, counted(op))
    weight, indices, offsets = table(10, 4, torch.float32), torch.tensor([1, 2, 9]), torch.tensor([0, 2])
    en.embedding(indices, weight)
    en.embedding_bag(indices, weight, offsets, mode="max")
    en.embedding_bag(indices, weight, offsets, mode="sum", per_sample_weights=torch.ones(3))
    assert calls == ["embedding", "embedding_bag", "embedding_bag"]
    # numpy, out= and options stay on their ways
    en.embedding(indices.numpy(), weight.numpy())
    en.embedding(indices, weight, out=torch.empty(3, 4))
    en.embedding(indices, weight, padding_idx=0)
    en.embedding_bag(indices, weight, torch.tensor([0, 2, 3]), mode="sum", include_last_offset=True)
    assert len(calls) == 3


def test_a_table_that_requires_grad_gives_a_plain_result():
    weight = torch.nn.Parameter(table(10, 4, torch.float32))
    result = en.embedding(torch.tensor([1, 2]), weight)
    assert not result.requires_grad and result.grad_fn is None


def test_they_load_only_into_the_torch_they_were_built_for(monkeypatch):
    for name in ("embedding", "embedding_bag", "Tensor", "status"):
        monkeypatch.setattr(operators, name, None)
    monkeypatch.setattr(torch, "__version__", "2.1.0")
    assert not operators.load()
    assert operators.status == "off: built for torch 1.13, running torch 2.1.0"
    assert operators.embedding is None and operators.embedding_bag is None


def test_switched_off_by_the_environment():
    script = ("import torch, embedding_native as en; w = torch.randn(10, 3); i = torch.tensor([4, 1]); "
              "r = en.embedding(i, w); assert torch.equal(r, w[i]); print(en.build_info()['torch_operators'])")
    env = dict(os.environ, EMBEDDING_NATIVE_TORCH_OPERATORS="0")
    out = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True).stdout
    assert out.strip() == "off: EMBEDDING_NATIVE_TORCH_OPERATORS=0"
