"""The torch drop-ins train tables memory-mapped from files, and refuse to write into read-only ones.

* A writable mapping (``tables.load(path, writable=True)``) trained through the drop-ins with
  torch's optimizers (sparse SGD, dense Adagrad) or with our fused steps gives torch.nn's
  weights bit for bit after every step, and after ``flush()`` the file holds them.
* ``max_norm`` renormalises the referenced rows of a writable mapping in place, as torch does.
* A read-only mapping (the default) serves inference; ``from_pretrained(freeze=False)``, a
  ``max_norm`` module, ``functional.embedding_renorm_`` and the fused optimizer steps on a tensor
  over it raise instead of writing (a write would be a segmentation fault), and nothing changes.
"""

import gc
import warnings

import numpy as np
import pytest
import torch

import embedding_native.torch as ent
from embedding_native import functional, optim, tables
from embedding_native._tables import read_only

FORMATS = ["npy", "safetensors"]


def _tensor(array):
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
        return torch.from_numpy(array)


def _initial(rows=50, cols=8, seed=0):
    return np.random.default_rng(seed).standard_normal((rows, cols)).astype(np.float32)


def _batches(rows, steps, seed=1):
    rng = np.random.default_rng(seed)
    return [torch.from_numpy(rng.integers(0, rows, size=12)) for _ in range(steps)]


@pytest.mark.parametrize("format", FORMATS)
def test_sparse_sgd_trains_a_writable_mapping_like_torch(tmp_path, format):
    path = tmp_path / f"t.{format}"
    initial = _initial()
    tables.save(path, initial)
    mapped = tables.load(path, writable=True)
    ours = ent.Embedding.from_pretrained(_tensor(mapped), freeze=False, sparse=True, padding_idx=3)
    reference = torch.nn.Embedding.from_pretrained(torch.from_numpy(initial.copy()), freeze=False, sparse=True,
                                                   padding_idx=3)
    ours_optimizer = torch.optim.SGD(ours.parameters(), lr=0.5)
    reference_optimizer = torch.optim.SGD(reference.parameters(), lr=0.5)
    for indices in _batches(50, 10):
        for module, optimizer in ((ours, ours_optimizer), (reference, reference_optimizer)):
            optimizer.zero_grad()
            (module(indices) ** 2).sum().backward()
            optimizer.step()
        assert torch.equal(ours.weight, reference.weight)
    assert not torch.equal(reference.weight, torch.from_numpy(initial))
    mapped.flush()
    assert torch.equal(torch.from_numpy(tables.load(path, mmap=False)), reference.weight.detach())


@pytest.mark.parametrize("format", FORMATS)
def test_dense_adagrad_trains_a_writable_bag_mapping_like_torch(tmp_path, format):
    path = tmp_path / f"t.{format}"
    initial = _initial(30, 5, seed=2)
    tables.save(path, initial)
    mapped = tables.load(path, writable=True)
    ours = ent.EmbeddingBag.from_pretrained(_tensor(mapped), freeze=False, mode="mean")
    reference = torch.nn.EmbeddingBag.from_pretrained(torch.from_numpy(initial.copy()), freeze=False, mode="mean")
    ours_optimizer = torch.optim.Adagrad(ours.parameters(), lr=0.1)
    reference_optimizer = torch.optim.Adagrad(reference.parameters(), lr=0.1)
    offsets = torch.tensor([0, 5, 5, 9])
    for indices in _batches(30, 8, seed=3):
        for module, optimizer in ((ours, ours_optimizer), (reference, reference_optimizer)):
            optimizer.zero_grad()
            module(indices, offsets).sin().sum().backward()
            optimizer.step()
        assert torch.equal(ours.weight, reference.weight)
    mapped.flush()
    assert torch.equal(torch.from_numpy(tables.load(path, mmap=False)), reference.weight.detach())


