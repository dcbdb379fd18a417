"""Which rank owns which rows of a sharded table: contiguous row ranges, one per rank."""

import torch

__all__ = ["RowPartition"]


class RowPartition:
    """Contiguous row ranges ``[starts[r], starts[r + 1])``, one per rank, covering ``[0, V)``.

    ``RowPartition.row_wise(V, W)`` is the split the sharded modules use: every rank but the last
    ones holds ``ceil(V / W)`` rows, rank ``r`` rows ``[r * ceil(V / W), min(V, (r + 1) * ceil(V / W)))``
    (so with V = 10, W = 4: 3, 3, 3, 1 rows; with V = 5, W = 4: 2, 2, 1, 0 — a rank may hold none).
    ``RowPartition.on_rank(V, W, r)`` puts the whole table on rank ``r`` (table-wise sharding).
    Any other non-decreasing ``starts`` works too: nothing below depends on the rule, only on the
    ranges being contiguous and in rank order, which is what keeps the exchanged rows and gradients
    in rank order and, within a rank, in position order.
    """

    __slots__ = ("num_embeddings", "world_size", "starts")

    def __init__(self, starts):
        starts = [int(s) for s in starts]
        if len(starts) < 2 or starts[0] != 0 or any(b < a for a, b in zip(starts, starts[1:])):
            raise ValueError("row ranges must start at 0 and not decrease, got starts %s" % starts)
        self.starts = tuple(starts)
        self.num_embeddings = starts[-1]
        self.world_size = len(starts) - 1

    @classmethod
    def row_wise(cls, num_embeddings, world_size):
        """``ceil(V / W)`` rows per rank, the last ranks holding what is left (possibly nothing)."""
        num_embeddings, world_size = int(num_embeddings), int(world_size)
        if num_embeddings < 0 or world_size < 1:
            raise ValueError("need num_embeddings >= 0 and world_size >= 1, got %d and %d"
                             % (num_embeddings, world_size))
        per_rank = -(-num_embeddings // world_size)
        return cls([min(num_embeddings, r * per_rank) for r in range(world_size + 1)])

    @classmethod
    def on_rank(cls, num_embeddings, world_size, rank):
        """The whole table on ``rank``: table-wise placement as a degenerate row split."""
        if not 0 <= rank < world_size:
            raise ValueError("rank %d is not in a world of %d" % (rank, world_size))
        return cls([0] * (rank + 1) + [int(num_embeddings)] * (world_size - rank))

    def rows_of(self, rank):
        """``(start, stop)`` of ``rank``'s rows."""
        return self.starts[rank], self.starts[rank + 1]

    def size_of(self, rank):
        return self.starts[rank + 1] - self.starts[rank]

    def owners(self, rows):
        """The owning rank of each global row id in the int64 tensor ``rows`` (all in ``[0, V)``)."""
        boundaries = torch.tensor(self.starts[1:-1], dtype=torch.int64)
        # A row equal to a boundary belongs to the rank that starts there (right=True); empty
        # ranks share their boundary with the next one, which therefore wins.
        return torch.searchsorted(boundaries, rows, right=True)

    def counts(self, rows):
        """How many of the (owner-sorted or not) ``rows`` each rank owns, as a list of ints."""
        if rows.numel() == 0:
            return [0] * self.world_size
        return torch.bincount(self.owners(rows), minlength=self.world_size).tolist()

    def __eq__(self, other):
        return isinstance(other, RowPartition) and self.starts == other.starts

    def __hash__(self):
        return hash(self.starts)

    def __repr__(self):
        return "RowPartition(starts=%s)" % (list(self.starts),)
