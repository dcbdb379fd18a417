#!/usr/bin/env python3
"""Side-by-side benchmark: embedding_native vs torch 1.13, in one process, on the same inputs.

Run with Debian's interpreter (it has torch; plots need python3-matplotlib)::

    /usr/bin/python3 bench/side_by_side.py            # full run, ~5-8 minutes
    /usr/bin/python3 bench/side_by_side.py --quick    # subset, < 2 minutes
    /usr/bin/python3 bench/side_by_side.py --threads 2

Operations (torch's own op, called directly, against ours on the very same tensors):

  gather               F.embedding                 vs en.embedding (new output), out= (reused), numpy out=
  dense backward       aten.embedding_dense_backward vs functional.embedding_backward accumulate / overwrite
  autograd dense       F.embedding(...).backward(G) vs embedding_native.torch.embedding(...).backward(G)
  sparse bwd+coalesce  aten.embedding_sparse_backward(...).coalesce() vs embedding_sparse_backward + sparse_coalesce
  coalesce             Tensor.coalesce() of that uncoalesced gradient vs sparse_coalesce
  renorm               torch.embedding_renorm_     vs functional.embedding_renorm_ (max_norm=1, p=2)
  renorm_f64/f16/bf16  the same on a copy of the table in that dtype, torch of the same dtype
  bag sum/mean/max/wsum  F.embedding_bag           vs en.embedding_bag (bags of 32, 1-D input + offsets)
  bag backward         aten._embedding_bag_backward (autograd's op) vs functional.embedding_bag_backward accumulate / overwrite
  optim sgd/adagrad/sparse_adam  torch.optim.* step on a coalesced sparse grad vs optim.*_step on its rows
  qbag byte/4bit/2bit  torch.ops.quantized.embedding_bag_*_rowwise_offsets vs embedding_native.quantized's, on
                       the table packed once by torch (bags of 32); also our float32 bag sum of the same bags,
                       for the rows-per-second ratio of a quantized table to a float32 one

Workloads (fp32 table, int64 indices; as in the project's performance anchors):

  A  V=50 000, D=768, N=8 192, uniform              B  V=100 000, D in 16..256, N=65 536, uniform
  C  V=4 000 000, D=64 (1 GiB), N=65 536; uniform and Zipf(a=1.05, ranks scattered by
     r*2654435761 mod V); "hot" repeats one index set, "cold" rotates through 64 sets
  D  V=10, D=5, N=3 (per-call cost from Python)
  plus B at D = 128 / 256 with a 23 MiB table (V = 48 000 / 24 000): B's own tables of those widths
  exceed a 32 MiB last-level cache, so these show the kernels with the table in cache

Method: the same-run memcpy denominators (glibc memcpy through ctypes.memmove: DRAM 1 GiB,
LLC 32 MiB, L2 512 KiB per thread) are measured right before each workload. Each method gets
warm-up calls, then repeated rounds of back-to-back calls lasting at least --min-time; the
rounds of the methods of one operation are interleaved (torch round, ours round, ...) so that
drift on the shared machine hits them alike. Reported: the median per-call time over rounds,
p25-p75 in the appendix, GB/s of useful bytes:

  gather, dense/sparse backward: 2*N*D*4      bags and bag backward: N*D*4 + B*D*4 (B = N/32)
  renorm: N*D*e (rows read, e bytes each)    memcpy: 2*size (read + write)
  optim steps on n coalesced rows: SGD 3*n*D*4, Adagrad 5*n*D*4, SparseAdam 7*n*D*4
  quantized bags: N*R + B*D*4 (R = packed row bytes: D+8 at 8 bits, ceil(D*b/8)+4 at b = 4, 2)

ours/torch is the speed ratio (torch time / our time); ours/memcpy is our GB/s over the DRAM
memcpy GB/s of the same workload. Writes bench/results/side-by-side[-quick][-tN].md and one PNG
per operation (GB/s against D on workload B for ours, torch and memcpy).
"""
import argparse
import ctypes
import gc
import itertools
import os
import platform
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "interop", "python"))
import embedding_native as en  # noqa: E402
from embedding_native import functional as enf  # noqa: E402
from embedding_native import optim as eno  # noqa: E402
from embedding_native import quantized as enq  # noqa: E402
from embedding_native import torch as ent  # noqa: E402

KIB, MIB, GIB = 1 << 10, 1 << 20, 1 << 30
BAG = 32
COLD_SETS = 64
ZIPF_A = 1.05
GOLDEN = 2654435761


# ---- Timing -----------------------------------------------------------------------------------------

class Stat:
    def __init__(self, samples):
        s = sorted(samples)
        self.samples = s
        self.median = statistics.median(s)
        self.p25 = float(np.percentile(s, 25))
        self.p75 = float(np.percentile(s, 75))
        self.rounds = len(s)


