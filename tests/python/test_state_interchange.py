"""State interchange between the torch drop-ins and torch's modules: state dicts (keys, dtypes,
strict loading both ways, through torch.save / torch.load), pickle and copy.deepcopy of the
drop-ins and of models holding them, and a whole module saved with torch.save and loaded in a
fresh process."""

import copy
import io
import os
import pickle
import subprocess
import sys

import pytest
import torch
import torch.nn as nn

import embedding_native.torch as et
from helpers import identical

EMBEDDING_CASES = [dict(), dict(padding_idx=1), dict(padding_idx=-2, max_norm=1.5, norm_type=1.0),
                   dict(sparse=True, scale_grad_by_freq=True), dict(dtype=torch.float64), dict(dtype=torch.float16),
                   dict(dtype=torch.bfloat16)]
BAG_CASES = [dict(), dict(mode="sum", padding_idx=0), dict(mode="max", include_last_offset=True),
             dict(mode="mean", sparse=True, max_norm=2.0), dict(dtype=torch.float64), dict(dtype=torch.float16)]
PAIRS = [(nn.Embedding, et.Embedding, case) for case in EMBEDDING_CASES] + \
        [(nn.EmbeddingBag, et.EmbeddingBag, case) for case in BAG_CASES]
IDS = ["%s-%s" % (theirs.__name__, case) for theirs, _, case in PAIRS]
ATTRIBUTES = ("num_embeddings", "embedding_dim", "padding_idx", "max_norm", "norm_type", "scale_grad_by_freq",
              "sparse", "mode", "include_last_offset")


def _same_module(a, b):
    """Same class, same torch attributes, same state, same requires_grad."""
    assert type(a) is type(b)
    for name in ATTRIBUTES:
        assert getattr(a, name, None) == getattr(b, name, None), name
    assert list(a.state_dict()) == list(b.state_dict())
    for (name, x), y in zip(a.state_dict().items(), b.state_dict().values()):
        assert identical(x, y), name
    assert a.weight.requires_grad == b.weight.requires_grad


def _forward(module):
    indices = torch.tensor([0, 3, 1, 1, 4])
    if isinstance(module, (nn.EmbeddingBag, et.EmbeddingBag)):
        offsets = torch.tensor([0, 2, 5] if module.include_last_offset else [0, 2])
        return module(indices, offsets)
    return module(indices)


def _saved(obj):
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    buffer.seek(0)
    return torch.load(buffer)


@pytest.mark.parametrize("theirs, ours, case", PAIRS, ids=IDS)
def test_state_dict_keys_and_dtypes_are_torchs(theirs, ours, case):
    reference, module = theirs(5, 3, **case), ours(5, 3, **case)
    assert list(module.state_dict()) == list(reference.state_dict()) == ["weight"]
    for ours_value, their_value in zip(module.state_dict().values(), reference.state_dict().values()):
        assert ours_value.dtype == their_value.dtype and ours_value.shape == their_value.shape
    assert [n for n, _ in module.named_parameters()] == [n for n, _ in reference.named_parameters()]
    assert list(module.named_buffers()) == list(reference.named_buffers()) == []


@pytest.mark.parametrize("theirs, ours, case", PAIRS, ids=IDS)
def test_state_dict_loads_strictly_both_ways(theirs, ours, case):
    torch.manual_seed(0)
    reference = theirs(5, 3, **case)
    module = ours(5, 3, **case)
    assert str(module.load_state_dict(reference.state_dict(), strict=True)) == "<All keys matched successfully>"
    assert identical(module.weight, reference.weight)
    with torch.no_grad():
        module.weight.mul_(2)
    back = theirs(5, 3, **case)
    back.load_state_dict(module.state_dict(), strict=True)
    assert identical(back.weight, module.weight)
    if "max_norm" not in case and (case.get("dtype") != torch.bfloat16 or theirs is nn.Embedding):
        # (max_norm renormalises in place, in double where torch uses the table's type.)
        assert identical(_forward(module), _forward(back))


