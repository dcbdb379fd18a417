"""The forward exchange: the rows one rank's indices reference, fetched from their owners.

Each rank asks for the distinct rows its own batch references (``torch.unique``, ascending, so
already grouped by owner in rank order); each owner receives every rank's requests in one
all_to_all, renormalises the requested rows in place when the module has ``max_norm`` (torch
renormalises the rows a batch references before it reads them; here the batch is every rank's
batch, so each row is renormalised once, as in one process fed the concatenated batches), reads
them with the native gather and sends them back. The requesting rank then has a compact table
of its distinct rows and its indices remapped into it (``inverse``): a lookup or a bag over that
compact table reads the same rows in the same positions as the single-process module, so the
results are the same bits.

Per batch of N indices with U distinct rows, each rank sends 8·U bytes of row ids and receives
U·D·itemsize bytes of rows (plus one count exchange of 8·W bytes).
"""

import torch

from ... import functional as _functional

__all__ = ["RowRequest", "fetch_rows"]


class RowRequest:
    """The distinct rows of one rank's flat int64 indices: ``unique`` (ascending), ``inverse``
    (each position's place in ``unique``) and ``send_counts`` (how many each rank owns)."""

    __slots__ = ("unique", "inverse", "send_counts")

    def __init__(self, flat_indices, partition):
        # sort + unique_consecutive: the same result as torch.unique(sorted=True,
        # return_inverse=True), whose CPU kernel in torch 1.13 is several times slower.
        ordered, order = torch.sort(flat_indices)
        self.unique, inverse_of_ordered = torch.unique_consecutive(ordered, return_inverse=True)
        self.inverse = torch.empty_like(inverse_of_ordered)
        self.inverse[order] = inverse_of_ordered
        self.send_counts = partition.counts(self.unique)


def fetch_rows(group, partition, shard, request, failure, max_norm=None, norm_type=2.0, destination=None):
    """Serves every rank's requests from ``shard`` and returns this rank's fetched rows
    ``(len(request.unique), D)`` in the order of ``request.unique`` (into ``destination`` when given).

    Collective: every rank of the group calls it once per forward. ``failure`` is this rank's
    exception from checking its arguments (or None): then every rank raises instead of exchanging.
    """
    recv_counts = group.counts(None if request is None else request.send_counts, failure)
    requested = group.exchange(request.unique, request.send_counts, recv_counts)
    start, _ = partition.rows_of(group.rank)
    table = shard.detach()
    dim = table.shape[1]
    if requested.numel():
        local = requested - start
        if max_norm is not None:
            with torch.no_grad():
                _functional.embedding_renorm_(table, local, max_norm, norm_type)
        rows = _functional.embedding(local, table)
    else:
        rows = torch.empty((0, dim), dtype=table.dtype)
    fetched = torch.empty((request.unique.numel(), dim), dtype=table.dtype) if destination is None else destination
    return group.exchange_into(fetched, rows, recv_counts, request.send_counts)
