#!/usr/bin/env python3
"""Side-by-side forward gather: embedding_native vs torch.nn.functional.embedding vs memcpy.

Run with Debian's interpreter (it has torch): ``/usr/bin/python3 bench/gather_vs_torch.py``.
Workloads follow the project's performance method (fp32 table, int64 uniform indices, one thread):

  A  V=50 000,  D=768,                 N=8 192   (LLM token embedding)
  B  V=100 000, D in 16, 32, 64, 128, 256, N=65 536  (small dims)
  D  V=10,      D=5,                   N=3       (per-call overhead)

Useful bytes per call are rows read plus rows written, 2*N*D*4. The memcpy denominator copies the
same number of bytes (N*D*4 contiguous floats) with numpy in the same run, right before each
workload. Each method is timed as the median of repeated rounds; every round times back-to-back
calls for at least ``--min-time`` seconds. Results print as a markdown table and go to
``bench/results/gather-<host>.md`` with the command line that produced them.
"""
import argparse
import os
import platform
import statistics
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "interop", "python"))
import embedding_native as en  # noqa: E402

WORKLOADS = [("A", 50_000, 768, 8_192)] + [("B", 100_000, d, 65_536) for d in (16, 32, 64, 128, 256)] + [("D", 10, 5, 3)]


def per_call_seconds(fn, min_time, rounds):
    """Median over rounds of the per-call time of back-to-back calls lasting at least min_time."""
    for _ in range(3):
        fn()
    samples = []
    for _ in range(rounds):
        calls, start = 0, time.perf_counter()
        while True:
            fn()
            calls += 1
            elapsed = time.perf_counter() - start
            if elapsed >= min_time:
                break
        samples.append(elapsed / calls)
    return statistics.median(samples)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=11)
    parser.add_argument("--min-time", type=float, default=0.03)
    parser.add_argument("--output", default=None)
    args = parser.parse_args()
    torch.set_num_threads(1)

    rng = np.random.default_rng(0)
    info = en.build_info()
    rows = []
    for name, vocab, dim, count in WORKLOADS:
        weight_np = rng.standard_normal((vocab, dim), dtype=np.float32)
        index_np = rng.integers(0, vocab, size=count, dtype=np.int64)
        weight_t, index_t = torch.from_numpy(weight_np), torch.from_numpy(index_np)
        out_np = np.empty((count, dim), dtype=np.float32)
        out_t = torch.from_numpy(out_np)
        src, dst = np.ones(count * dim, dtype=np.float32), np.empty(count * dim, dtype=np.float32)

        assert np.array_equal(en.embedding(index_np, weight_np).view(np.uint32), F.embedding(index_t, weight_t).numpy().view(np.uint32))
        useful = 2 * count * dim * 4
        t_memcpy = per_call_seconds(lambda: np.copyto(dst, src), args.min_time, args.rounds)
        t_torch = per_call_seconds(lambda: F.embedding(index_t, weight_t), args.min_time, args.rounds)
        t_ours = per_call_seconds(lambda: en.embedding(index_np, weight_np), args.min_time, args.rounds)
        t_ours_out = per_call_seconds(lambda: en.embedding(index_np, weight_np, out=out_np), args.min_time, args.rounds)
        t_ours_torch = per_call_seconds(lambda: en.embedding(index_t, weight_t, out=out_t), args.min_time, args.rounds)
        rows.append((name, vocab, dim, count, useful, t_memcpy, t_torch, t_ours, t_ours_out, t_ours_torch))
        print(f"{name} D={dim}: torch {t_torch * 1e6:.1f} us, ours {t_ours * 1e6:.1f} us, ours out= {t_ours_out * 1e6:.1f} us", file=sys.stderr)

    gbs = lambda useful, seconds: useful / seconds / 1e9  # noqa: E731
    lines = [
        f"# Forward gather: embedding_native vs torch {torch.__version__} vs memcpy",
        "",
        f"Command: `/usr/bin/python3 bench/gather_vs_torch.py --rounds {args.rounds} --min-time {args.min_time}`  ",
        f"Library: tier {info['tier']}, {info['runtime']}; host {platform.node() or 'unknown'}; 1 thread; "
        f"medians of {args.rounds} rounds. GB/s of useful bytes (2·N·D·4).",
        "",
        "| workload | V | D | N | memcpy GB/s | torch GB/s | ours GB/s | ours out= GB/s | ours torch out= GB/s | ours/torch | ours out=/torch | ours out=/memcpy | torch µs | ours out= µs |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, vocab, dim, count, useful, t_memcpy, t_torch, t_ours, t_ours_out, t_ours_torch in rows:
        lines.append(
            f"| {name} | {vocab} | {dim} | {count} | {gbs(useful, t_memcpy):.1f} | {gbs(useful, t_torch):.1f} | {gbs(useful, t_ours):.1f} | "
            f"{gbs(useful, t_ours_out):.1f} | {gbs(useful, t_ours_torch):.1f} | {t_torch / t_ours:.2f} | {t_torch / t_ours_out:.2f} | "
            f"{t_memcpy / t_ours_out:.2f} | {t_torch * 1e6:.2f} | {t_ours_out * 1e6:.2f} |")
    text = "\n".join(lines) + "\n"
    print(text)
    output = args.output or os.path.join(os.path.dirname(os.path.abspath(__file__)), "results", f"gather-{info['tier']}.md")
    with open(output, "w", encoding="utf-8") as handle:
        handle.write(text)


if __name__ == "__main__":
    main()
