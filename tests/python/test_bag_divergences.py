"""Where torch 1.13 crashes, returns garbage, or disagrees with its docs / later versions, and what
embedding_native does instead (docs/divergences.md has the table; each row points here).

torch runs in SUBPROCESSES for the inputs that can crash it (segfaults, heap corruption): each
case's outcome (return code, exception or result) is recorded and printed with -s, and only our
side is asserted — the torch outcome is asserted only where 1.13's behaviour is deterministic and
harmless (an exception or a wrong-but-stable value). All the subprocesses start at once (module
fixture) so the torch imports overlap.
"""

import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import embedding_native.functional as ef
import embedding_native.torch as et
from helpers import raised

PRELUDE = """
import json, sys, torch, torch.nn.functional as F
torch.set_num_threads(1)
W = torch.arange(1., 11.).view(5, 2)
I = torch.tensor([3, 1, 1, 1, 4, 0])
def report(x):
    print(json.dumps(x)); sys.stdout.flush()
try:
{body}
except Exception as e:
    report({{"error": type(e).__name__, "message": str(e)[:200]}})
"""

TORCH_CASES = {
    "zero-bags-max": "report(F.embedding_bag(I, W, torch.tensor([], dtype=torch.long), mode='max').tolist())",
    "zero-bags-mean-backward": """w = W.clone().requires_grad_()
F.embedding_bag(I, w, torch.tensor([], dtype=torch.long), mode='mean').sum().backward()
report(w.grad.tolist())""",
    "zero-bags-max-backward": """w = W.clone().requires_grad_()
F.embedding_bag(I, w, torch.tensor([], dtype=torch.long), mode='max').sum().backward()
report(w.grad.tolist())""",
    "zero-bags-sum-backward": """w = W.clone().requires_grad_()
F.embedding_bag(I, w, torch.tensor([], dtype=torch.long), mode='sum').sum().backward()
report(w.grad.tolist())""",
    "ilo-single-offset-max": "report(F.embedding_bag(I, W, torch.tensor([0]), mode='max', include_last_offset=True).tolist())",
    "ilo-trailing-mean": "report(F.embedding_bag(I, W, torch.tensor([0, 3, 5]), mode='mean', include_last_offset=True).tolist())",
    "ilo-trailing-max-padding": "report(F.embedding_bag(I, W, torch.tensor([0, 3, 5]), mode='max', include_last_offset=True, padding_idx=0).tolist())",
    "2d-ilo-sum": "report(F.embedding_bag(I.view(2, 3), W, mode='sum', include_last_offset=True).tolist())",
    "decreasing-sum": "report(F.embedding_bag(I, W, torch.tensor([0, 4, 2]), mode='sum').tolist())",
    "decreasing-sum-padding": "report(F.embedding_bag(I, W, torch.tensor([0, 4, 2]), mode='sum', padding_idx=1).tolist())",
    "negative-offset-mean": "report(F.embedding_bag(I, W, torch.tensor([0, -1, 3]), mode='mean').tolist())",
}


#: Cases that return or raise cleanly in 1.13 (in the spec's runs and here) share one process;
#: each of the others (segfaults, heap corruption, uninitialised memory) gets its own.
SHARED = ("ilo-trailing-mean", "2d-ilo-sum", "decreasing-sum", "decreasing-sum-padding", "negative-offset-mean")


@pytest.fixture(scope="module")
def torch_outcomes():
    """{case: {"rc": return code, "result": parsed JSON or None}}."""
    processes = {}
    groups = {name: [name] for name in TORCH_CASES if name not in SHARED}
    groups["shared"] = list(SHARED)
    for group, names in groups.items():
        code = "".join(PRELUDE.format(body=textwrap.indent(TORCH_CASES[name], "    ")) for name in names)
        processes[group] = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE,
                                           stderr=subprocess.PIPE, text=True)
    outcomes = {}
    for group, process in processes.items():
        try:
            out, err = process.communicate(timeout=120)
        except subprocess.TimeoutExpired:
            process.kill()
            out, err = process.communicate()
        lines = out.strip().splitlines()
        for k, name in enumerate(groups[group]):
            outcomes[name] = {"rc": process.returncode if k == len(lines) - 1 or k >= len(lines) else 0,
                              "result": json.loads(lines[k]) if k < len(lines) else None,
                              "stderr": err.strip().splitlines()[-1:] if err.strip() else []}
            print("torch 1.13 %-26s rc=%s %s %s" % (name, outcomes[name]["rc"], outcomes[name]["result"],
                                                      outcomes[name]["stderr"]))
    return outcomes


