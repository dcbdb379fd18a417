"""The torch extension for plain tensor calls (interop/torch, embedding_native._torch_operators).

They must give the ctypes path's bits, answer None (having written nothing) to everything else, and
be what the functional API's plain tensor calls take.
"""

import contextlib
import math
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import embedding_native as en
from embedding_native import _torch_operators as operators, functional as ef, quantized as enq
from embedding_native._bindings import EMB_BAG_MAX, EMB_BAG_MEAN, EMB_BAG_SUM
from embedding_native._ops.backward import VIEW_MIN_ELEMENTS
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
    ours = operators.embedding(weight, indices, None)
    assert ours.dtype == dtype and ours.shape == indices.shape + (dim,) and not ours.requires_grad
    assert same_bits(ours, lookup(indices, weight)) and same_bits(ours, F.embedding(indices.long(), weight))


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=str)
def test_embedding_into_out(dtype):
    weight, indices = table(11, 6, dtype), torch.tensor([[3, 0], [10, 3]])
    out = torch.full((2, 2, 6), 7.0, dtype=dtype)
    assert operators.embedding(weight, indices, out) is not None and same_bits(out, F.embedding(indices, weight))
    assert en.embedding(indices.int(), weight, out=out) is out
    untouched = torch.full((2, 2, 6), 7.0, dtype=dtype)
    for name, (w, i, o) in {
        "index out of range": (weight, torch.tensor([[3, 0], [11, 3]]), untouched),
        "wrong shape": (weight, indices, torch.full((4, 6), 7.0, dtype=dtype)),
        "wrong type": (weight, indices, untouched.double()),
        "non-contiguous": (weight, indices, torch.full((2, 6, 2), 7.0, dtype=dtype).transpose(1, 2)),
    }.items():
        before = o.clone()
        assert operators.embedding(w, i, o) is None and torch.equal(o, before), name


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
        assert operators.embedding(w, i, None) is None, name
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

    def counted(name, real):
        return lambda *args: calls.append(name) or real(*args)

    for name in operators._NAMES:
        monkeypatch.setattr(operators, name, counted(name, getattr(operators, name)))
    weight, indices, offsets = table(10, 4, torch.float32), torch.tensor([1, 2, 9]), torch.tensor([0, 2])
    grad, bag_grad = torch.ones(3, 4), torch.ones(2, 4)
    en.embedding(indices, weight)
    en.embedding(indices, weight, out=torch.empty(3, 4))
    en.embedding_bag(indices, weight, offsets, mode="max")
    en.embedding_bag(indices, weight, offsets, mode="sum", per_sample_weights=torch.ones(3))
    ef.embedding_backward(grad, indices, 10)
    ef.embedding_backward(grad, indices, 10, out=torch.zeros(10, 4), accumulate=True)
    rows, values = ef.embedding_sparse_backward(grad, indices, 10)
    ef.sparse_coalesce(rows, values, 10)
    ef.embedding_renorm_(weight, indices, 1.0)
    ef.embedding_bag_backward(bag_grad, indices, 10, offsets, mode="sum")
    ef.embedding_bag_backward(bag_grad, indices, 10, offsets, mode="max",
                              max_indices=ef.embedding_bag_max_indices(indices, weight, offsets)[1])
    enq.embedding_bag_byte_rowwise_offsets(enq.embedding_bag_byte_prepack(weight), indices, offsets)
    assert calls == ["embedding", "embedding", "embedding_bag", "embedding_bag", "embedding_backward",
                     "embedding_backward", "embedding_sparse_backward", "sparse_coalesce", "embedding_renorm",
                     "embedding_bag_backward", "embedding_bag_backward", "quantized_embedding_bag"]
    del calls[:]
    # numpy, options and large sparse gradients (views) go their own ways
    en.embedding(indices.numpy(), weight.numpy())
    en.embedding(indices, weight, padding_idx=0)
    en.embedding_bag(indices, weight, torch.tensor([0, 2, 3]), mode="sum", include_last_offset=True)
    ef.embedding_backward(grad, indices, 10, padding_idx=1)
    ef.embedding_sparse_backward(torch.ones(VIEW_MIN_ELEMENTS // 4, 4), torch.zeros(VIEW_MIN_ELEMENTS // 4, dtype=torch.int64), 10)
    ef.embedding_renorm_(weight.numpy(), indices.numpy(), 1.0)
    ef.embedding_bag_backward(bag_grad, indices, 10, offsets, mode="sum", padding_idx=2)
    assert calls == []


@contextlib.contextmanager
def ctypes_only():
    """The functional API without the operators: tensors take the ctypes way (the oracle here)."""
    saved = {name: getattr(operators, name) for name in operators._NAMES}
    for name in saved:
        setattr(operators, name, None)
    try:
        yield
    finally:
        for name, op in saved.items():
            setattr(operators, name, op)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.float16, torch.bfloat16], ids=str)