def measure_group(methods, cfg):
    """methods: {name: fn}. Warm-up each, then interleaved rounds; returns {name: Stat} of seconds per call."""
    planned = {}
    for name, fn in methods.items():
        t0 = time.perf_counter()
        fn()
        first = time.perf_counter() - t0
        t_est = first
        for _ in range(0 if first > 0.1 else cfg.warmup - 1):
            t0 = time.perf_counter()
            fn()
            t_est = time.perf_counter() - t0
        planned[name] = max(3, min(cfg.rounds, int(cfg.budget / max(t_est, cfg.min_time))))
    samples = {name: [] for name in methods}
    for r in range(max(planned.values())):
        for name, fn in methods.items():
            if r >= planned[name]:
                continue
            calls, start = 0, time.perf_counter()
            while True:
                fn()
                calls += 1
                elapsed = time.perf_counter() - start
                if elapsed >= cfg.min_time:
                    break
            samples[name].append(elapsed / calls)
    return {name: Stat(s) for name, s in samples.items()}


# ---- memcpy denominators ----------------------------------------------------------------------------

class Memcpy:
    """glibc memcpy (ctypes.memmove releases the GIL) on T threads, each on its own slice."""

    def __init__(self, threads, dram_bytes):
        self.threads = threads
        self.pool = ThreadPoolExecutor(max_workers=threads) if threads > 1 else None
        self.buffers = {}
        self.dram_bytes = dram_bytes

    def _pair(self, size):
        if size not in self.buffers:
            src = np.ones(size // 4, dtype=np.float32)
            dst = np.zeros(size // 4, dtype=np.float32)
            self.buffers[size] = (src, dst)
        return self.buffers[size]

    def copier(self, total, reps):
        src, dst = self._pair(total)
        part = total // self.threads
        s0, d0 = src.ctypes.data, dst.ctypes.data
        memmove = ctypes.memmove

        def one(t):
            s, d = s0 + t * part, d0 + t * part
            for _ in range(reps):
                memmove(d, s, part)

        if self.pool is None:
            return lambda: one(0)
        return lambda: list(self.pool.map(one, range(self.threads)))

    def measure(self, cfg):
        """{name: (GB/s, Stat)} for DRAM (1 GiB), LLC (32 MiB total) and L2 (512 KiB per thread)."""
        specs = {
            "DRAM": (self.dram_bytes, 1),  # 1 GiB; 256 MiB with --quick (still 8x the LLC)
            "LLC": (32 * MIB, 4),
            "L2": (512 * KIB * self.threads, 64),
        }
        methods = {name: self.copier(size, reps) for name, (size, reps) in specs.items()}
        stats = measure_group(methods, cfg)
        return {name: (2 * specs[name][0] * specs[name][1] / stats[name].median / 1e9, stats[name])
                for name in specs}


# ---- Workloads --------------------------------------------------------------------------------------

class Workload:
    def __init__(self, label, family, vocab, dim, count, dist="uniform", cold=False):
        self.label, self.family, self.V, self.D, self.N = label, family, vocab, dim, count
        self.dist, self.cold = dist, cold


def plan_workloads(quick):
    if quick:
        c_vocab = 1_000_000
        ws = [Workload("A", "A", 50_000, 768, 8_192)]
        ws += [Workload("B", "B", 100_000, d, 65_536) for d in (16, 64, 256)]
        ws += [Workload("B, 23 MiB table (V=24000)", "B-L3", 24_000, 256, 65_536)]
        ws += [Workload("C uniform hot (V=1M)", "C", c_vocab, 64, 65_536, "uniform", False),
               Workload("C uniform cold (V=1M)", "C", c_vocab, 64, 65_536, "uniform", True)]
    else:
        ws = [Workload("A", "A", 50_000, 768, 8_192)]
        ws += [Workload("B", "B", 100_000, d, 65_536) for d in (16, 32, 64, 128, 256)]
        # B's tables of D = 128, 256 (49, 98 MiB) exceed a 32 MiB last-level cache; the same shapes
        # with a 23 MiB table show whether the cache or the kernel sets the pace there.
        ws += [Workload("B, 23 MiB table (V=%d)" % v, "B-L3", v, d, 65_536) for d, v in ((128, 48_000), (256, 24_000))]
        for dist in ("uniform", "zipf1.05"):
            for cold in (False, True):
                ws.append(Workload("C %s %s" % (dist, "cold" if cold else "hot"), "C", 4_000_000, 64, 65_536, dist, cold))
    ws.append(Workload("D", "D", 10, 5, 3))
    return ws


_zipf_cdf = {}


def index_sets(w, seed):
    rng = np.random.default_rng(seed)
    count = COLD_SETS if w.cold else 1
    if w.dist == "uniform":
        arrays = [rng.integers(0, w.V, size=w.N, dtype=np.int64) for _ in range(count)]
    else:
        if w.V not in _zipf_cdf:
            weights = np.arange(1, w.V + 1, dtype=np.float64) ** -ZIPF_A
            cdf = np.cumsum(weights)
            _zipf_cdf[w.V] = cdf / cdf[-1]
        cdf = _zipf_cdf[w.V]
        arrays = []
        for _ in range(count):
            ranks = np.minimum(np.searchsorted(cdf, rng.random(w.N), side="right"), w.V - 1).astype(np.int64)
            arrays.append((ranks * GOLDEN) % w.V)
    return [torch.from_numpy(a) for a in arrays]


_tables = {}


def table(vocab, dim):
    """One table per shape (the C variants share theirs); standard normal float32."""
    key = (vocab, dim)
    if key not in _tables:
        _tables.clear()
        gc.collect()
        gen = torch.Generator().manual_seed(vocab * 1000 + dim)
        _tables[key] = torch.randn(vocab, dim, generator=gen, dtype=torch.float32)
    return _tables[key]


def cycler(items):
    it = itertools.cycle(items)
    return lambda: next(it)


# ---- Operation groups -------------------------------------------------------------------------------
#
# Each group: (key, title, useful bytes, {method: fn}, check). "torch" is the reference method.

OPS = [
    ("gather", "Forward gather (F.embedding)"),
    ("gather_f64", "Forward gather, float64 table (GB/s of 8-byte elements)"),
    ("gather_f16", "Forward gather, float16 table (GB/s of 2-byte elements)"),
    ("gather_bf16", "Forward gather, bfloat16 table (GB/s of 2-byte elements)"),
    ("dense_backward", "Dense backward (embedding_dense_backward)"),
    ("autograd_dense", "The drop-in end to end: forward + dense backward through autograd (weight.grad reset per call)"),
    ("sparse_backward", "Sparse backward + coalesce"),
    ("coalesce", "Coalesce alone (the sparse gradient of the first index set)"),
    ("renorm", "Renorm (max_norm=1, norm_type=2)"),
    ("renorm_f64", "Renorm, float64 table (GB/s of 8-byte elements)"),
    ("renorm_f16", "Renorm, float16 table (GB/s of 2-byte elements)"),
    ("renorm_bf16", "Renorm, bfloat16 table (GB/s of 2-byte elements)"),
    ("bag_sum", "EmbeddingBag sum (bags of 32)"),
    ("bag_mean", "EmbeddingBag mean (bags of 32)"),
    ("bag_max", "EmbeddingBag max (bags of 32)"),
    ("bag_wsum", "EmbeddingBag weighted sum (per_sample_weights, bags of 32)"),
    ("bag_backward_sum", "EmbeddingBag dense backward, sum"),
    ("bag_backward_mean", "EmbeddingBag dense backward, mean"),
    ("bag_backward_max", "EmbeddingBag dense backward, max"),
    ("optim_sgd", "Optimizer step: SGD on a coalesced sparse gradient"),
    ("optim_adagrad", "Optimizer step: Adagrad on a coalesced sparse gradient"),
    ("optim_sparse_adam", "Optimizer step: SparseAdam on a coalesced sparse gradient"),
    ("qbag_byte", "Quantized EmbeddingBag sum, 8-bit rows (GB/s of packed bytes)"),
    ("qbag_4bit", "Quantized EmbeddingBag sum, 4-bit rows (GB/s of packed bytes)"),
    ("qbag_2bit", "Quantized EmbeddingBag sum, 2-bit rows (GB/s of packed bytes)"),
]
# The quantized groups also time our float32 bag sum of the same bags: a quantized table's point is more
# rows per second than the float32 table it replaces, so the report gives that ratio too.
FLOAT32_BASELINE = "float32 bag sum (ours)"
OP_TITLES = dict(OPS)
BAG_MODES = {"sum": 0, "mean": 1, "max": 2}


def close(a, b, rtol=1e-4):
    """allclose with an absolute tolerance scaled to the tensor: sums over thousands of duplicate rows
    (Zipf) are added in a different order by torch, and cancel to values near zero."""
    if a.shape != b.shape:
        return False
    scale = float(b.abs().max()) if b.numel() else 0.0
    return torch.allclose(a, b, rtol=rtol, atol=1e-5 + 1e-5 * scale)


def groups_for(w, W, sets, seed):
    """Yields (key, useful_bytes, methods, check) lazily, so that big buffers of one group are freed before the next."""
    V, D, N = w.V, w.D, w.N
    gen = torch.Generator().manual_seed(seed)
    G = torch.randn(N, D, generator=gen)
    offsets = torch.arange(0, N, BAG, dtype=torch.int64)
    B = offsets.numel()
    psw = torch.rand(N, generator=gen)
    GB = torch.randn(B, D, generator=gen)
    idx0 = sets[0]
    gather_bytes = 2 * N * D * 4
    bag_bytes = N * D * 4 + B * D * 4

    # gather
    out_t = torch.empty(N, D)
    out_np = out_t.numpy()
    W_np = W.numpy()
    sets_np = [s.numpy() for s in sets]
    nt, no, nr, nn = cycler(sets), cycler(sets), cycler(sets), cycler(sets_np)
    yield ("gather", gather_bytes, {
        "torch": lambda: F.embedding(nt(), W),
        "ours": lambda: en.embedding(no(), W),
        "ours out=": lambda: en.embedding(nr(), W, out=out_t),
        "ours numpy out=": lambda: en.embedding(nn(), W_np, out=out_np),
    }, lambda: torch.equal(en.embedding(idx0, W), F.embedding(idx0, W)))
    del out_t, out_np

    # gather of the other table types: the same shape and indices, torch of the same dtype
    for suffix, dtype in (("f64", torch.float64), ("f16", torch.float16), ("bf16", torch.bfloat16)):
        typed = W.to(dtype)
        nt, no = cycler(sets), cycler(sets)
        yield ("gather_" + suffix, 2 * N * D * typed.element_size(), {
            "torch": lambda nt=nt, typed=typed: F.embedding(nt(), typed),
            "ours": lambda no=no, typed=typed: en.embedding(no(), typed),
        }, lambda typed=typed: torch.equal(en.embedding(idx0, typed), F.embedding(idx0, typed)))
        del typed
        gc.collect()

    # dense backward
    GW = torch.zeros(V, D)
    nt, na, nw = cycler(sets), cycler(sets), cycler(sets)
    yield ("dense_backward", gather_bytes, {
        "torch": lambda: torch.ops.aten.embedding_dense_backward(G, nt(), V, -1, False),
        "ours accumulate": lambda: enf.embedding_backward(G, na(), V, out=GW, accumulate=True),
        "ours overwrite": lambda: enf.embedding_backward(G, nw(), V, out=GW),
    }, lambda: close(enf.embedding_backward(G, idx0, V, out=GW),
                     torch.ops.aten.embedding_dense_backward(G, idx0, V, -1, False)))
    del GW
    gc.collect()

    # the drop-in end to end: F.embedding(...).backward(G) against embedding_native.torch's, on a
    # Parameter sharing W's storage, with weight.grad reset so that every call builds a fresh gradient
    Wp = torch.nn.Parameter(W)
    GZ = torch.empty(V, D)
    nt, no = cycler(sets), cycler(sets)

    def autograd_step(embed, idx):
        Wp.grad = None
        embed(idx, Wp).backward(G)
        return Wp.grad

    yield ("autograd_dense", gather_bytes, {
        "torch": lambda: autograd_step(F.embedding, nt()),
        "ours drop-in": lambda: autograd_step(ent.embedding, no()),
        # not an implementation: writing V x D zeros into an existing buffer (no page faults), which
        # any dense backward that returns a fresh gradient must at least do
        "floor: zero_() of V x D": lambda: GZ.zero_(),
    }, lambda: close(autograd_step(ent.embedding, idx0).clone(), autograd_step(F.embedding, idx0)))
    Wp.grad = None
    del Wp, GZ
    gc.collect()

    # sparse backward + coalesce
    def ours_sparse(idx):
        rows, values = enf.embedding_sparse_backward(G, idx, V)
        return enf.sparse_coalesce(rows, values, V)

    def check_sparse():
        ref = torch.ops.aten.embedding_sparse_backward(G, idx0, V, -1, False).coalesce()
        rows, values = ours_sparse(idx0)
        return torch.equal(rows, ref._indices()[0]) and close(values, ref._values())

    nt, no, nv = cycler(sets), cycler(sets), cycler(sets)
    yield ("sparse_backward", gather_bytes, {
        "torch": lambda: torch.ops.aten.embedding_sparse_backward(G, nt(), V, -1, False).coalesce(),
        "ours": lambda: ours_sparse(no()),
        # the drop-in's layout without a padding row: views of indices and grad_output, as torch's
        "ours views + coalesce": lambda: enf.sparse_coalesce(nv(), G, V),
    }, check_sparse)

    # coalesce alone, on the uncoalesced gradient of the first set (it never reads the table: hot = cold)
    uncoalesced = torch.ops.aten.embedding_sparse_backward(G, idx0, V, -1, False)
    u_rows, u_values = uncoalesced._indices()[0], uncoalesced._values()
    yield ("coalesce", gather_bytes, {
        "torch": lambda: uncoalesced.coalesce(),
        "ours": lambda: enf.sparse_coalesce(u_rows, u_values, V),
    }, None)
    del uncoalesced, u_rows, u_values

    # bags
    for mode in ("sum", "mean", "max", "wsum"):
        m = "sum" if mode == "wsum" else mode
        p = psw if mode == "wsum" else None
        nt, no = cycler(sets), cycler(sets)
        yield ("bag_" + mode, bag_bytes, {
            "torch": (lambda m=m, p=p: F.embedding_bag(nt(), W, offsets, mode=m, per_sample_weights=p)),
            "ours": (lambda m=m, p=p: en.embedding_bag(no(), W, offsets, mode=m, per_sample_weights=p)),
        }, (lambda m=m, p=p: close(en.embedding_bag(idx0, W, offsets, mode=m, per_sample_weights=p),
                                   F.embedding_bag(idx0, W, offsets, mode=m, per_sample_weights=p))))

    # bag backward (dense): the forward's bookkeeping is computed once per index set, outside timing
    GWb = torch.zeros(V, D)
    for mode in ("sum", "mean", "max"):
        meta = []
        for s in sets:
            _, offset2bag, bag_size, max_idx = torch._embedding_bag(W, s, offsets, False, BAG_MODES[mode], False,
                                                                    None, False, -1)
            ours_max = enf.embedding_bag_max_indices(s, W, offsets)[1] if mode == "max" else None
            meta.append((s, offset2bag, bag_size, max_idx, ours_max))
        nt, na, nw = cycler(meta), cycler(meta), cycler(meta)

        def torch_bwd(mt, mode=mode):
            s, offset2bag, bag_size, max_idx, _ = mt
            # what autograd calls (it builds offset2bag itself when the sum fast path left it empty)
            return torch.ops.aten._embedding_bag_backward(GB, s, offsets, offset2bag, bag_size, max_idx, V, False,
                                                          BAG_MODES[mode], False, None, -1)

        def ours_bwd(mt, accumulate, mode=mode):
            return enf.embedding_bag_backward(GB, mt[0], V, offsets, mode=mode, max_indices=mt[4], out=GWb,
                                              accumulate=accumulate)

        yield ("bag_backward_" + mode, bag_bytes, {
            "torch": (lambda tb=torch_bwd, c=nt: tb(c())),
            "ours accumulate": (lambda ob=ours_bwd, c=na: ob(c(), True)),
            "ours overwrite": (lambda ob=ours_bwd, c=nw: ob(c(), False)),
        }, (lambda tb=torch_bwd, ob=ours_bwd, mt=meta[0]: close(ob(mt, False), tb(mt))))
        del meta
    del GWb
    gc.collect()

    # optimizer steps on the coalesced gradient of each index set (shared between torch and ours)
    grads = [torch.ops.aten.embedding_sparse_backward(G, s, V, -1, False).coalesce() for s in sets]
    rows_values = [(g._indices()[0], g._values()) for g in grads]
    n_rows = sum(int(g._nnz()) for g in grads) / len(grads)
    param = torch.nn.Parameter(W)  # shares W's storage; both sides update the same table

    def torch_stepper(optimizer):
        nxt = cycler(grads)

        def step():
            param.grad = nxt()
            optimizer.step()
        return step

    step_no = itertools.count(1)
    nr = cycler(rows_values)
    yield ("optim_sgd", 3 * n_rows * D * 4, {
        "torch": torch_stepper(torch.optim.SGD([param], lr=0.01)),
        "ours": lambda: eno.sgd_step(W, *nr(), 0.01),
    }, None)
    state_sum = torch.zeros(V, D)
    nr = cycler(rows_values)
    yield ("optim_adagrad", 5 * n_rows * D * 4, {
        "torch": torch_stepper(torch.optim.Adagrad([param], lr=0.01)),
        "ours": lambda: eno.adagrad_step(W, state_sum, *nr(), 0.01),
    }, None)
    del state_sum
    gc.collect()
    exp_avg, exp_avg_sq = torch.zeros(V, D), torch.zeros(V, D)
    nr = cycler(rows_values)
    yield ("optim_sparse_adam", 7 * n_rows * D * 4, {
        "torch": torch_stepper(torch.optim.SparseAdam([param], lr=1e-3)),
        "ours": lambda: eno.sparse_adam_step(W, exp_avg, exp_avg_sq, *nr(), 1e-3, step=next(step_no)),
    }, None)
    del exp_avg, exp_avg_sq, param, grads, rows_values
    gc.collect()

    # quantized bags: the table packed once by torch, the same bags for every method
    for name, per_byte in (("byte", 1), ("4bit", 2), ("2bit", 4)):
        if D % per_byte:
            continue  # torch packs 4-bit (2-bit) rows only of an even (multiple of 4) width
        packed = getattr(torch.ops.quantized, "embedding_bag_%s_prepack" % name)(W)
        torch_op = getattr(torch.ops.quantized, "embedding_bag_%s_rowwise_offsets" % name)
        ours_op = getattr(enq, "embedding_bag_%s_rowwise_offsets" % name)
        nt, no, nf = cycler(sets), cycler(sets), cycler(sets)
        yield ("qbag_" + name, N * packed.shape[1] + B * D * 4, {
            "torch": lambda op=torch_op, packed=packed, nt=nt: op(packed, nt(), offsets),
            "ours": lambda op=ours_op, packed=packed, no=no: op(packed, no(), offsets),
            FLOAT32_BASELINE: lambda: en.embedding_bag(nf(), W, offsets, mode="sum"),
        }, lambda op=ours_op, top=torch_op, packed=packed: torch.equal(op(packed, idx0, offsets),
                                                                       top(packed, idx0, offsets)))
        del packed
        gc.collect()

    # renorm of the other table types: a copy of W per type (taken before the float32 renorm below
    # rescales W), torch of the same dtype; like float32, the first call rescales and the rest only measure
    for suffix, dtype in (("f64", torch.float64), ("f16", torch.float16), ("bf16", torch.bfloat16)):
        typed = W.to(dtype)
        nt, no = cycler(sets), cycler(sets)

        def torch_renorm_typed(idx, typed=typed):
            with torch.no_grad():
                return torch.embedding_renorm_(typed, idx, 1.0, 2.0)

        yield ("renorm_" + suffix, N * D * typed.element_size(), {
            "torch": lambda nt=nt, fn=torch_renorm_typed: fn(nt()),
            "ours": lambda no=no, typed=typed: enf.embedding_renorm_(typed, no(), 1.0),
        }, None)
        del typed
        gc.collect()

    # renorm last: it rescales rows of W in place (the first call; afterwards the rows are within max_norm)
    nt, no = cycler(sets), cycler(sets)

    def torch_renorm(idx):
        with torch.no_grad():
            return torch.embedding_renorm_(W, idx, 1.0, 2.0)

    yield ("renorm", N * D * 4, {
        "torch": lambda: torch_renorm(nt()),
        "ours": lambda: enf.embedding_renorm_(W, no(), 1.0),
    }, None)


# ---- Report -----------------------------------------------------------------------------------------

def fmt_time(seconds):
    us = seconds * 1e6
    if us < 10:
        return "%.2f" % us
    if us < 1000:
        return "%.1f" % us
    return "%.0f" % us


def fmt_ratio(x):
    return "%.2f" % x if x < 10 else "%.1f" % x if x < 100 else "%.0f" % x


def cpu_model():
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def display_path(path):
    rel = os.path.relpath(path, os.path.join(HERE, ".."))
    return path if rel.startswith("..") else rel


def loadavg():
    try:
        return os.getloadavg()
    except OSError:
        return (float("nan"),) * 3


def write_report(path, results, meta):
    L = ["# Side by side: embedding_native vs torch %s, same process, same inputs" % torch.__version__, ""]
    L.append("Command: `%s`  " % meta["command"])
    L.append("Date: %s; wall time %.0f s  " % (meta["date"], meta["wall"]))
    L.append("Machine: %s, %d logical CPUs (`nproc`); load average %.1f at start, %.1f at end  "
             % (meta["cpu"], os.cpu_count() or 0, meta["load_start"], meta["load_end"]))
    L.append("Library: tier %s (selected by %s; this CPU runs up to %s by CPUID + XGETBV), %s  "
             % (meta["tier"], meta["selected_by"], meta.get("cpu_tier"), meta["library_path"]))
    L.append("torch's CPU kernels: %s (ATEN_CPU_CAPABILITY %s; docs/exactness.md#torchs-kernel-sets)  "
             % (torch.__config__.show().split("CPU capability usage: ")[1].splitlines()[0],
                os.environ.get("ATEN_CPU_CAPABILITY", "unset")))
    L.append("Threads: %d (torch.set_num_threads; ours: %s)  " % (meta["threads"], meta["ours_threads"]))
    L.append("Method: %d warm-up calls (1 when a call takes > 0.1 s), then up to %d interleaved rounds per method of back-to-back calls lasting "
             ">= %.0f ms (fewer rounds, at least 3, for calls slower than %.1f s / rounds); medians over rounds. "
             "memcpy = glibc memcpy of %d MiB (DRAM), measured right before each workload on the same thread "
             "count; LLC (32 MiB) and L2 (512 KiB/thread) copies in the workload header lines. GB/s of useful "
             "bytes: gather, dense and sparse backward 2·N·D·4; bags and bag backward N·D·4 + B·D·4 (B = N/32); "
             "renorm N·D·e (e = element bytes); optimizer steps on n coalesced rows: SGD 3·n·D·4, Adagrad 5·n·D·4, SparseAdam "
             "7·n·D·4; quantized bags N·R + B·D·4 (R packed row bytes). ours/torch = torch time / our time; ours/memcpy = our GB/s / DRAM memcpy GB/s. C hot "
             "repeats one index set; C cold rotates through %d sets; Zipf a=%.2f with ranks scattered by "
             "r·2654435761 mod V. The machine is shared: treat differences under ~25%% as noise."
             % (meta["warmup"], meta["rounds"], meta["min_time"] * 1e3, meta["budget"], meta["dram_mib"], COLD_SETS,
                ZIPF_A))
    L.append("")
    L.append("## Workloads and same-run memcpy denominators")
    L.append("")
    L.append("| workload | V | D | N | table MiB | DRAM memcpy GB/s | LLC memcpy GB/s | L2 memcpy GB/s |")
    L.append("|---|---|---|---|---|---|---|---|")
    for w, mem in meta["workloads"]:
        L.append("| %s | %d | %d | %d | %.1f | %.1f | %.1f | %.1f |" % (
            w.label, w.V, w.D, w.N, w.V * w.D * 4 / MIB, mem["DRAM"][0], mem["LLC"][0], mem["L2"][0]))
    L.append("")
    if meta["failed_checks"]:
        L.append("**Result checks that failed** (ours vs torch on the first index set): "
                 + ", ".join(meta["failed_checks"]))
    else:
        L.append("Every checked result matched torch before timing (gather bit-exact; the rest allclose).")
    L.append("")
    for key, title in OPS:
        rows = [r for r in results if r["op"] == key]
        if not rows:
            continue
        L.append("## %s" % title)
        L.append("")
        L.append("| workload | V | D | N | variant | memcpy GB/s | torch GB/s | ours GB/s | ours/torch | ours/memcpy "
                 "| torch µs | ours µs |")
        L.append("|---|---|---|---|---|---|---|---|---|---|---|---|")
        if key.startswith("qbag_"):
            L.append("Rows per second of our quantized bag sum over our float32 bag sum of the same bags "
                     "(float32 time / quantized time): " + ", ".join(
                         "%s D=%d **%s**" % (r["w"].label, r["w"].D, fmt_ratio(
                             r["stats"][FLOAT32_BASELINE].median / r["stats"]["ours"].median)) for r in rows))
            L.append("")
        for r in rows:
            w, ref = r["w"], r["stats"]["torch"]
            for name, st in r["stats"].items():
                if name == "torch":
                    continue
                ours_gbs = r["bytes"] / st.median / 1e9
                torch_gbs = r["bytes"] / ref.median / 1e9
                L.append("| %s | %d | %d | %d | %s | %.1f | %.2f | %.2f | **%s** | %s | %s | %s |" % (
                    w.label, w.V, w.D, w.N, name, r["memcpy"], torch_gbs, ours_gbs,
                    fmt_ratio(ref.median / st.median), fmt_ratio(ours_gbs / r["memcpy"]),
                    fmt_time(ref.median), fmt_time(st.median)))
        L.append("")
        if key in meta["plots"]:
            L.append("![%s](%s)" % (title, os.path.basename(meta["plots"][key])))
            L.append("")
    L.append("## Appendix: spreads")
    L.append("")
    L.append("Per-call time: median and p25-p75 over rounds (each round's per-call time is the mean of its "
             "back-to-back calls), GB/s at the median, rounds.")
    L.append("")
    L.append("| op | workload | D | method | median µs | p25-p75 µs | GB/s | rounds |")
    L.append("|---|---|---|---|---|---|---|---|")
    for w, mem in meta["workloads"]:
        for name in ("DRAM", "LLC", "L2"):
            st = mem[name][1]
            L.append("| memcpy %s | %s | %d | glibc memcpy | %s | %s-%s | %.1f | %d |" % (
                name, w.label, w.D, fmt_time(st.median), fmt_time(st.p25), fmt_time(st.p75), mem[name][0], st.rounds))
    for r in results:
        for name, st in r["stats"].items():
            L.append("| %s | %s | %d | %s | %s | %s-%s | %.2f | %d |" % (
                r["op"], r["w"].label, r["w"].D, name, fmt_time(st.median), fmt_time(st.p25), fmt_time(st.p75),
                r["bytes"] / st.median / 1e9, st.rounds))
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join(L) + "\n")


def make_plots(results, meta, suffix):
    """One PNG per op: GB/s against D on workload B for every method plus the DRAM and LLC memcpy."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("note: matplotlib missing (apt-get install python3-matplotlib); no plots", file=sys.stderr)
        return {}
    written = {}
    b_mem = [(w.D, mem) for w, mem in meta["workloads"] if w.family == "B"]
    for key, title in OPS:
        rows = [r for r in results if r["op"] == key and r["w"].family == "B"]
        if len(rows) < 2:
            continue
        dims = [r["w"].D for r in rows]
        fig, ax = plt.subplots(figsize=(7.5, 4.8), dpi=110)
        ax.plot([d for d, _ in b_mem], [m["DRAM"][0] for _, m in b_mem], color="0.35", linestyle="--",
                marker="s", markersize=4, label="memcpy %d MiB (DRAM)" % meta["dram_mib"])
        ax.plot([d for d, _ in b_mem], [m["LLC"][0] for _, m in b_mem], color="0.6", linestyle=":",
                marker="s", markersize=4, label="memcpy 32 MiB (LLC)")
        styles = {"torch": ("tab:red", "o", "-")}
        palette = iter([("tab:blue", "^", "-"), ("tab:green", "v", "-"), ("tab:purple", "D", "-."),
                        ("tab:cyan", "x", ":")])
        for name in rows[0]["stats"]:
            color, marker, ls = styles.get(name) or next(palette)
            label = "torch %s" % torch.__version__.split("a")[0] if name == "torch" else "embedding_native: " + name
            ax.plot(dims, [r["bytes"] / r["stats"][name].median / 1e9 for r in rows], color=color, marker=marker,
                    linestyle=ls, label=label)
        ax.set_xscale("log", base=2)
        ax.set_xticks(dims)
        ax.set_xticklabels([str(d) for d in dims])
        ax.set_xlabel("embedding dimension D (floats per row)")
        ax.set_ylabel("throughput, GB/s of useful bytes")
        ax.set_ylim(bottom=0)
        ax.set_title("%s\nworkload B: V=100 000, N=65 536, %d thread%s — %s" % (
            title, meta["threads"], "" if meta["threads"] == 1 else "s", meta["cpu"]), fontsize=9.5)
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=8, loc="best")
        fig.tight_layout()
        path = os.path.join(meta["outdir"], "%s%s.png" % (key, suffix))
        fig.savefig(path)
        plt.close(fig)
        written[key] = path
    return written


# ---- Main -------------------------------------------------------------------------------------------

def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="subset of workloads, fewer rounds (< 2 minutes)")
    parser.add_argument("--threads", type=int, default=1, help="torch.set_num_threads and ours (default 1)")
    parser.add_argument("--rounds", type=int, default=None, help="rounds per method (default 11; quick 5)")
    parser.add_argument("--min-time", type=float, default=None, help="seconds per round (default 0.03; quick 0.01)")
    parser.add_argument("--only", default=None, help="comma-separated op keys to run (default: all)")
    parser.add_argument("--output", default=None, help="markdown path (default bench/results/side-by-side...md)")
    args = parser.parse_args()
    started = time.time()
    load_start = loadavg()[0]

    cfg = argparse.Namespace(
        rounds=args.rounds or (5 if args.quick else 11),
        min_time=args.min_time or (0.01 if args.quick else 0.03),
        warmup=2 if args.quick else 3,
        budget=0.25 if args.quick else 3.0,
        dram_bytes=256 * MIB if args.quick else GIB,
    )
    threads = max(1, args.threads)
    torch.set_num_threads(threads)
    setter = getattr(en, "set_num_threads", None) or getattr(enf, "set_num_threads", None)
    if setter is not None:
        setter(threads)
        ours_threads = "embedding_native.set_num_threads(%d)" % threads
    else:
        ours_threads = "library default (embedding_native.set_num_threads not available yet)"
        print("note: embedding_native.set_num_threads does not exist yet; ours runs at the library default "
              "(1 thread)%s" % ("" if threads == 1 else ", so --threads %d applies to torch and memcpy only" % threads),
              file=sys.stderr)

    only = set(args.only.split(",")) if args.only else None
    info = en.build_info()
    workloads = plan_workloads(args.quick)
    n_ops = len(OPS) if only is None else len([k for k, _ in OPS if k in only])
    total = len(workloads) * n_ops
    memcpy = Memcpy(threads, cfg.dram_bytes)
    results, mem_log, failed = [], [], []
    done = 0
    print("side_by_side: %d workloads x %d ops, %d thread(s), tier %s, torch %s" % (
        len(workloads), n_ops, threads, info["tier"], torch.__version__), file=sys.stderr)
    for wi, w in enumerate(workloads):
        t0 = time.perf_counter()
        W = table(w.V, w.D)
        sets = index_sets(w, seed=1000 + wi)
        mem = memcpy.measure(cfg)
        mem_log.append((w, mem))
        print("== %s V=%d D=%d N=%d%s: setup %.1f s; memcpy DRAM %.1f, LLC %.1f, L2 %.1f GB/s" % (
            w.label, w.V, w.D, w.N, " (%d index sets)" % len(sets) if w.cold else "", time.perf_counter() - t0,
            mem["DRAM"][0], mem["LLC"][0], mem["L2"][0]), file=sys.stderr)
        for key, useful, methods, check in groups_for(w, W, sets, seed=wi):
            if only is not None and key not in only:
                continue
            done += 1
            # Cold variants check on the hot sets of the same distribution; checks are cheap elsewhere.
            if check is not None and not w.cold and not check():
                failed.append("%s on %s D=%d" % (key, w.label, w.D))
                print("   CHECK FAILED: %s on %s" % (key, w.label), file=sys.stderr)
            t1 = time.perf_counter()
            stats = measure_group(methods, cfg)
            results.append({"op": key, "w": w, "bytes": useful, "stats": stats, "memcpy": mem["DRAM"][0]})
            ref = stats["torch"].median
            best_name = min((n for n in stats if n != "torch"), key=lambda n: stats[n].median)
            best = stats[best_name].median
            print("[%3d/%d] %-22s %-18s torch %9s µs  ours %9s µs (%s)  ours/torch %6s  ours/memcpy %5s  [%.1f s]" % (
                done, total, w.label[:22], key, fmt_time(ref), fmt_time(best), best_name, fmt_ratio(ref / best),
                fmt_ratio(useful / best / 1e9 / mem["DRAM"][0]), time.perf_counter() - t1), file=sys.stderr)
        del W, sets
        gc.collect()

    # A tier other than the CPU's best (EMBEDDING_NATIVE_TIER, as `make bench TIER=...` sets it) is named in the
    # file names, so its results sit beside the best tier's instead of replacing them.
    tier_suffix = "" if info["tier"] == info["cpu_tier"] else "-" + info["tier"]
    # So is a kernel set asked of torch (ATEN_CPU_CAPABILITY: `default` is what a CPU without AVX2 runs).
    kernels = os.environ.get("ATEN_CPU_CAPABILITY")
    suffix = (("-quick" if args.quick else "") + ("" if threads == 1 else "-t%d" % threads) + tier_suffix
              + ("-torch-" + kernels if kernels else ""))
    outdir = os.path.join(HERE, "results")
    os.makedirs(outdir, exist_ok=True)
    path = args.output or os.path.join(outdir, "side-by-side%s.md" % suffix)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    meta = {
        "command": "/usr/bin/python3 bench/side_by_side.py" + ("" if len(sys.argv) == 1 else " " + " ".join(sys.argv[1:])),
        "date": time.strftime("%Y-%m-%d %H:%M", time.localtime(started)),
        "cpu": cpu_model(), "tier": info["tier"], "selected_by": info["selected_by"], "cpu_tier": info["cpu_tier"],
        "library_path": display_path(info["library_path"]),
        "dram_mib": cfg.dram_bytes // MIB, "threads": threads, "ours_threads": ours_threads, "warmup": cfg.warmup, "rounds": cfg.rounds,
        "min_time": cfg.min_time, "budget": cfg.budget, "workloads": mem_log, "failed_checks": failed,
        "outdir": os.path.dirname(os.path.abspath(path)), "load_start": load_start,
    }
    meta["plots"] = make_plots(results, meta, suffix)
    meta["load_end"] = loadavg()[0]
    meta["wall"] = time.time() - started
    write_report(path, results, meta)
    print("wrote %s and %d plots in %.0f s" % (os.path.relpath(path), len(meta["plots"]), meta["wall"]), file=sys.stderr)


if __name__ == "__main__":
    main()
