"""Per-call time of the public functions on workload D (V=10, D=5, N=3), numpy and torch inputs.

    /usr/bin/python3 bench/tiny_call_timeit.py [--package-dir DIR] [--rounds N]

``--package-dir`` is the directory that holds ``embedding_native`` (default: this checkout's
``interop/python``), so two versions of the Python layer can be timed against each other on the
same machine, one after the other. Prints one markdown row per call: the median over the rounds
of the per-call time, in microseconds.
"""

import argparse
import os
import statistics
import sys
import timeit


def per_call_us(fn, number, rounds):
    """Median over ``rounds`` of the per-call time of ``number`` calls, in microseconds."""
    return statistics.median(timeit.repeat(fn, number=number, repeat=rounds)) / number * 1e6


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--package-dir",
                        default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "interop", "python"))
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--number", type=int, default=20000)
    args = parser.parse_args()
    sys.path.insert(0, os.path.abspath(args.package_dir))

    import numpy as np
    import torch
    import embedding_native as en
    from embedding_native import functional as ef

    torch.set_num_threads(1)
    weight = np.random.default_rng(0).standard_normal((10, 5), dtype=np.float32)
    indices = np.array([1, 2, 4], dtype=np.int64)
    offsets = np.array([0, 1], dtype=np.int64)
    w_t, i_t, o_t = torch.from_numpy(weight), torch.from_numpy(indices), torch.from_numpy(offsets)
    out = np.empty((3, 5), dtype=np.float32)

    rows = [
        ("F.embedding(idx, W), numpy", lambda: ef.embedding(indices, weight)),
        ("F.embedding(idx, W), tensors", lambda: ef.embedding(i_t, w_t)),
        ("F.embedding(idx, W, out=), numpy", lambda: ef.embedding(indices, weight, out=out)),
        ("F.embedding_bag(idx, W, offsets, mode='sum'), numpy", lambda: ef.embedding_bag(indices, weight, offsets, mode="sum")),
        ("F.embedding_bag(idx, W, offsets, mode='sum'), tensors", lambda: ef.embedding_bag(i_t, w_t, o_t, mode="sum")),
        ("torch.nn.functional.embedding (reference)", lambda: torch.nn.functional.embedding(i_t, w_t)),
    ]
    print("| call (%s) | µs per call |" % en.build_info()["tier"])
    print("|---|---|")
    for name, fn in rows:
        print("| %s | %.3f |" % (name, per_call_us(fn, args.number, args.rounds)))


if __name__ == "__main__":
    main()
