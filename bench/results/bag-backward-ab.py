"""A/B micro-bench of the EmbeddingBag backward (float32/64/16) and the float16 bag forward, in one
process: a saved build of the package, copied to BASE_DIR/en_base (the directory renamed), against
the package in NEW_DIR (interop/python). Rounds alternate base/new per op, so load on a shared host
hits both alike; prints the median (and min) per-call time of each and the ratio.

    cp -r <old checkout>/interop/python/embedding_native /tmp/ab/en_base
    ROUNDS=15 /usr/bin/python3 bench/results/bag-backward-ab.py /tmp/ab interop/python 1 [name filters...]

Workload: V = 100 000 rows, N = 65 536 uniform int64 indices in bags of 32, D = 64 and 256 (the
forward: D = 64 and 768, V = 50 000 at 768); accumulate=True so the dense backward does not zero V x D.
"""
import sys, time, statistics
sys.path.insert(0, sys.argv[1])
sys.path.insert(0, sys.argv[2])
import numpy as np
import en_base
import embedding_native as en_new
threads = int(sys.argv[3])
only = sys.argv[4:]
for m in (en_base, en_new):
    m.functional.set_num_threads(threads)
rng = np.random.default_rng(1)

def once(fn, min_time=0.01):
    n = 0; t0 = time.perf_counter()
    while True:
        fn(); n += 1
        t = time.perf_counter() - t0
        if t >= min_time: return t / n

def ab(name, make, rounds=int(__import__("os").environ.get("ROUNDS", "15"))):
    if only and not any(o in name for o in only):
        return
    fb, fn = make(en_base.functional), make(en_new.functional)
    fb(); fn()
    tb, tn = [], []
    for _ in range(rounds):
        tb.append(once(fb)); tn.append(once(fn))
    mb, mn = statistics.median(tb), statistics.median(tn)
    print("%-30s base %9.1f us  new %9.1f us  new/base %.2f   (min %9.1f / %9.1f)" % (name, mb*1e6, mn*1e6, mn/mb, min(tb)*1e6, min(tn)*1e6), flush=True)

V, N, BAG = 100_000, 65_536, 32
idx = rng.integers(0, V, N).astype(np.int64)
offs = np.arange(0, N, BAG, dtype=np.int64)
B = len(offs)
for dt in (np.float32, np.float64, np.float16):
    tag = np.dtype(dt).name
    for D in (64, 256):
        if only and not any(o in "%s_D%d" % (tag, D) or o in tag for o in only) and not any(o.startswith(("bwd", "sparse", "psw")) for o in only):
            continue
        g = rng.standard_normal((B, D)).astype(dt)
        psw = rng.standard_normal(N).astype(dt)
        out = np.zeros((V, D), dt)
        W = rng.standard_normal((V, D)).astype(dt)
        maxi = en_new.functional.embedding_bag_max_indices(idx, W, offs)[1]
        for mode in ("sum", "mean"):
            ab("bwd_%s_%s_D%d" % (mode, tag, D), lambda F, mode=mode: (lambda: F.embedding_bag_backward(g, idx, V, offs, mode=mode, out=out, accumulate=True)))
        ab("bwd_wsum_%s_D%d" % (tag, D), lambda F: (lambda: F.embedding_bag_backward(g, idx, V, offs, mode="sum", per_sample_weights=psw, out=out, accumulate=True)))
        ab("bwd_max_%s_D%d" % (tag, D), lambda F: (lambda: F.embedding_bag_backward(g, idx, V, offs, mode="max", max_indices=maxi, out=out, accumulate=True)))
        ab("sparse_mean_%s_D%d" % (tag, D), lambda F: (lambda: F.embedding_bag_sparse_backward(g, idx, V, offs, mode="mean")))
        ab("sparse_wsum_%s_D%d" % (tag, D), lambda F: (lambda: F.embedding_bag_sparse_backward(g, idx, V, offs, mode="sum", per_sample_weights=psw)))
        ab("psw_%s_D%d" % (tag, D), lambda F: (lambda: F.embedding_bag_per_sample_weights_backward(g, W, idx, offs)))
        del out, W
for D in (64, 768):
    Vf = 100_000 if D == 64 else 50_000
    W = rng.standard_normal((Vf, D)).astype(np.float16)
    i2 = rng.integers(0, Vf, N).astype(np.int64)
    ab("fwd_sum_float16_D%d" % D, lambda F: (lambda: F.embedding_bag(i2, W, offs, mode="sum")))
    ab("fwd_mean_float16_D%d" % D, lambda F: (lambda: F.embedding_bag(i2, W, offs, mode="mean")))