@pytest.mark.parametrize("scale", [False, True], ids=["plain", "scale_grad_by_freq"])
def test_gradients_and_renorm_give_the_ctypes_bits(dtype, scale):
    gen = torch.Generator().manual_seed(5)
    indices = torch.randint(0, 9, (4, 5), generator=gen)
    grad = torch.randn(4, 5, 7, generator=gen).to(dtype)
    out = torch.randn(9, 7, generator=gen).to(dtype)
    weights = [torch.randn(9, 7, generator=gen).to(dtype) * 3 for _ in range(4)]
    with ctypes_only():
        dense = ef.embedding_backward(grad, indices, 9, scale_grad_by_freq=scale)
        added = ef.embedding_backward(grad, indices, 9, scale_grad_by_freq=scale, out=out.clone(), accumulate=True)
        rows, values = ef.embedding_sparse_backward(grad, indices, 9, scale_grad_by_freq=scale)
        unique, summed = ef.sparse_coalesce(rows, values, 9)
        renormed = [ef.embedding_renorm_(w.clone(), indices, 1.5, p) for w, p in zip(weights, (2.0, 1.0, math.inf, 0.5))]
    assert same_bits(operators.embedding_backward(grad, indices, 9, scale, None, False), dense)
    assert same_bits(operators.embedding_backward(grad, indices, 9, scale, out, True), added)
    ours_rows, ours_values = operators.embedding_sparse_backward(grad, indices, 9, scale)
    assert torch.equal(ours_rows, rows) and same_bits(ours_values, values)
    ours_unique, ours_summed = operators.sparse_coalesce(rows, values, 9)
    assert torch.equal(ours_unique, unique) and same_bits(ours_summed, summed)
    for weight, p, expected in zip(weights, (2.0, 1.0, math.inf, 0.5), renormed):
        version = weight._version
        assert operators.embedding_renorm(weight, indices, 1.5, p) and weight._version == version + 1
        assert same_bits(weight, expected)


@pytest.mark.parametrize("mode, weighted, scale", [
    ("sum", False, False), ("mean", False, False), ("max", False, False), ("sum", True, False),
    ("sum", False, True), ("mean", False, True), ("sum", True, True),  # torch refuses max with scale_grad_by_freq
], ids=["sum", "mean", "max", "weighted-sum", "sum-scaled", "mean-scaled", "weighted-sum-scaled"])
def test_bag_gradient_gives_the_ctypes_and_torch_bits(mode, weighted, scale):
    gen = torch.Generator().manual_seed(6)
    weight = torch.randn(9, 7, generator=gen, requires_grad=True)
    indices, offsets = torch.randint(0, 9, (20,), generator=gen), torch.tensor([0, 0, 3, 11, 19])
    psw = torch.rand(20, generator=gen) if weighted else None
    bag_grad = torch.randn(5, 7, generator=gen)
    F.embedding_bag(indices, weight, offsets, mode=mode, per_sample_weights=psw, scale_grad_by_freq=scale).backward(bag_grad)
    max_indices = ef.embedding_bag_max_indices(indices, weight.detach(), offsets)[1] if mode == "max" else None
    ours = operators.embedding_bag_backward(bag_grad, indices, 9, offsets, MODES[mode], psw, scale, max_indices, None, False)
    with ctypes_only():
        expected = ef.embedding_bag_backward(bag_grad, indices, 9, offsets, mode=mode, per_sample_weights=psw,
                                             scale_grad_by_freq=scale, max_indices=max_indices)
    assert same_bits(ours, expected)
    if not scale:  # torch 1.13 divides by another row's count (docs/divergences.md)
        assert same_bits(ours, weight.grad)


