"""max_norm: embedding_renorm_ and embedding(..., max_norm=...) against torch 1.13, bit for bit.

torch computes each row's norm in float32 (``row.norm(p)``) with its own order: one running float
sum for p = 0, 1 and the general p (powf), and for p = 2 the vectorised kernel of the ATen CPU
capability torch runs (AVX2 on an AVX2 CPU: 8 FMA lanes; ``ATEN_CPU_CAPABILITY=default``: 8 lanes
without FMA; ``avx512``: 16 lanes). The library computes the same norm in the same order, so every
renormalised table here must be torch's exactly (``torch.equal`` / equal bits), for every D,
norm_type, max_norm and table type, including rows whose norm is at max_norm.
"""

import math
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import embedding_native as en
from embedding_native import functional as ef
from helpers import bits, exact_row_norms, raised

INF = float("inf")

#: Every norm_type torch special-cases, and general ones (fractional, negative, as a float).
NORM_TYPES = [2.0, 1.0, 3.0, 0.5, 1.5, INF, -INF, 0.0, -1.0, 2.5, 1.1]

#: Tails of every length around torch's 8- and 16-lane blocks, and common embedding sizes.
DIMS = [1, 2, 3, 4, 5, 7, 8, 9, 11, 12, 15, 16, 17, 20, 23, 24, 28, 31, 32, 33, 63, 64, 65, 100, 127,
        300, 768, 1100]


def same(a, b):
    """Equal bits (NaNs included), for numpy arrays or tensors of any table type."""
    a = a.detach() if isinstance(a, torch.Tensor) else torch.from_numpy(np.asarray(a))
    b = b.detach() if isinstance(b, torch.Tensor) else torch.from_numpy(np.asarray(b))
    return a.dtype == b.dtype and a.shape == b.shape and torch.equal(a.contiguous().view(-1).view(torch.uint8),
                                                                    b.contiguous().view(-1).view(torch.uint8))


def torch_renorm(w, idx, max_norm, p):
    expected = torch.from_numpy(w.copy())
    with torch.no_grad():
        torch.embedding_renorm_(expected, torch.from_numpy(idx), max_norm, p)
    return expected.numpy()


def torch_norms(w, p):
    """torch's own float32 row norms (``row.norm(p)``, as embedding_renorm_ computes them)."""
    t = torch.from_numpy(w)
    return np.array([t[r].norm(p).item() for r in range(w.shape[0])])


@pytest.mark.parametrize("p", NORM_TYPES, ids=str)
@pytest.mark.parametrize("dim", DIMS)
@pytest.mark.parametrize("dtype", [np.int32, np.int64])
def test_random_rows_bit_identical(p, dim, dtype):
    rng = np.random.default_rng(dim)
    w = rng.standard_normal((40, dim), dtype=np.float32) * rng.uniform(0.1, 3, size=(40, 1)).astype(np.float32)
    if p >= 0:
        w[rng.random(w.shape) < 0.05] = 0  # zeros matter for p = 0 (with p < 0 one zero makes the norm 0)
    n = torch_norms(w, p)
    max_norm = float(np.median(n)) - (0.5 if p == 0 else 0)   # counts are whole: below the median count
    idx = rng.integers(0, 40, size=60).astype(dtype)
    expected = torch_renorm(w, idx, max_norm, p)
    idx_before = idx.copy()
    ours = w.copy()
    assert ef.embedding_renorm_(ours, idx, max_norm, p) is ours
    assert np.array_equal(idx, idx_before)  # the indices buffer is not modified (torch sorts a copy)
    assert np.any(expected != w)            # some rows rescaled
    assert same(ours, expected), (p, dim, int(np.sum(bits(ours) != bits(expected))))


