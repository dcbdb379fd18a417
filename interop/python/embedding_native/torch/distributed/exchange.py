"""The collectives the sharded modules run, over ``torch.distributed`` (gloo on the CPU).

Every exchange is ``all_to_all_single`` with explicit split sizes: gloo implements it on CPU
tensors (the list form ``all_to_all`` it does not). Rows go out grouped by destination rank and
come back grouped by source rank, in rank order, each group in the order it was sent — the
property the bit-identical sums rely on.

A collective must be entered by every rank of the group, so a rank that finds a bad argument
cannot simply raise: the others would wait for it forever. Each call therefore starts with a
count exchange that also carries a failure flag (a count of -1); when any rank failed, every
rank raises (the failing one its own error, the others a RuntimeError naming the rank).
"""

import torch
import torch.distributed as dist

__all__ = ["Group", "PeerFailure"]


class PeerFailure(RuntimeError):
    """Another rank of the group failed the same call (its own error says why)."""


class Group:
    """A process group with its rank and size, and the exchanges on it."""

    __slots__ = ("process_group", "rank", "world_size")

    def __init__(self, process_group=None):
        if not dist.is_available() or not dist.is_initialized():
            raise RuntimeError("embedding_native.torch.distributed needs torch.distributed initialised "
                               "(torch.distributed.init_process_group('gloo', ...)) before a sharded module is built")
        self.process_group = process_group
        self.rank = dist.get_rank(process_group)
        self.world_size = dist.get_world_size(process_group)

    def counts(self, send_counts, failure=None):
        """Exchanges per-destination counts: returns the list of counts each rank sends here.

        ``failure`` is this rank's exception, or None. When any rank failed, every rank raises
        after the exchange (so none is left waiting in a later collective)."""
        world = self.world_size
        send = torch.full((world,), -1, dtype=torch.int64) if failure is not None \
            else torch.tensor(send_counts, dtype=torch.int64)
        received = torch.empty(world, dtype=torch.int64)
        dist.all_to_all_single(received, send, group=self.process_group)
        if failure is not None:
            raise failure
        failed = (received < 0).nonzero()
        if failed.numel():
            raise PeerFailure("embedding_native.torch.distributed: rank %d of the process group failed this call "
                              "(see its error); no rank changed anything" % int(failed[0, 0]))
        return received.tolist()

    def exchange(self, rows, send_counts, recv_counts):
        """Sends ``rows[sum(send_counts[:r]) : ...]`` to rank r; returns what every rank sent
        here, concatenated in rank order (``sum(recv_counts)`` rows, same trailing shape)."""
        rows = rows.contiguous()
        received = torch.empty((sum(recv_counts),) + tuple(rows.shape[1:]), dtype=rows.dtype)
        dist.all_to_all_single(received, rows, list(recv_counts), list(send_counts), group=self.process_group)
        return received

    def exchange_into(self, destination, rows, send_counts, recv_counts):
        """:meth:`exchange` into an existing contiguous ``destination``."""
        dist.all_to_all_single(destination, rows.contiguous(), list(recv_counts), list(send_counts),
                               group=self.process_group)
        return destination

    def gather_concatenated(self, vector):
        """Every rank's 1-D ``vector`` (lengths may differ), concatenated in rank order, on every
        rank; and the start of each rank's part. Two all_gathers: the lengths, then the padded vectors."""
        world = self.world_size
        length = torch.tensor([vector.numel()], dtype=torch.int64)
        lengths = [torch.empty(1, dtype=torch.int64) for _ in range(world)]
        dist.all_gather(lengths, length, group=self.process_group)
        lengths = [int(n) for n in lengths]
        longest = max(lengths)
        padded = torch.zeros(longest, dtype=vector.dtype)
        padded[:vector.numel()] = vector
        parts = [torch.empty(longest, dtype=vector.dtype) for _ in range(world)]
        dist.all_gather(parts, padded, group=self.process_group)
        starts = [0]
        for n in lengths:
            starts.append(starts[-1] + n)
        return torch.cat([part[:n] for part, n in zip(parts, lengths)]), starts

    def gather_rows(self, shard, partition):
        """The whole table: every rank's shard (rows of ``partition``), on every rank."""
        world = self.world_size
        dim = shard.shape[1]
        longest = max(partition.size_of(r) for r in range(world))
        padded = torch.zeros((longest, dim), dtype=shard.dtype)
        padded[:shard.shape[0]] = shard
        parts = [torch.empty((longest, dim), dtype=shard.dtype) for _ in range(world)]
        dist.all_gather(parts, padded, group=self.process_group)
        return torch.cat([part[:partition.size_of(r)] for r, part in enumerate(parts)])