@pytest.mark.parametrize("bits", [8, 4, 2])
@pytest.mark.parametrize("mode, weighted", [(0, False), (1, False), (0, True)], ids=["sum", "mean", "weighted-sum"])
def test_quantized_bag_gives_torch_bits(bits, mode, weighted):
    name = {8: "byte", 4: "4bit", 2: "2bit"}[bits]
    gen = torch.Generator().manual_seed(bits)
    packed = getattr(torch.ops.quantized, "embedding_bag_%s_prepack" % name)(torch.randn(13, 8, generator=gen))
    indices, offsets = torch.randint(0, 13, (20,), generator=gen), torch.tensor([0, 0, 3, 11, 19])
    psw = torch.rand(20, generator=gen) if weighted else None
    expected = getattr(torch.ops.quantized, "embedding_bag_%s_rowwise_offsets" % name)(
        packed, indices, offsets, mode=mode, per_sample_weights=psw)
    if mode == 0:  # torch 1.13's quantized ops sum whatever the mode (docs/divergences.md)
        assert same_bits(operators.quantized_embedding_bag(packed, bits, indices, offsets, mode, psw), expected)
    with ctypes_only():
        through_ctypes = getattr(enq, "embedding_bag_%s_rowwise_offsets" % name)(packed, indices, offsets, mode=mode,
                                                                                per_sample_weights=psw)
    assert same_bits(operators.quantized_embedding_bag(packed, bits, indices.int(), offsets.int(), mode, psw),
                     through_ctypes)
    refused = {
        "max mode": (packed, bits, indices, offsets, 2, None),
        "wrong bit width": (packed, 3, indices, offsets, 0, None),
        "float table": (packed.float(), bits, indices, offsets, 0, None),
        "index out of range": (packed, bits, torch.tensor([0, 13]), torch.tensor([0]), 0, None),
        "bad offsets": (packed, bits, indices, torch.tensor([1, 3]), 0, None),
        "weights in mean mode": (packed, bits, indices, offsets, 1, torch.ones(20)),
        "float16 weights": (packed, bits, indices, offsets, 0, torch.ones(20, dtype=torch.float16)),
        "rows too short": (packed[:, :2].contiguous(), bits, indices, offsets, 0, None),
    }
    for case, arguments in refused.items():
        assert operators.quantized_embedding_bag(*arguments) is None, case


def test_gradients_refuse_what_is_not_plain():
    grad, indices, offsets = torch.ones(3, 4), torch.tensor([1, 2, 9]), torch.tensor([0, 2])
    assert operators.embedding_backward(grad, torch.tensor([1, 2, 10]), 10, False, None, False) is None
    assert operators.embedding_backward(grad, indices, 10, False, None, True) is None  # accumulate needs out
    assert operators.embedding_backward(grad, indices, 10, False, torch.zeros(10, 5), False) is None
    assert operators.embedding_backward(grad[:2], indices, 10, False, None, False) is None
    assert operators.embedding_backward(grad.t().contiguous().t(), indices, 10, False, None, False) is None
    assert operators.embedding_sparse_backward(grad, torch.tensor([1, 2, 10]), 10, False) == []
    assert operators.sparse_coalesce(indices.int(), grad, 10) == []
    assert operators.sparse_coalesce(indices, grad, 9) == []
    weight = torch.ones(10, 4)
    assert not operators.embedding_renorm(weight, torch.tensor([1, 10]), 0.5, 2.0) and torch.equal(weight, torch.ones(10, 4))
    bag_grad = torch.ones(2, 4)
    assert operators.embedding_bag_backward(bag_grad, indices, 10, offsets, EMB_BAG_MAX, None, False, None, None, False) is None
    assert operators.embedding_bag_backward(bag_grad, indices, 10, offsets, EMB_BAG_MAX, None, True,
                                            torch.zeros(2, 4, dtype=torch.int64), None, False) is None
    assert operators.embedding_bag_backward(bag_grad, indices, 10, offsets, EMB_BAG_MEAN, torch.ones(3), False, None,
                                            None, False) is None
    assert operators.embedding_bag_backward(bag_grad.double(), indices, 10, offsets, EMB_BAG_SUM, None, False, None,
                                            None, False) is None


