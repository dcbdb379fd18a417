"""The demo behind ``python3 -m embedding_native.torch.distributed``: a bag-of-rows model trained
sharded over W processes on this machine, then the same training in one process, compared bit
for bit.

The whole table is written once to a .npy file; each rank memory-maps it and copies only its
rows (``from_pretrained(path)``), trains on its own batches, prints the bytes of its shard and
its resident memory, and saves its shard (``save_shard``). The parent then trains the
single-process drop-in on the concatenated batches and compares every step's outputs and the
final table (read back from the per-rank checkpoint). Exit status 1 on any difference.
"""

import argparse
import os
import socket
import sys
import tempfile
import time

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from ... import functional as _functional
from ... import optim as _optim
from ... import tables as _tables

_LEARNING_RATE = 0.05


def _arguments(argv):
    parser = argparse.ArgumentParser(prog="python3 -m embedding_native.torch.distributed",
                                     description="Train an EmbeddingBag sharded over processes (gloo, this machine) "
                                                 "and check it against one process, bit for bit.")
    parser.add_argument("--world-size", type=int, default=2, help="processes (default 2)")
    parser.add_argument("--rows", type=int, default=400_000, help="table rows (default 400000)")
    parser.add_argument("--dim", type=int, default=32, help="embedding dimension (default 32)")
    parser.add_argument("--bags", type=int, default=256, help="bags per rank per step (default 256)")
    parser.add_argument("--steps", type=int, default=20, help="training steps (default 20)")
    parser.add_argument("--mode", choices=("sum", "mean", "max"), default="mean", help="bag mode (default mean)")
    parser.add_argument("--sparse", action="store_true",
                        help="sparse gradients and the fused sparse SGD step (default: dense, torch.optim.SGD)")
    arguments = parser.parse_args(argv)
    if arguments.world_size < 1 or arguments.rows < 1 or arguments.dim < 1 or arguments.steps < 1:
        parser.error("world size, rows, dim and steps must be positive")
    if arguments.sparse and arguments.mode == "max":
        parser.error("max mode has no sparse gradients (as torch)")
    return arguments


def _batch(arguments, step, rank):
    """(indices, offsets, target) of one rank at one step: bags of 0–40 rows, a few hot rows."""
    g = torch.Generator().manual_seed(1_000_003 * step + rank)
    lengths = torch.randint(0, 41, (arguments.bags,), generator=g)
    indices = torch.randint(0, arguments.rows, (int(lengths.sum()),), generator=g)
    hot = torch.rand(indices.shape, generator=g) < 0.1
    indices[hot] = torch.randint(0, 8, (int(hot.sum()),), generator=g)
    offsets = torch.cat([torch.zeros(1, dtype=torch.int64), lengths.cumsum(0)[:-1]])
    target = torch.randn((arguments.bags, arguments.dim), generator=g)
    return indices, offsets, target


def _train(module, arguments, batches):
    """``arguments.steps`` steps of loss = ((bag - target)²).sum(); returns every step's output."""
    weight = module.weight
    sgd = None if arguments.sparse else torch.optim.SGD([weight], lr=_LEARNING_RATE)
    outputs = []
    for step in range(arguments.steps):
        indices, offsets, target = batches(step)
        output = module(indices, offsets)
        ((output - target) ** 2).sum().backward()
        outputs.append(output.detach())
        if sgd is not None:
            sgd.step()
            sgd.zero_grad()
        else:
            rows, values = _functional.sparse_coalesce(weight.grad._indices()[0], weight.grad._values(),
                                                       weight.shape[0])
            _optim.sgd_step(weight.data, rows, values, _LEARNING_RATE)
            weight.grad = None
    return outputs


