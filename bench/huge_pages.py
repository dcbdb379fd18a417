#!/usr/bin/env python3
"""Random rows from a 1 GiB table (workload C: V = 4 000 000, D = 64, N = 65 536, uniform and
Zipf a = 1.05, cold: 16 rotating index sets), with the table in ordinary 4 KiB pages
(``np.zeros``) and in transparent huge pages (``embedding_native.empty_table``), gather and bag
sum (bags of 32), one thread, medians of interleaved rounds.

Run: ``/usr/bin/python3 bench/huge_pages.py`` (writes bench/results/huge-pages.md).
"""
import os
import statistics
import sys
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "interop", "python"))
import embedding_native as en  # noqa: E402

V, D, N, BAG = 4_000_000, 64, 65_536, 32


def zipf_indices(rng, count):
    ranks = np.minimum(rng.zipf(1.05, size=count) - 1, V - 1).astype(np.uint64)
    return ((ranks * np.uint64(2654435761)) % np.uint64(V)).astype(np.int64)


def per_call(fn, sets, rounds=9, min_time=0.05):
    samples = []
    for _ in range(rounds):
        calls, start = 0, time.perf_counter()
        while time.perf_counter() - start < min_time:
            fn(sets[calls % len(sets)])
            calls += 1
        samples.append((time.perf_counter() - start) / calls)
    return statistics.median(samples)


def main():
    rng = np.random.default_rng(0)
    tables = {"4 KiB pages (np.zeros)": np.zeros((V, D), np.float32), "huge pages (empty_table)": en.empty_table(V, D)}
    for table in tables.values():
        table[:] = rng.standard_normal((V, D), dtype=np.float32)
    offsets = np.arange(0, N, BAG, dtype=np.int64)
    out_gather = np.empty((N, D), np.float32)
    lines = ["# Huge pages: random rows from a 1 GiB table", "",
             "Command: `/usr/bin/python3 bench/huge_pages.py` (tier %s, 1 thread, medians of 9 interleaved rounds; "
             "useful bytes: gather 2·N·D·4, bag sum N·D·4 + B·D·4)" % en.build_info()["tier"], "",
             "| distribution | op | 4 KiB pages GB/s | huge pages GB/s | huge / 4 KiB |", "|---|---|---|---|---|"]
    for name, draw in (("uniform", lambda: rng.integers(0, V, N, dtype=np.int64)), ("zipf 1.05", lambda: zipf_indices(rng, N))):
        sets = [draw() for _ in range(16)]
        for op, fn, useful in (
                ("gather", lambda t, s: en.embedding(s, t, out=out_gather), 2 * N * D * 4),
                ("bag sum", lambda t, s: en.embedding_bag(s, t, offsets, mode="sum"), N * D * 4 + (N // BAG) * D * 4)):
            times = {label: [] for label in tables}
            for _ in range(3):  # interleave the two tables so drift hits both
                for label, table in tables.items():
                    times[label].append(per_call(lambda s, t=table: fn(t, s), sets))
            small, huge = (statistics.median(times[label]) for label in tables)
            lines.append("| %s | %s | %.2f | %.2f | %.2f |" % (name, op, useful / small / 1e9, useful / huge / 1e9, small / huge))
            print(lines[-1], file=sys.stderr)
    text = "\n".join(lines) + "\n"
    print(text)
    with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "results", "huge-pages.md"), "w") as f:
        f.write(text)


if __name__ == "__main__":
    main()