W = torch.arange(1.0, 11.0).view(5, 2)
I = torch.tensor([3, 1, 1, 1, 4, 0])
EMPTY = torch.tensor([], dtype=torch.long)


def crashed_or_garbage(outcome):
    return outcome["rc"] != 0 or outcome["result"] is not None


# ---- zero bags with a non-empty input: positions belong to no bag --------------------------------------


@pytest.mark.parametrize("mode", ["sum", "mean", "max"])
def test_zero_bags_give_empty_output_and_zero_gradient(torch_outcomes, mode):
    assert crashed_or_garbage(torch_outcomes["zero-bags-max"])
    w = W.clone().requires_grad_()
    out = et.embedding_bag(I, w, EMPTY, mode=mode)
    assert out.shape == (0, 2)
    out.sum().backward()
    assert torch.equal(w.grad, torch.zeros(5, 2))     # torch 1.13: segfault (mean/max) or garbage (sum)


# ---- include_last_offset: the last offset must be L ----------------------------------------------------


@pytest.mark.parametrize("mode", ["sum", "mean", "max"])
def test_include_last_offset_requires_the_last_offset_to_be_the_length(torch_outcomes, mode):
    for offsets in ([0], [0, 3, 5]):
        e = raised(lambda: ef.embedding_bag(I, W, torch.tensor(offsets), mode=mode, include_last_offset=True))
        assert isinstance(e, RuntimeError) and "include_last_offset" in str(e), e
    # torch 1.13 with [0, 3, 5] (when it does not crash) divides the last mean bag by L - 3 = 3
    mean = torch_outcomes["ilo-trailing-mean"]
    if mean["rc"] == 0 and isinstance(mean["result"], list):
        assert mean["result"][1] == pytest.approx([4.0, 4.6666665])
    # a valid CSR (last offset == L) is accepted, including [0] for an empty input
    assert ef.embedding_bag(EMPTY, W, torch.tensor([0]), mode=mode, include_last_offset=True).shape == (0, 2)


def test_2d_input_with_include_last_offset_gives_b_bags_as_torch_2(torch_outcomes):
    outcome = torch_outcomes["2d-ilo-sum"]
    if outcome["rc"] == 0:
        assert outcome["result"] == [[13.0, 16.0]]     # 1.13: B - 1 = 1 bag
    for mode in ("sum", "mean", "max"):
        ours = ef.embedding_bag(I.view(2, 3), W, mode=mode, include_last_offset=True)
        assert torch.equal(ours, F.embedding_bag(I.view(2, 3), W, mode=mode))     # B = 2 bags


# ---- offsets must be non-decreasing ---------------------------------------------------------------------


@pytest.mark.parametrize("offsets", [[0, 4, 2], [0, -1, 3]], ids=["decreasing", "negative"])
@pytest.mark.parametrize("mode", ["sum", "mean", "max"])
@pytest.mark.parametrize("padding_idx", [None, 1])
def test_decreasing_offsets_are_rejected(torch_outcomes, offsets, mode, padding_idx):
    e = raised(lambda: ef.embedding_bag(I, W, torch.tensor(offsets), mode=mode, padding_idx=padding_idx))
    assert type(e).__name__ == "EmbeddingRuntimeError" and isinstance(e, RuntimeError)
    assert "non-decreasing" in str(e)
    # torch 1.13: an enforce RuntimeError on its fast path; with padding it silently returns values
    # from its offset2bag rule (recorded, not asserted: it is not a meaningful result)
    if torch_outcomes["decreasing-sum"]["rc"] == 0:
        assert torch_outcomes["decreasing-sum"]["result"]["error"] == "RuntimeError"


# ---- scale_grad_by_freq: each row's own count (torch <= 2.13 uses another row's count) -----------------