def test_fused_steps_and_max_norm_on_a_writable_mapping(tmp_path):
    path = tmp_path / "t.safetensors"
    initial = _initial(40, 6, seed=4) * 3
    tables.save(path, initial)
    mapped = tables.load(path, writable=True)
    weight = _tensor(mapped)
    expected = torch.from_numpy(initial.copy())
    rows = torch.tensor([1, 5, 6, 39])
    values = torch.from_numpy(np.random.default_rng(5).standard_normal((4, 6)).astype(np.float32))
    optim.sgd_step(weight, rows, values, 0.25)
    optim.sgd_step(expected, rows, values, 0.25)
    assert torch.equal(weight, expected)

    ours = ent.Embedding.from_pretrained(weight, max_norm=1.0)
    reference = torch.nn.Embedding.from_pretrained(expected, max_norm=1.0)
    indices = torch.tensor([0, 5, 7, 7, 39])
    with torch.no_grad():
        assert torch.equal(ours(indices), reference(indices))
    assert torch.equal(weight, expected)
    mapped.flush()
    written = tables.load(path, mmap=False)
    assert np.array_equal(written, expected.numpy())
    assert np.all(np.linalg.norm(written[[0, 5, 7, 39]], axis=1) <= 1.0 + 1e-6)


@pytest.mark.parametrize("format", FORMATS)
def test_a_read_only_mapping_serves_inference_and_refuses_writes(tmp_path, format):
    path = tmp_path / f"t.{format}"
    initial = _initial(20, 4, seed=6) * 4
    tables.save(path, initial)
    mapped = tables.load(path)
    weight = _tensor(mapped)
    indices = torch.tensor([[0, 19], [7, 7]])

    frozen = ent.Embedding.from_pretrained(weight)
    bag = ent.EmbeddingBag.from_pretrained(weight, mode="sum")
    with torch.no_grad():
        assert torch.equal(frozen(indices), torch.nn.functional.embedding(indices, torch.from_numpy(initial)))
        assert torch.equal(bag(indices), torch.nn.functional.embedding_bag(indices, torch.from_numpy(initial),
                                                                          mode="sum"))

    with pytest.raises(ValueError, match=r"read-only table mapping, so freeze=False \(training\)"):
        ent.Embedding.from_pretrained(weight, freeze=False)
    with pytest.raises(ValueError, match=r"read-only table mapping, so max_norm"):
        ent.EmbeddingBag.from_pretrained(weight, max_norm=1.0)
    with pytest.raises(ValueError, match="writable=True"):
        ent.EmbeddingBag.from_pretrained(weight[5:], freeze=False)      # a view into the mapping too
    with pytest.raises(RuntimeError, match="read-only"):
        functional.embedding_renorm_(weight, torch.tensor([1, 2]), 1.0, 2.0)
    with pytest.raises(RuntimeError, match="read-only"):
        optim.sgd_step(weight, torch.tensor([1]), torch.ones(1, 4), 0.1)
    with pytest.raises(RuntimeError, match="read-only"):
        optim.sgd_step(mapped, np.array([1]), np.ones((1, 4), np.float32), 0.1)   # numpy says so itself
    assert np.array_equal(tables.load(path, mmap=False), initial)

    # A copy of the mapping is ordinary memory: it trains.
    ent.Embedding.from_pretrained(weight.clone(), freeze=False, max_norm=1.0)


def test_a_closed_mapping_is_forgotten(tmp_path):
    path = tmp_path / "t.npy"
    tables.save(path, _initial(8, 8))
    mapped = tables.load(path)
    address, nbytes = mapped.ctypes.data, mapped.nbytes
    assert read_only.overlaps(address, nbytes) and read_only.overlaps(address + nbytes - 1, 1)
    assert not read_only.overlaps(address + nbytes, 64) and not read_only.overlaps(address - 64, 64)
    assert not read_only.overlaps(address, 0)
    writable = tables.load(path, writable=True)
    assert not read_only.overlaps(writable.ctypes.data, writable.nbytes)
    del mapped
    gc.collect()
    assert not read_only.overlaps(address, nbytes)
