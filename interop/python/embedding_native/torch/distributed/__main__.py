"""``python3 -m embedding_native.torch.distributed [--world-size W]``: the sharded-training demo
(demo.py): W processes on this machine, per-rank memory, and a bit-for-bit parity verdict
against one process. Exit status 1 on a mismatch."""

import sys

from .demo import main

if __name__ == "__main__":
    sys.exit(main())