def _resident_bytes():
    """This process's resident set size (VmRSS), or None where /proc does not say."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def _mib(count):
    return "n/a" if count is None else "%.1f MiB" % (count / 2 ** 20)


def _rank(rank, arguments, port, directory):
    os.environ["MASTER_ADDR"] = "127.0.0.1"
    os.environ["MASTER_PORT"] = str(port)
    torch.set_num_threads(1)
    _functional.set_num_threads(1)
    from .embedding_bag import ShardedEmbeddingBag
    from .checkpoint import save_shard
    dist.init_process_group("gloo", rank=rank, world_size=arguments.world_size)
    before = _resident_bytes()
    module = ShardedEmbeddingBag.from_pretrained(os.path.join(directory, "table.npy"), freeze=False,
                                                 mode=arguments.mode, sparse=arguments.sparse)
    started = time.perf_counter()
    outputs = _train(module, arguments, lambda step: _batch(arguments, step, rank))
    seconds = time.perf_counter() - started
    save_shard(module, os.path.join(directory, "checkpoint"))
    torch.save(outputs, os.path.join(directory, "outputs-%d.pt" % rank))
    dist.barrier()  # one line per rank, in rank order
    for turn in range(arguments.world_size):
        if turn == rank:
            print("rank %d: rows [%d, %d), shard %s, process RSS %s (%s before the shard), %d steps in %.2f s"
                  % (rank, module.row_start, module.row_stop, _mib(module.shard_nbytes()), _mib(_resident_bytes()),
                     _mib(before), arguments.steps, seconds), flush=True)
        dist.barrier()
    dist.destroy_process_group()


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main(argv=None):
    arguments = _arguments(argv)
    from .. import EmbeddingBag
    from .checkpoint import read_checkpoint
    table = torch.randn((arguments.rows, arguments.dim), generator=torch.Generator().manual_seed(5))
    with tempfile.TemporaryDirectory(prefix="embedding-native-sharded-") as directory:
        _tables.save(os.path.join(directory, "table.npy"), table)
        print("table: %d x %d float32 (%s), %s bags, %s gradients, %d steps, %d ranks (gloo, 127.0.0.1)"
              % (arguments.rows, arguments.dim, _mib(table.numel() * 4), arguments.mode,
                 "sparse (fused SGD)" if arguments.sparse else "dense (torch.optim.SGD)", arguments.steps,
                 arguments.world_size), flush=True)
        mp.start_processes(_rank, args=(arguments, _free_port(), directory), nprocs=arguments.world_size,
                           start_method="spawn")
        sharded_outputs = [torch.load(os.path.join(directory, "outputs-%d.pt" % r))
                           for r in range(arguments.world_size)]
        _, _, pieces = read_checkpoint(os.path.join(directory, "checkpoint"))
        sharded_table = torch.cat([torch.from_numpy(_tables.load(path, mmap=False)) for _, _, path in pieces])

        torch.set_num_threads(1)
        before = _resident_bytes()
        single = EmbeddingBag.from_pretrained(table.clone(), freeze=False, mode=arguments.mode, sparse=arguments.sparse)
        started = time.perf_counter()
        outputs = _train(single, arguments, lambda step: _concatenated(arguments, step))
        print("single process: table %s, process RSS %s (%s before the module), %d steps in %.2f s"
              % (_mib(table.numel() * 4), _mib(_resident_bytes()), _mib(before), arguments.steps,
                 time.perf_counter() - started))
    same_outputs = all(torch.equal(torch.cat([o[step] for o in sharded_outputs]), outputs[step])
                       for step in range(arguments.steps))
    same_table = torch.equal(sharded_table, single.weight.detach())
    changed = int((single.weight.detach() != table).any(1).sum())
    if same_outputs and same_table:
        print("parity: bit-identical (every step's outputs, and the trained table: %d rows changed)" % changed)
        return 0
    print("parity: MISMATCH (outputs %s, table %s)" % ("equal" if same_outputs else "differ",
                                                      "equal" if same_table else "differs"))
    return 1


def _concatenated(arguments, step):
    parts = [_batch(arguments, step, rank) for rank in range(arguments.world_size)]
    length, offsets = 0, []
    for indices, rank_offsets, _ in parts:
        offsets.append(rank_offsets + length)
        length += indices.numel()
    return torch.cat([p[0] for p in parts]), torch.cat(offsets), torch.cat([p[2] for p in parts])


if __name__ == "__main__":
    sys.exit(main())
