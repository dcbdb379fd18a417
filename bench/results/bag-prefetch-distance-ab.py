# The bag sum through the Python package against torch, interleaved, one library build per run:
#   EMBEDDING_NATIVE_LIBRARY=<build>.so /usr/bin/python3 bag-prefetch-distance-ab.py 48000:128 100000:128 ...
# (bench/results/bag-prefetch-distance.md). ours/memcpy: our bytes read per second over a same-run
# copy's (read + write) bytes per second.
import sys, time, statistics, numpy as np, torch, torch.nn.functional as F
torch.set_num_threads(1)
import embedding_native as en
def timeit(f, reps):
    t = time.perf_counter()
    for _ in range(reps): f()
    return (time.perf_counter() - t) / reps * 1e6
N = 65536
for spec in sys.argv[1:]:
    V, D = map(int, spec.split(":"))
    W = torch.randn(V, D); idx = torch.from_numpy(np.random.default_rng(1).integers(0, V, N)); off = torch.arange(0, N, 32)
    src = torch.ones(N * D); dst = torch.empty_like(src)
    fns = {"torch": lambda: F.embedding_bag(idx, W, off, mode="sum"), "ours": lambda: en.embedding_bag(idx, W, off, mode="sum"),
           "copy": lambda: dst.copy_(src)}
    res = {k: [] for k in fns}
    for r in range(15):
        for k, f in fns.items():
            f(); res[k].append(timeit(f, 10))
    med = {k: statistics.median(v) for k, v in res.items()}
    print("V=%d D=%d  torch %.0f  ours %.0f  copy %.0f us  ours/torch %.2f  ours/memcpy %.2f" % (
        V, D, med["torch"], med["ours"], med["copy"], med["torch"] / med["ours"], med["copy"] / (2 * med["ours"])))
