"""What row-wise sharding over torch.distributed costs on this machine: one training step of a
ShardedEmbeddingBag (forward + backward) at world sizes 1, 2, 3, against the single-process
drop-in, and the bare all_to_all_single exchanges of the same sizes.

Each rank: batch of 4096 indices (128 bags of 32, uniform over V = 1,000,000 rows), D = 64,
float32, mode sum; sparse gradients (the owners' COO, no optimizer step) and dense gradients
(the shard's (V/W, D) gradient). One torch thread and one library thread per rank, gloo on
127.0.0.1. Per configuration: 5 warm-up steps, then 40 timed steps; a run's figure is the
median over steps of the slowest rank's time (a step ends for everyone when the slowest rank is
done). The configurations run in rounds (all of them once per round, ``--rounds``, 3 by default);
the table gives the median over rounds and, in brackets, the smallest and largest.

Run: /usr/bin/python3 bench/distributed_step.py [--steps 40] [--rounds 3] [--out bench/results/distributed-step.md]
The machine has 2 cores shared with other work: world size 3 oversubscribes them, and every
number is noisy; read ratios, not absolutes.
"""

import argparse
import os
import platform
import socket
import statistics
import sys
import time

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "interop", "python"))

ROWS, DIM, BATCH, BAG = 1_000_000, 64, 4096, 32
WARMUP = 5


def _batch(rank, step):
    g = torch.Generator().manual_seed(100_003 * step + rank)
    return torch.randint(0, ROWS, (BATCH,), generator=g), torch.arange(0, BATCH, BAG)


def _time_steps(module, rank, steps, before_step=None):
    """Forward and forward + backward seconds of each step after the warm-up, on ``rank``'s batches;
    ``before_step`` (a barrier) lines the ranks up first."""
    forward, total = [], []
    for step in range(WARMUP + steps):
        indices, offsets = _batch(rank, step)
        if before_step is not None:
            before_step()
        started = time.perf_counter()
        output = module(indices, offsets)
        middle = time.perf_counter()
        output.sum().backward()
        ended = time.perf_counter()
        module.weight.grad = None
        if step >= WARMUP:
            forward.append(middle - started)
            total.append(ended - started)
    return forward, total


def _slowest(seconds):
    """Per step, the maximum over ranks (all_reduce MAX), then the median over steps, in ms."""
    times = torch.tensor(seconds, dtype=torch.float64)
    dist.all_reduce(times, op=dist.ReduceOp.MAX)
    return statistics.median(times.tolist()) * 1e3


