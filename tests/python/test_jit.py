"""torch.jit with the torch drop-ins: the operators torch.ops.embedding_native.embedding /
embedding_bag in traced graphs, torch.jit.script of modules holding the drop-ins, and saved
graphs loaded in a fresh process; the numbers and gradients are eager's (and torch's)."""

import os
import subprocess
import sys
import warnings

import pytest
import torch
import torch.nn as nn

import embedding_native.torch as et
from helpers import identical

INDICES = torch.tensor([[1, 2, 0], [3, 3, 4]])
FLAT = torch.tensor([1, 2, 5, 7, 7])
OFFSETS = torch.tensor([0, 3])


class _Model(nn.Module):
    """An Embedding and an EmbeddingBag feeding a Linear layer."""

    def __init__(self, table, bag, embedding_kwargs=None, bag_kwargs=None):
        super().__init__()
        self.embedding = table(10, 4, **(embedding_kwargs or {}))
        self.bag = bag(10, 4, **(bag_kwargs or {}))
        self.linear = nn.Linear(8, 2)

    def forward(self, indices, flat, offsets):
        return self.linear(torch.cat([self.embedding(indices).mean(1), self.bag(flat, offsets)], 1))


def _models(**kwargs):
    """torch's model and ours, with the same parameters."""
    torch.manual_seed(0)
    theirs = _Model(nn.Embedding, nn.EmbeddingBag, **kwargs)
    torch.manual_seed(0)
    ours = _Model(et.Embedding, et.EmbeddingBag, **kwargs)
    return theirs, ours


def _inputs(kwargs):
    """The example inputs; with include_last_offset the offsets end with the input's length."""
    last = kwargs.get("bag_kwargs", {}).get("include_last_offset", False)
    return INDICES, FLAT, torch.tensor([0, 3, 5]) if last else OFFSETS


def _run(model, inputs=(INDICES, FLAT, OFFSETS)):
    """Output and parameter gradients of one forward and backward."""
    model.zero_grad()
    out = model(*inputs)
    out.pow(2).sum().backward()
    return [out] + [p.grad.to_dense() if p.grad.is_sparse else p.grad for p in model.parameters()]


def _trace(model, inputs=(INDICES, FLAT, OFFSETS)):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no TracerWarning, no "Graphs differed across invocations"
        return torch.jit.trace(model, inputs)


KWARGS = [dict(), dict(embedding_kwargs=dict(padding_idx=0, scale_grad_by_freq=True), bag_kwargs=dict(mode="max")),
          dict(embedding_kwargs=dict(sparse=True), bag_kwargs=dict(mode="sum", sparse=True, padding_idx=7)),
          dict(bag_kwargs=dict(mode="mean", include_last_offset=True))]


def test_trace_records_the_operators():
    _, ours = _models()
    traced = _trace(ours)
    graph = str(traced.inlined_graph)
    assert "embedding_native::embedding(" in graph and "embedding_native::embedding_bag(" in graph
    assert "prim::PythonOp" not in graph


@pytest.mark.parametrize("kwargs", KWARGS, ids=str)
def test_traced_model_computes_and_trains_as_torchs(kwargs):
    theirs, ours = _models(**kwargs)
    traced = _trace(ours, _inputs(kwargs))
    expected = _run(theirs, _inputs(kwargs))
    for got in (_run(traced, _inputs(kwargs)), _run(ours, _inputs(kwargs))):
        for a, b in zip(got, expected):
            assert identical(a, b)
    # Other shapes than the example's: the graph is not specialised to them.
    inputs = (torch.tensor([[5, 6, 7, 8], [0, 0, 9, 1]]), torch.tensor([9, 0]), torch.tensor([0, 0]))
    if kwargs.get("bag_kwargs", {}).get("include_last_offset"):
        inputs = inputs[:2] + (torch.tensor([0, 0, 2]),)
    for a, b in zip(_run(traced, inputs), _run(theirs, inputs)):
        assert identical(a, b)


def test_traced_per_sample_weights_and_max_norm():
    torch.manual_seed(1)
    bag = et.EmbeddingBag(10, 3, mode="sum", max_norm=1.0)
    traced = _trace(bag, (FLAT, OFFSETS, torch.rand(5)))
    reference = et.EmbeddingBag(10, 3, mode="sum", max_norm=1.0, _weight=bag.weight.detach().clone())
    assert "embedding_native::embedding_bag(" in str(traced.graph)
    flat, psw = torch.tensor([0, 4, 4, 9]), torch.rand(4, requires_grad=True)
    out, expected = traced(flat, OFFSETS, psw), reference(flat, OFFSETS, psw)
    assert identical(out, expected)
    assert identical(bag.weight, reference.weight)  # renormalised in place by the traced graph too
    (got_psw,) = torch.autograd.grad(out.sum(), psw)
    (expected_psw,) = torch.autograd.grad(expected.sum(), psw)
    assert identical(got_psw, expected_psw)


def test_traced_functional_calls():
    def function(weight, indices, flat, offsets):
        return et.embedding(indices, weight, padding_idx=1).sum(1) + et.embedding_bag(flat, weight, offsets, mode="sum")
    weight = torch.randn(10, 4, requires_grad=True)
    traced = _trace(function, (weight, INDICES, FLAT, OFFSETS))
    assert "embedding_native::embedding(" in str(traced.graph)
    assert identical(traced(weight, INDICES, FLAT, OFFSETS), function(weight, INDICES, FLAT, OFFSETS))