@pytest.mark.parametrize("p", [2.0, 1.0, 3.0, 0.5, 1.5], ids=str)
def test_every_dimension_up_to_1100(p):
    # One table per D = 1 … 1100, rows of both signs and magnitudes 2^-10 … 2^10: every tail length,
    # every block count; max_norm below every norm, so each row is rescaled by its own norm.
    rng = np.random.default_rng(int(p * 10))
    bad = []
    for dim in range(1, 1101):
        w = (rng.standard_normal((3, dim)) * np.exp2(rng.integers(-10, 11, size=(3, 1)))).astype(np.float32)
        idx = np.array([2, 0, 1, 0])
        max_norm = float(torch_norms(w, p).min()) * 0.5
        expected = torch_renorm(w, idx, max_norm, p)
        ours = w.copy()
        ef.embedding_renorm_(ours, idx, max_norm, p)
        if not same(ours, expected):
            bad.append(dim)
    assert not bad, (p, bad[:20], len(bad))


@pytest.mark.parametrize("p", [2.0, 1.0, 3.0, 0.5], ids=str)
def test_max_norm_values(p):
    # max_norm exactly a row's norm (kept: strict >), just below it (rescaled), 0, negative, huge, tiny.
    rng = np.random.default_rng(8)
    w = rng.standard_normal((12, 37), dtype=np.float32) * 2
    n = torch_norms(w, p)
    below = float(np.nextafter(np.float32(n[3]), np.float32(0)))
    for max_norm in [float(n[3]), below, 0.0, -1.0, 1e30, 1e-30, float(np.float32(n[5]) * 0.999)]:
        idx = np.arange(12)
        expected = torch_renorm(w, idx, max_norm, p)
        ours = w.copy()
        ef.embedding_renorm_(ours, idx, max_norm, p)
        assert same(ours, expected), (p, max_norm)
    ours = w.copy()
    ef.embedding_renorm_(ours, np.array([3]), float(n[3]), p)
    assert same(ours, w)   # the norm equal to max_norm: untouched, on both sides


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.float16, torch.bfloat16], ids=str)
@pytest.mark.parametrize("p", [2.0, 1.0, 3.0, 0.5, INF, 0.0], ids=str)
def test_table_types_and_duplicates_bit_identical(dtype, p):
    rng = np.random.default_rng(12)
    for dim in [5, 16, 33, 300]:
        w = torch.from_numpy(rng.standard_normal((20, dim)) * 3).to(dtype)
        idx = torch.from_numpy(rng.integers(0, 20, size=50))   # duplicates: each row rescaled once
        max_norm = float(w[:5].double().norm(p if p else 2.0, dim=1).median()) if p else dim * 0.6
        expected = w.clone()
        torch.embedding_renorm_(expected, idx, max_norm, p)
        ours = w.clone()
        ef.embedding_renorm_(ours, idx, max_norm, p)
        assert same(ours, expected), (dtype, p, dim)


@pytest.mark.parametrize("p", [INF, -INF, 0.0], ids=str)
@pytest.mark.parametrize("dim", [1, 7, 64, 768])
def test_exact_norm_types_bit_identical(p, dim):
    # max |x|, min |x| and the count of non-zeros are exact, whatever the order.
    rng = np.random.default_rng(dim)
    w = rng.standard_normal((30, dim), dtype=np.float32) * rng.uniform(0.1, 10, size=(30, 1)).astype(np.float32)
    if p == 0:
        w[rng.random(w.shape) < 0.2] = 0     # counts of non-zeros that differ between rows
    n = exact_row_norms(w, p)
    max_norm = float(np.quantile(n, 0.4)) - (0.5 if p == 0 else 0)
    idx = rng.integers(0, 30, size=45)
    expected = torch_renorm(w, idx, max_norm, p)
    ours = w.copy()
    ef.embedding_renorm_(ours, idx, max_norm, p)
    assert np.any(expected != w)
    assert np.array_equal(bits(ours), bits(expected))


