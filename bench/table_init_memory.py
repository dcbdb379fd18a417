"""Peak memory of creating a table: ``Embedding(rows, 1)`` of the numpy module and the torch
drop-in, each in a fresh process (the high-water mark VmHWM before and after the constructor).

    /usr/bin/python3 bench/table_init_memory.py 500000000 3000000000 > bench/results/table-init-memory.txt
"""

import pathlib
import subprocess
import sys

PACKAGE = pathlib.Path(__file__).resolve().parents[1] / "interop" / "python"

CHILD = """
import sys, time
sys.path.insert(0, PACKAGE)
kind, rows = sys.argv[1], int(sys.argv[2])
if kind == "torch":
    import torch
    torch.set_num_threads(1)
    import embedding_native.torch as module
else:
    import embedding_native as module

def peak():
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) * 1024 for line in status if line.startswith("VmHWM:"))

before = peak()
start = time.perf_counter()
table = module.Embedding(rows, 1)
seconds = time.perf_counter() - start
after = peak()
size = rows * 4
print("%-6s Embedding(%d, 1): table %.2f GiB, peak %.2f GiB (%.2f GiB before the constructor), "
      "growth / table %.3f, %.1f s" % (kind, rows, size / 2**30, after / 2**30, before / 2**30,
                                       (after - before) / size, seconds))
""".replace("PACKAGE", repr(str(PACKAGE)))


def main(counts):
    for rows in counts:
        for kind in ("numpy", "torch"):
            subprocess.run([sys.executable, "-c", CHILD, kind, str(rows)], check=True)
            sys.stdout.flush()


if __name__ == "__main__":
    main([int(arg) for arg in sys.argv[1:]] or [500_000_000])