def test_scale_grad_by_freq_uses_each_rows_own_count():
    idx = torch.tensor([1, 1, 3])
    theirs_w = torch.ones(4, 3, requires_grad=True)
    F.embedding_bag(idx, theirs_w, torch.tensor([0]), mode="sum", scale_grad_by_freq=True).sum().backward()
    assert theirs_w.grad[:, 0].tolist() == [0.0, 1.0, 0.0, 0.5]          # torch's bug
    ours_w = torch.ones(4, 3, requires_grad=True)
    et.embedding_bag(idx, ours_w, torch.tensor([0]), mode="sum", scale_grad_by_freq=True).sum().backward()
    assert ours_w.grad[:, 0].tolist() == [0.0, 1.0, 0.0, 1.0]            # documented: 1/own count
    # the oracle: F.embedding with scale_grad_by_freq (correct in torch), summed per bag
    emb_w = torch.ones(4, 3, requires_grad=True)
    F.embedding(idx, emb_w, scale_grad_by_freq=True).sum().backward()
    assert torch.equal(ours_w.grad, emb_w.grad)


@pytest.mark.parametrize("mode", ["sum", "mean"])
def test_scale_grad_by_freq_matches_torch_where_all_counts_are_equal(mode):
    idx = torch.tensor([4, 2, 2, 4, 0, 0, 1, 1])        # every distinct index twice: torch's bug is invisible
    offsets = torch.tensor([0, 3, 3, 6])
    g = torch.randn(4, 5, generator=torch.Generator().manual_seed(0))
    weight = torch.randn(6, 5, generator=torch.Generator().manual_seed(1))
    a = weight.clone().requires_grad_()
    b = weight.clone().requires_grad_()
    F.embedding_bag(idx, a, offsets, mode=mode, scale_grad_by_freq=True).backward(g)
    et.embedding_bag(idx, b, offsets, mode=mode, scale_grad_by_freq=True).backward(g)
    assert torch.equal(b.grad, a.grad)


# ---- per_sample_weights requiring grad with a frozen weight ---------------------------------------------


def test_psw_gradient_with_frozen_weight():
    psw = torch.tensor([2.0, 0.5, -1.0, 3.0, 0.25, 10.0])
    offsets = torch.tensor([0, 3])
    e = raised(lambda: F.embedding_bag(I, W, offsets, mode="sum", per_sample_weights=psw.clone().requires_grad_()))
    assert "INTERNAL ASSERT" in str(e)                 # torch 1.13 (fixed in 2.x)
    p = psw.clone().requires_grad_()
    out = et.embedding_bag(I, W, offsets, mode="sum", per_sample_weights=p)
    out.backward(torch.tensor([[1.0, 2.0], [3.0, 4.0]]))
    w2 = W.clone().requires_grad_()
    p2 = psw.clone().requires_grad_()
    F.embedding_bag(I, w2, offsets, mode="sum", per_sample_weights=p2).backward(torch.tensor([[1.0, 2.0], [3.0, 4.0]]))
    assert torch.equal(p.grad, p2.grad) and p.grad.tolist() == [23.0, 11.0, 11.0, 25.0, 67.0, 11.0]


# ---- psw: both of torch's rounding paths are reproduced --------------------------------------------------


def test_psw_two_rounding_paths_reproduced():
    rng = np.random.default_rng(0)
    w = torch.from_numpy(rng.standard_normal((50, 33), dtype=np.float32))
    idx = torch.from_numpy(rng.integers(1, 50, size=400))
    psw = torch.from_numpy(rng.standard_normal(400).astype(np.float32))
    offsets = torch.arange(0, 400, 20)
    fast = F.embedding_bag(idx, w, offsets, mode="sum", per_sample_weights=psw)                 # fma (AVX2 + FMA CPUs)
    slow = F.embedding_bag(idx, w, offsets, mode="sum", per_sample_weights=psw, padding_idx=0)  # two roundings
    # The two paths really differ (padding row 0 is unused) where torch's lookups fuse; elsewhere both round.
    assert torch.equal(fast, slow) != ef.build_info()["fused_lookups"]
    assert torch.equal(ef.embedding_bag(idx, w, offsets, mode="sum", per_sample_weights=psw), fast)
    assert torch.equal(ef.embedding_bag(idx, w, offsets, mode="sum", per_sample_weights=psw, padding_idx=0), slow)