def _rank(rank, world_size, port, steps, queue):
    os.environ["MASTER_ADDR"] = "127.0.0.1"
    os.environ["MASTER_PORT"] = str(port)
    torch.set_num_threads(1)
    import embedding_native.functional as ef
    ef.set_num_threads(1)
    from embedding_native.torch.distributed import ShardedEmbeddingBag
    dist.init_process_group("gloo", rank=rank, world_size=world_size)
    table = torch.randn((ROWS, DIM), generator=torch.Generator().manual_seed(0))
    results = {}
    for sparse in (True, False):
        module = ShardedEmbeddingBag.from_pretrained(table, freeze=False, mode="sum", sparse=sparse)
        forward, total = _time_steps(module, rank, steps, dist.barrier)
        results["sparse" if sparse else "dense"] = (_slowest(forward), _slowest(total))
        del module
    # The bare exchanges of one forward + sparse backward: row ids out, rows back, (id, row) out.
    indices, _ = _batch(rank, 0)
    unique = torch.unique(indices)
    per_rank = -(-ROWS // world_size)
    send = torch.bincount(unique // per_rank, minlength=world_size).tolist()
    counts = torch.tensor(send, dtype=torch.int64)
    received = torch.empty(world_size, dtype=torch.int64)
    exchange = []
    for step in range(WARMUP + steps):
        dist.barrier()
        started = time.perf_counter()
        dist.all_to_all_single(received, counts)
        recv = received.tolist()
        ids = torch.empty(sum(recv), dtype=torch.int64)
        dist.all_to_all_single(ids, unique, recv, send)
        rows = torch.empty((len(unique), DIM))
        dist.all_to_all_single(rows, torch.zeros((sum(recv), DIM)), send, recv)
        grads = torch.empty((sum(recv), DIM))
        dist.all_to_all_single(grads, torch.zeros((len(unique), DIM)), recv, send)
        dist.all_to_all_single(ids, unique, recv, send)
        if step >= WARMUP:
            exchange.append(time.perf_counter() - started)
    results["exchange"] = _slowest(exchange)
    if rank == 0:
        queue.put(results)
    dist.destroy_process_group()


def _single(steps):
    """The single-process drop-in on one rank's batch (the work each rank would do alone)."""
    import embedding_native.functional as ef
    from embedding_native.torch import EmbeddingBag
    torch.set_num_threads(1)
    ef.set_num_threads(1)
    table = torch.randn((ROWS, DIM), generator=torch.Generator().manual_seed(0))
    results = {}
    for sparse in (True, False):
        module = EmbeddingBag.from_pretrained(table, freeze=False, mode="sum", sparse=sparse)
        forward, total = _time_steps(module, 0, steps)
        results["sparse" if sparse else "dense"] = (statistics.median(forward) * 1e3, statistics.median(total) * 1e3)
    return results


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--out", default=None, help="write the markdown table here too")
    arguments = parser.parse_args()
    names = ["drop-in, 1 process (no torch.distributed)"] + ["sharded, W = %d" % w for w in (1, 2, 3)]
    runs = {name: [] for name in names}   # name -> per round: [sparse fwd, sparse total, dense fwd, dense total, exchange]
    context = mp.get_context("spawn")
    for _ in range(arguments.rounds):
        single = _single(arguments.steps)
        runs[names[0]].append(list(single["sparse"]) + list(single["dense"]) + [None])
        for world_size in (1, 2, 3):
            queue = context.SimpleQueue()
            mp.start_processes(_rank, args=(world_size, _free_port(), arguments.steps, queue), nprocs=world_size,
                               start_method="spawn")
            result = queue.get()
            runs[names[world_size]].append(list(result["sparse"]) + list(result["dense"]) + [result["exchange"]])
    lines = [
        "# Sharded EmbeddingBag step cost (bench/distributed_step.py)",
        "",
        "`/usr/bin/python3 bench/distributed_step.py --steps %d --rounds %d` on %s, %d cores, torch %s, gloo over "
        "127.0.0.1." % (arguments.steps, arguments.rounds, platform.processor() or platform.machine(), os.cpu_count(),
                        torch.__version__),
        "Per rank: %d indices in bags of %d, V = %d, D = %d, float32, mode sum; one thread per rank."
        % (BATCH, BAG, ROWS, DIM),
        "A run's figure: the median over %d steps of the slowest rank, in ms; shown: the median over %d rounds "
        "[smallest, largest]." % (arguments.steps, arguments.rounds),
        "`exchange`: the five bare all_to_all_single calls of a forward + sparse backward (counts, row ids,",
        "rows back, gradient rows out, their row ids), same sizes, no computation.",
        "",
        "| configuration | sparse fwd | sparse fwd+bwd | dense fwd | dense fwd+bwd | exchange alone |",
        "|---|---|---|---|---|---|",
    ]
    for name in names:
        cells = []
        for column in range(5):
            values = [run[column] for run in runs[name]]
            cells.append("—" if values[0] is None else "%.2f [%.2f, %.2f]" % (statistics.median(values), min(values),
                                                                                max(values)))
        lines.append("| %s | %s |" % (name, " | ".join(cells)))
    text = "\n".join(lines) + "\n"
    print(text)
    if arguments.out:
        with open(arguments.out, "w") as file:
            file.write(text)


if __name__ == "__main__":
    main()