_CAPABILITY_SCRIPT = textwrap.dedent("""
    import numpy as np, torch
    from embedding_native import functional as ef
    rng = np.random.default_rng(5)
    bad = []
    for dtype in (torch.float32, torch.float64, torch.bfloat16, torch.float16):
        for dim in list(range(1, 70)) + [127, 255, 300, 768, 1100]:
            for strided in (False, True):   # a transposed table: torch's scalar 2-norm
                w = torch.from_numpy(rng.standard_normal((dim, 4) if strided else (4, dim)) * 2).to(dtype)
                w = w.t() if strided else w
                idx = torch.tensor([3, 1, 0, 2, 1])
                expected = w.clone()
                torch.embedding_renorm_(expected, idx, 0.5, 2.0)
                ours = w.clone()
                ef.embedding_renorm_(ours, idx, 0.5, 2.0)
                if not torch.equal(ours, expected):
                    bad.append((str(dtype), dim, strided))
    print(torch.__config__.show().split("CPU capability usage: ")[1].split()[0], len(bad), bad[:5])
""")


@pytest.mark.parametrize("capability", ["default", "avx2", "avx512", "DEFAULT"])
def test_follows_torchs_cpu_capability(capability):
    # The 2-norm's lanes and fused products depend on the ATen kernels torch runs; ATEN_CPU_CAPABILITY
    # picks them (an unknown value such as "DEFAULT" is ignored with a warning: CPU detection).
    with open("/proc/cpuinfo") as f:
        flags = f.read()
    if (capability == "avx2" and " avx2" not in flags) or (capability == "avx512" and " avx512bw" not in flags):
        pytest.skip("the CPU cannot run torch's %s kernels" % capability)
    env = dict(os.environ, ATEN_CPU_CAPABILITY=capability, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
    result = subprocess.run([sys.executable, "-c", _CAPABILITY_SCRIPT], env=env, capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr
    used, bad, first = result.stdout.split(" ", 2)
    assert used == {"default": "NO", "avx2": "AVX2", "avx512": "AVX512"}.get(capability, used)  # "NO AVX"
    assert bad == "0", (capability, first)


# Row [3, -4] and row [1, 2], max_norm 1 (spec §1.6 table): the values torch 1.13 printed.
SPEC_TABLE = {
    1.0: [0.4285714030265808, -0.5714285373687744],
    2.0: [0.6000000238418579, -0.800000011920929],
    3.0: [0.6669718027114868, -0.8892956972122192],
    0.5: [0.21539029479026794, -0.2871870696544647],
    INF: [0.75, -1.0],
    -INF: [0.9999999403953552, -1.3333332538604736],
    0.0: [1.4999998807907104, -1.9999998807907104],
    -1.0: [1.75, -2.3333332538604736],
}
SECOND_ROW = {-1.0: [1.0, 2.0], -INF: [1.0, 2.0], INF: [0.4999999701976776, 0.9999999403953552]}


@pytest.mark.parametrize("p", list(SPEC_TABLE), ids=str)
def test_spec_table(p):
    w = np.array([[3, -4], [1, 2]], np.float32)
    ef.embedding_renorm_(w, np.array([0, 1]), 1.0, p)
    assert same(w[0], np.array(SPEC_TABLE[p], np.float32))
    assert same(w, torch_renorm(np.array([[3, -4], [1, 2]], np.float32), np.array([0, 1]), 1.0, p))
    if p in SECOND_ROW:
        assert same(w[1], np.array(SECOND_ROW[p], np.float32))


def test_spec_values_exact():
    w = np.array([[3, 4]], np.float32)
    ef.embedding_renorm_(w, np.array([0]), 1.0)
    assert w.tolist() == [[0.6000000238418579, 0.800000011920929]]  # 3 * fl32(1/(5+1e-7)): exact here
    w = np.array([[3, 4]], np.float32)
    ef.embedding_renorm_(w, np.array([0]), 5.0)
    assert w.tolist() == [[3.0, 4.0]]                                 # n == max_norm: untouched
    w = np.array([[3, 4]], np.float32)
    ef.embedding_renorm_(w, np.array([0]), 0.0)
    assert w.tolist() == [[0.0, 0.0]]
    w = np.array([[3, 4]], np.float32)
    ef.embedding_renorm_(w, np.array([0]), -1.0)
    assert w.tolist() == [[-0.6000000238418579, -0.800000011920929]]
    w = np.array([[3, 4]], np.float32)
    ef.embedding_renorm_(w, np.array([0]), True, 2)                   # max_norm=True is 1.0, int p
    assert w.tolist() == [[0.6000000238418579, 0.800000011920929]]


def test_duplicates_renormalised_once_and_unreferenced_untouched():
    w = np.array([[3, 4], [6, 8], [30, 40]], np.float32)
    out = en.embedding(np.array([0, 0, 1]), w, max_norm=1.0)
    assert np.array_equal(out, np.array([[0.6, 0.8]] * 3, np.float32))
    assert w[2].tolist() == [30, 40]
    expected = torch.tensor([[3, 4], [6, 8], [30, 40]], dtype=torch.float32)
    ref = F.embedding(torch.tensor([0, 0, 1]), expected, max_norm=1.0)
    assert np.array_equal(bits(out), bits(ref)) and np.array_equal(bits(w), bits(expected))


@pytest.mark.parametrize("shape", [(), (0,), (5,), (2, 3), (3, 0)], ids=str)
def test_embedding_with_max_norm_matches_torch(shape):
    rng = np.random.default_rng(3)
    w = rng.standard_normal((9, 6), dtype=np.float32) * 2
    idx = rng.integers(0, 9, size=shape)
    reference = torch.from_numpy(w.copy())
    expected = F.embedding(torch.from_numpy(idx), reference, max_norm=2.0)
    ours = en.embedding(idx, w, max_norm=2.0)
    assert ours.shape == tuple(expected.shape)
    assert same(ours, expected)
    assert same(w, reference)
    # and on tensors, in place through the tensor's memory
    t = torch.from_numpy(rng.standard_normal((9, 6), dtype=np.float32) * 2)
    reference = t.clone()
    ours = en.embedding(torch.from_numpy(idx), t, max_norm=2.0)
    expected = F.embedding(torch.from_numpy(idx), reference, max_norm=2.0)
    assert same(ours, expected) and same(t, reference)


def test_non_contiguous_weight_and_indices():
    base = np.random.default_rng(4).standard_normal((6, 10), dtype=np.float32) * 3
    w = base.T  # (10, 6), a view
    expected = torch_renorm(np.ascontiguousarray(w), np.array([1, 4, 4, 9]), 1.5, 2.0)
    ef.embedding_renorm_(w, np.array([[1, 4], [4, 9]]).T, 1.5)
    assert same(np.ascontiguousarray(w), expected)
    t = torch.from_numpy(base.copy()).t()
    ef.embedding_renorm_(t, torch.tensor([1, 4, 4, 9]), 1.5)
    assert same(t.contiguous(), expected)


def test_tensor_version_bumped_like_torch():
    w = torch.randn(5, 3) * 4
    before = w._version
    ef.embedding_renorm_(w, torch.tensor([1, 2]), 1.0)
    assert w._version > before
    before = w._version
    ef.embedding_renorm_(w, torch.tensor([], dtype=torch.int64), 1.0)
    assert w._version == before


def test_empty_indices_change_nothing():
    w = np.array([[3, 4]], np.float32)
    ef.embedding_renorm_(w, np.zeros(0, np.int64), 1.0)
    assert w.tolist() == [[3, 4]]


def test_errors():
    # Same exception types as torch. A bad index: IndexError in both, but we check every index
    # before changing any row (torch 1.13 renormalises the rows sorted before it first).
    w = np.array([[3, 4], [6, 8]], np.float32)
    for idx in ([0, 5], [5, 0], [-1, 0]):
        e = raised(lambda: ef.embedding_renorm_(w, np.array(idx), 1.0))
        assert isinstance(e, IndexError), e
        assert w.tolist() == [[3, 4], [6, 8]]
        assert isinstance(raised(lambda: en.embedding(np.array(idx), w, max_norm=1.0)), IndexError)
        assert isinstance(raised(lambda: F.embedding(torch.tensor(idx), torch.tensor([[3., 4], [6, 8]]), max_norm=1.0)),
                          IndexError)
    for bad_weight, bad_idx in [(np.ones(4, np.float32), np.array([1])), (w, np.array([1.0]))]:
        theirs = raised(lambda: torch.embedding_renorm_(torch.from_numpy(bad_weight.copy()), torch.from_numpy(bad_idx),
                                                        1.0, 2.0))
        ours = raised(lambda: ef.embedding_renorm_(bad_weight, bad_idx, 1.0))
        assert isinstance(ours, RuntimeError) and str(ours) == str(theirs)
        ours = raised(lambda: en.embedding(bad_idx, bad_weight, max_norm=1.0))
        theirs = raised(lambda: F.embedding(torch.from_numpy(bad_idx), torch.from_numpy(bad_weight.copy()),
                                            max_norm=1.0))
        assert isinstance(ours, RuntimeError) and str(ours) == str(theirs)
    assert isinstance(raised(lambda: ef.embedding_renorm_(w.astype(np.int32), np.array([0]), 1.0)),
                      NotImplementedError)
    assert isinstance(raised(lambda: en.embedding(np.array([1]), np.zeros((0, 3), np.float32), max_norm=1.0)),
                      IndexError)  # torch: IndexError "select(): index 1 out of range ..."


def test_numpy_module_max_norm():
    w = np.array([[3, 4], [6, 8]], np.float32)
    module = en.Embedding.from_pretrained(w, max_norm=1.0)
    assert module(np.array([1])).tolist() == [[0.6000000238418579, 0.800000011920929]]
    assert w[1].tolist() == [0.6000000238418579, 0.800000011920929] and w[0].tolist() == [3, 4]
    assert math.isclose(np.linalg.norm(w[1]), 1.0, rel_tol=1e-6)


@pytest.mark.parametrize("p", [1.0, 2.0, 3.0], ids=str)
def test_long_rows(p):
    # Rows up to torch's 32768-element grain reduce in one sum on any thread count; longer ones on
    # one torch thread (on more, torch splits the p = 1 and general-p sums: docs/divergences.md).
    threads = torch.get_num_threads()
    rng = np.random.default_rng(int(p))
    try:
        for dim, torch_threads in [(20000, 2), (32768, 2), (40000, 1), (100000, 1)]:
            torch.set_num_threads(torch_threads)
            w = rng.standard_normal((3, dim), dtype=np.float32)
            max_norm = float(torch_norms(w, p).min()) * 0.5
            idx = np.array([0, 2, 1])
            expected = torch_renorm(w, idx, max_norm, p)
            ours = w.copy()
            ef.embedding_renorm_(ours, idx, max_norm, p)
            assert same(ours, expected), (p, dim)
    finally:
        torch.set_num_threads(threads)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.float16, torch.bfloat16], ids=str)
