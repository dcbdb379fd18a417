"""What a tiny lookup (workload D: V=10, D=5, N=3) costs from Python, piece by piece.

The library call itself takes tens of nanoseconds (bench/results/bdn-Perf_TinyCall-quick.md);
everything else is the interpreter and ctypes. This measures, in one process, the pieces any
ctypes binding must pay: a ctypes call with no arguments, the same call with emb_embedding's nine
arguments, reading an ndarray's address, allocating the small result, and torch's F.embedding for
comparison. Run with Debian's interpreter: /usr/bin/python3 bench/python_call_floor.py
"""

import ctypes
import os
import statistics
import sys
import timeit

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "interop", "python"))

import embedding_native as en  # noqa: E402
from embedding_native import _bindings  # noqa: E402


def per_call_us(statement, number=20000, repeat=15):
    """Median over `repeat` rounds of the per-call time of `number` calls, in microseconds."""
    times = timeit.repeat(statement, number=number, repeat=repeat)
    return statistics.median(times) / number * 1e6


def main():
    import torch
    import torch.nn.functional as F
    torch.set_num_threads(1)
    weight = np.random.default_rng(0).standard_normal((10, 5), dtype=np.float32)
    indices = np.array([1, 2, 4], dtype=np.int64)
    out = np.empty((3, 5), dtype=np.float32)
    w_t, i_t = torch.from_numpy(weight), torch.from_numpy(indices)
    version = _bindings.emb_version_number
    embedding = _bindings.emb_embedding
    w_addr, i_addr, o_addr = weight.ctypes.data, indices.ctypes.data, out.ctypes.data

    rows = [
        ("torch F.embedding(idx, W) (tensor)", lambda: F.embedding(i_t, w_t)),
        ("ours en.embedding(idx, W) (numpy, new output)", lambda: en.embedding(indices, weight)),
        ("ours en.embedding(idx, W, out=) (numpy)", lambda: en.embedding(indices, weight, out=out)),
        ("ctypes call, no arguments (emb_version_number)", lambda: version()),
        ("ctypes call, emb_embedding's 9 arguments, addresses precomputed",
         lambda: embedding(w_addr, _bindings.EMB_DTYPE_FLOAT32, 10, 5, i_addr, _bindings.EMB_DTYPE_INT64, 3, o_addr, 15)),
        ("ndarray.ctypes.data (one address)", lambda: weight.ctypes.data),
        ("ndarray.__array_interface__['data'][0] (one address)", lambda: weight.__array_interface__["data"][0]),
        ("Tensor.data_ptr() (one address)", lambda: w_t.data_ptr()),
        ("np.empty((3, 5), float32)", lambda: np.empty((3, 5), dtype=np.float32)),
    ]
    print("| piece | µs per call (median of 15 rounds of 20 000) |")
    print("|---|---|")
    for name, fn in rows:
        print("| %s | %.3f |" % (name, per_call_us(fn)))


if __name__ == "__main__":
    main()