@pytest.mark.parametrize("kwargs", KWARGS, ids=str)
def test_scripted_model_computes_and_trains_as_torchs(kwargs):
    theirs, ours = _models(**kwargs)
    scripted = torch.jit.script(ours)
    assert "embedding_native.embedding_bag" in scripted.bag.code
    for a, b in zip(_run(scripted, _inputs(kwargs)), _run(theirs, _inputs(kwargs))):
        assert identical(a, b)


def test_errors_inside_a_graph_are_the_interpreters_runtime_error():
    # The TorchScript interpreter reports a failing operator as a RuntimeError naming where it
    # failed; torch 1.13 loses the text of an exception raised by a Python kernel (the eager
    # module raises it: docs/divergences.md).
    bag = et.EmbeddingBag(10, 3, mode="sum")
    for compiled in (_trace(bag, (FLAT, OFFSETS)), torch.jit.script(bag)):
        with pytest.raises(RuntimeError, match="The following operation failed in the TorchScript interpreter"):
            compiled(torch.tensor([1, 12]), torch.tensor([0]))


def _fresh_process(script):
    environment = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
    return subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=environment,
                          timeout=300)


@pytest.mark.parametrize("compile_", ["trace", "script"])
def test_saved_graph_loads_in_a_fresh_process(tmp_path, compile_):
    _, ours = _models(bag_kwargs=dict(mode="sum", padding_idx=7))
    compiled = _trace(ours) if compile_ == "trace" else torch.jit.script(ours)
    path = str(tmp_path / "model.pt")
    compiled.save(path)
    expected = _run(ours)
    torch.save(expected, str(tmp_path / "expected.pt"))
    script = (
        "import torch\n"
        "import embedding_native.torch\n"
        "model = torch.jit.load(%r)\n"
        "model.zero_grad()\n"
        "out = model(torch.tensor([[1, 2, 0], [3, 3, 4]]), torch.tensor([1, 2, 5, 7, 7]), torch.tensor([0, 3]))\n"
        "out.pow(2).sum().backward()\n"
        "got = [out] + [p.grad for p in model.parameters()]\n"
        "expected = torch.load(%r)\n"
        "assert all(torch.equal(a, b) for a, b in zip(got, expected))\n"
        "assert 'embedding_native::embedding_bag' in str(model.inlined_graph)\n"
        "print('ok')\n" % (path, str(tmp_path / "expected.pt")))
    completed = _fresh_process(script)
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.strip() == "ok"


def test_loading_without_the_package_names_the_missing_operator(tmp_path):
    _, ours = _models()
    path = str(tmp_path / "model.pt")
    _trace(ours).save(path)
    completed = _fresh_process("import torch\ntorch.jit.load(%r)\n" % path)
    assert completed.returncode != 0
    assert "embedding_native::embedding" in completed.stderr


def test_the_operators_are_the_eager_functions():
    # Called directly, with the eager functions' errors.
    weight = torch.randn(5, 3, requires_grad=True)
    out = torch.ops.embedding_native.embedding(weight, torch.tensor([1, 4]), 4)
    assert identical(out, et.embedding(torch.tensor([1, 4]), weight, padding_idx=4))
    out.sum().backward()
    assert identical(weight.grad[4], torch.zeros(3))
    with pytest.raises(IndexError, match="index out of range in self"):
        torch.ops.embedding_native.embedding(weight, torch.tensor([5]))
    bag = torch.ops.embedding_native.embedding_bag(weight, torch.tensor([0, 1, 2]), torch.tensor([0, 2]), mode="max")
    assert identical(bag, et.embedding_bag(torch.tensor([0, 1, 2]), weight, torch.tensor([0, 2]), mode="max"))


def test_scripted_functional_calls():
    # The functionals compile to the operators (padding_idx normalised as F.embedding does).
    def function(weight, indices, flat, offsets):
        return et.embedding(indices, weight, padding_idx=-1).sum(1) + et.embedding_bag(flat, weight, offsets,
                                                                                        mode="max")
    scripted = torch.jit.script(function)
    weight = torch.randn(5, 4, requires_grad=True)
    inputs = (weight, torch.tensor([[1, 4], [0, 2]]), torch.tensor([1, 2, 3]), torch.tensor([0, 1]))
    got, expected = scripted(*inputs), function(*inputs)
    assert identical(got, expected)
    assert identical(torch.autograd.grad(got.sum(), weight)[0], torch.autograd.grad(expected.sum(), weight)[0])

    def out_of_range(weight, indices):
        return et.embedding(indices, weight, padding_idx=-6)
    with pytest.raises(Exception, match="Padding_idx must be within num_embeddings"):
        torch.jit.script(out_of_range)(weight, torch.tensor([1]))


def test_reloading_keeps_the_operators():
    import importlib
    from embedding_native.torch import _library
    importlib.reload(_library)
    weight = torch.randn(4, 2)
    assert identical(torch.ops.embedding_native.embedding(weight, torch.tensor([3])), weight[3:])