def test_a_table_that_requires_grad_gives_a_plain_result():
    weight = torch.nn.Parameter(table(10, 4, torch.float32))
    result = en.embedding(torch.tensor([1, 2]), weight)
    assert not result.requires_grad and result.grad_fn is None


def test_they_load_only_into_the_torch_they_were_built_for(monkeypatch):
    for name in operators._NAMES + ("Tensor", "status"):
        monkeypatch.setattr(operators, name, None)
    monkeypatch.setattr(torch, "__version__", "2.1.0")
    assert not operators.load()
    assert operators.status == "off: built for torch 1.13, running torch 2.1.0"
    assert all(getattr(operators, name) is None for name in operators._NAMES)


def test_switched_off_by_the_environment():
    script = ("import torch, embedding_native as en; w = torch.randn(10, 3); i = torch.tensor([4, 1]); "
              "r = en.embedding(i, w); assert torch.equal(r, w[i]); print(en.build_info()['torch_operators'])")
    package_parent = os.path.dirname(os.path.dirname(os.path.abspath(en.__file__)))
    env = dict(os.environ, EMBEDDING_NATIVE_TORCH_OPERATORS="0", PYTHONPATH=package_parent)
    out = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True).stdout
    assert out.strip() == "off: EMBEDDING_NATIVE_TORCH_OPERATORS=0"


@pytest.mark.parametrize("padding_idx", [None, 2], ids=["no-padding", "padding"])
@pytest.mark.parametrize("scale", [False, True], ids=["plain", "scale_grad_by_freq"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=str)
def test_the_trainable_lookup_is_a_cpp_autograd_function_with_torchs_derivatives(padding_idx, scale, dtype):
    import embedding_native.torch as ent
    gen = torch.Generator().manual_seed(7)
    indices = torch.tensor([[1, 2, 2], [4, 1, 0]])
    results = []
    for embedding in (F.embedding, ent.embedding):
        weight = torch.randn(6, 5, generator=gen.manual_seed(7), dtype=dtype, requires_grad=True)
        incoming = torch.randn(2, 3, 5, generator=gen.manual_seed(8), dtype=dtype, requires_grad=True)
        out = embedding(indices, weight, padding_idx=padding_idx, scale_grad_by_freq=scale)
        grad, = torch.autograd.grad(out, weight, incoming, create_graph=True)   # first derivative
        (grad.sin().sum()).backward()                                         # second: into incoming
        results.append((out.detach(), grad.detach(), incoming.grad, type(out.grad_fn).__name__))
    (out, grad, second, _), (ours_out, ours_grad, ours_second, node) = results
    assert node == "CppFunction"
    assert same_bits(ours_out, out) and same_bits(ours_grad, grad) and same_bits(ours_second, second)


def test_the_trainable_lookup_leaves_large_and_sparse_gradients_to_python():
    import embedding_native.torch as ent
    indices = torch.tensor([0, 3])
    large = torch.zeros(FRESH_MAPPING_BYTES // 4 // 8, 8, requires_grad=True)
    assert type(ent.embedding(indices, large).grad_fn).__name__ != "CppFunction"
    small_table = torch.zeros(10, 8, requires_grad=True)
    assert type(ent.embedding(indices, small_table, sparse=True).grad_fn).__name__ != "CppFunction"
    assert type(ent.embedding(indices, small_table).grad_fn).__name__ == "CppFunction"
    assert operators.trainable_embedding(small_table, torch.tensor([0, 10]), -1, False) is None
    with pytest.raises(IndexError, match="index out of range"):
        ent.embedding(torch.tensor([0, 10]), small_table)