@pytest.mark.parametrize("p", [2.0, 1.0, 3.0], ids=str)
def test_strided_rows_bit_identical(dtype, p):
    # A transposed table: torch's 2-norm of a strided row is its scalar kernel (one column sum), not
    # the vectorised one, for float32 and bfloat16; ours follows (emb_embedding_renorm_strided_rows).
    # Rows strided only between each other (w[::2]) keep the vectorised norm.
    rng = np.random.default_rng(21)
    for dim in [1, 2, 5, 8, 13, 16, 17, 33, 64, 100, 300]:
        base = torch.from_numpy(rng.standard_normal((dim, 12)) * 2).to(dtype)
        idx = torch.tensor([0, 3, 5, 3, 11, 7, 8])
        for table in (base.t(), torch.from_numpy(rng.standard_normal((24, dim)) * 2).to(dtype)[::2]):
            expected = table.clone()
            torch.embedding_renorm_(expected, idx, 0.5, p)
            ours = table.clone()
            ef.embedding_renorm_(ours, idx, 0.5, p)
            assert same(ours, expected), (dtype, p, dim, table.stride())
    # numpy: a transposed array is a strided table too
    w = rng.standard_normal((40, 9), dtype=np.float32).T
    reference = torch.from_numpy(w).clone()   # keeps the transposed strides
    torch.embedding_renorm_(reference, torch.tensor([0, 4, 8]), 1.0, p)
    if dtype == torch.float32:
        ef.embedding_renorm_(w, np.array([0, 4, 8]), 1.0, p)
        assert same(np.ascontiguousarray(w), reference.contiguous())