@pytest.mark.parametrize("theirs, ours, case", PAIRS, ids=IDS)
def test_checkpoint_written_by_torch_loads_into_ours_and_back(theirs, ours, case):
    # A model checkpoint (torch.save of a state dict) written with torch's module, loaded into
    # the same model built with ours, saved again, loaded into torch's.
    def model(table_type):
        torch.manual_seed(1)
        return nn.Sequential(table_type(5, 3, **case), nn.Linear(3, 2, dtype=case.get("dtype")))
    written = _saved(model(theirs).state_dict())
    mine = model(ours)
    mine.load_state_dict(written)
    again = _saved(mine.state_dict())
    restored = model(theirs)
    with torch.no_grad():
        for parameter in restored.parameters():
            parameter.zero_()
    restored.load_state_dict(again)
    for name, value in written.items():
        assert identical(again[name], value), name
        assert identical(restored.state_dict()[name], value), name


@pytest.mark.parametrize("theirs, ours, case", PAIRS, ids=IDS)
def test_strict_loading_reports_torchs_errors(theirs, ours, case):
    module, reference = ours(5, 3, **case), theirs(5, 3, **case)
    for state in ({}, {"weight": torch.zeros(5, 3), "extra": torch.zeros(1)}, {"weight": torch.zeros(4, 3)}):
        errors = []
        for target in (reference, module):
            try:
                target.load_state_dict(state, strict=True)
                errors.append(None)
            except RuntimeError as e:
                errors.append(str(e).replace(type(target).__name__, "<module>"))
        assert errors[1] == errors[0] and errors[0] is not None


@pytest.mark.parametrize("theirs, ours, case", PAIRS, ids=IDS)
def test_pickle_deepcopy_and_torch_save_of_ours(theirs, ours, case):
    torch.manual_seed(2)
    module = ours(5, 3, **case)
    frozen = ours.from_pretrained(torch.randn(5, 3).to(case.get("dtype", torch.float32)))
    for original in (module, frozen):
        for make in (lambda: pickle.loads(pickle.dumps(original)), lambda: copy.deepcopy(original),
                     lambda: _saved(original)):
            clone = make()
            _same_module(clone, original)
            assert clone.weight.data_ptr() != original.weight.data_ptr()
            if case.get("dtype") != torch.bfloat16 or ours is et.Embedding:
                assert identical(_forward(clone), _forward(original))
                if clone.weight.requires_grad and not (clone.sparse and clone.scale_grad_by_freq):
                    _forward(clone).sum().backward()
                    assert clone.weight.grad is not None


def test_deepcopy_keeps_a_model_trainable_like_torchs():
    # A copied model (EMA / target networks) trains as the copy of torch's model does.
    def run(table_type, bag_type):
        torch.manual_seed(3)
        model = nn.ModuleDict({"emb": table_type(6, 4, padding_idx=0), "bag": bag_type(6, 4, mode="sum")})
        model = copy.deepcopy(model)
        optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
        indices = torch.tensor([[0, 1, 5], [2, 2, 3]])
        for _ in range(3):
            optimizer.zero_grad()
            (model["emb"](indices).pow(2).sum() + model["bag"](indices).sum()).backward()
            optimizer.step()
        return list(model.parameters())
    for theirs, ours in zip(run(nn.Embedding, nn.EmbeddingBag), run(et.Embedding, et.EmbeddingBag)):
        assert identical(ours, theirs)


def test_whole_model_saved_with_torch_save_loads_in_a_fresh_process(tmp_path):
    torch.manual_seed(4)
    model = nn.Sequential(et.EmbeddingBag(6, 4, mode="sum", padding_idx=2), nn.Linear(4, 2))
    path = tmp_path / "model.pt"
    torch.save(model, path)
    expected = model(torch.tensor([[1, 2, 5], [0, 3, 3]]))
    torch.save(expected, tmp_path / "expected.pt")
    script = (
        "import torch\n"
        "model = torch.load(%r)\n"  # unpickling imports embedding_native.torch by itself
        "assert type(model[0]).__module__ == 'embedding_native.torch', type(model[0])\n"
        "out = model(torch.tensor([[1, 2, 5], [0, 3, 3]]))\n"
        "assert torch.equal(out, torch.load(%r)), out\n"
        "print('ok')\n" % (str(path), str(tmp_path / "expected.pt")))
    environment = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
    completed = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=environment,
                               timeout=300)
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.strip() == "ok"
