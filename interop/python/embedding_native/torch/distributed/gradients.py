"""The backward exchange: per-position gradients sent to the rows' owners, and each shard's
gradient built from them in the single-process module's order of additions.

Positions travel to their row's owner grouped by owner with a stable sort, so an owner receives
them in rank order and, within a rank, in position order: exactly the order of those positions
in the concatenation of every rank's batch. What each shard gradient does with them:

* Embedding, dense: the native dense backward over the received positions accumulates each row
  in position order from +0.0 (with ``scale_grad_by_freq`` it counts each row's positions, all
  of which it received: the global count), as the single-process backward does.
* Embedding and EmbeddingBag, sparse: the received entries are the single-process gradient's
  entries of this shard's rows, in the same relative order (shard-local row ids), so any
  reduction in entry order (``embedding_native.functional.sparse_coalesce`` before the fused
  optimizer steps, ``torch.optim.SGD``'s ``add_``) gives the same bits; torch's ``coalesce()``,
  which sums in the order of its unstable sort of all entries, need not.
* EmbeddingBag, dense sum / mean: torch adds a row's contributions in the order its unstable sort
  of the whole index tensor leaves them, which depends on every position of every rank. The
  owner therefore gathers the concatenated index tensor (small: 8 bytes a position), sorts it
  as torch does (``torch.sort``, the sort the native backward reproduces) to find the order of
  its own positions. It then hands them to one native dense bag backward, each position a bag
  of its own with its contribution's scale ``fl(s)`` as per-sample weight — the same
  ``fma(g, fl(s), acc)`` (or plain ``acc + g`` when nothing scales) as the single-process
  kernel. That call sorts its own indices, which would reorder a row's positions; but its
  order depends only on the index values, so it is known in advance (``torch.sort`` of the
  same array), and each contribution is placed at the position that order visits when that
  contribution's turn comes.
* EmbeddingBag, dense max: bag by bag, each column's gradient goes to its arg-max row; owners
  receive the bags that have a column in their rows, in rank then bag order, and run the native
  max backward with the other columns pointed at a scratch row past the shard's end.
"""

import torch

from ... import functional as _functional
from ..._results import new_result


__all__ = ["route_to_owners", "embedding_gradient", "sparse_gradient", "bag_sum_mean_gradient",
           "bag_max_gradient"]


def _zeros(rows, dim, dtype):
    """A zero dense gradient made as the drop-ins make theirs (the package's result pool for
    large ones, _results.py), so a shard's gradient costs what a table's does."""
    return new_result((rows, dim), str(dtype)[len("torch."):], True, zeroed=True)


def route_to_owners(group, partition, rows, payloads, failure=None):
    """Sends each global row id in ``rows`` (int64, 1-D) and the matching rows of every tensor in
    ``payloads`` to the row's owner. Returns ``(received rows, [received payloads])``, in rank
    order and, within a rank, in the order given. Collective."""
    if failure is None:
        owners = partition.owners(rows)
        send_counts = torch.bincount(owners, minlength=group.world_size).tolist() if rows.numel() \
            else [0] * group.world_size
        if rows.numel() > 1 and not bool((owners[1:] >= owners[:-1]).all()):
            order = torch.sort(owners, stable=True)[1]
            rows = rows.index_select(0, order)
            payloads = [p.index_select(0, order) for p in payloads]
    else:
        send_counts = None
    recv_counts = group.counts(send_counts, failure)
    received_rows = group.exchange(rows, send_counts, recv_counts)
    return received_rows, [group.exchange(p, send_counts, recv_counts) for p in payloads]


def embedding_gradient(local_rows, values, shard_rows, dim, dtype, scale_grad_by_freq):
    """The dense shard gradient of the received Embedding positions (position order)."""
    if shard_rows == 0 or local_rows.numel() == 0:
        return _zeros(shard_rows, dim, dtype)
    return _functional.embedding_backward(values, local_rows, shard_rows, None, scale_grad_by_freq)


def sparse_gradient(local_rows, values, shard_rows, dim, dtype):
    """An uncoalesced COO gradient of the received entries; torch's empty layout when none."""
    if local_rows.numel() == 0 or dim == 0:
        local_rows = torch.empty((0,), dtype=torch.int64)
        values = torch.empty((0, dim), dtype=dtype)
    return torch.sparse_coo_tensor(local_rows.unsqueeze(0), values, (shard_rows, dim))


def bag_sum_mean_gradient(all_indices, positions, weights, members, values, start, shard_rows, dim, dtype,
                          scaled, scale_grad_by_freq):
    """The dense sum / mean shard gradient in torch's order (see the module doc).

    ``all_indices``: every rank's flat indices concatenated (int64); ``positions``: the received
    positions' places in it; ``weights``, ``members``: each received position's per-sample weight
    (1 without) and its bag's non-padding count (0 in sum mode), as float64; ``values``: each
    position's bag gradient row. ``scaled``: whether the single-process kernel scales at all."""
    grad = _zeros(shard_rows, dim, dtype)
    if positions.numel() == 0 or shard_rows == 0:
        return grad
    # Each position's place in torch's (unstable) sort of the whole index tensor.
    sorted_positions = torch.sort(all_indices)[1]
    place = torch.empty_like(sorted_positions)
    place[sorted_positions] = torch.arange(sorted_positions.numel())
    order = torch.sort(place[positions])[1]
    positions, weights, members, values = (t.index_select(0, order) for t in (positions, weights, members, values))
    rows = all_indices.index_select(0, positions) - start
    scale = None
    if scaled:
        # s built in double in the kernel's order: the weight, / the row's count over the whole
        # index tensor (padding and every rank included), / the bag's non-padding count (mean).
        scale = weights.clone()
        if scale_grad_by_freq:
            owned = all_indices[(all_indices >= start) & (all_indices < start + shard_rows)] - start
            counts = torch.bincount(owned, minlength=shard_rows).to(torch.float64)
            scale = scale / counts[rows]
        nonzero_members = members != 0
        scale = torch.where(nonzero_members, scale / torch.where(nonzero_members, members, torch.ones_like(members)),
                            scale)
        scale = scale.to(dtype)
    # ``rows`` ascends (torch's sort orders by value), each row's contributions in torch's order.
    # The native call below visits its positions in the order torch.sort(rows) gives, which
    # visits the j-th smallest index at step j: so the j-th contribution goes to that position.
    visit = torch.sort(rows)[1]
    arranged = torch.empty_like(values)
    arranged[visit] = values
    if scale is not None:
        arranged_scale = torch.empty_like(scale)
        arranged_scale[visit] = scale
        scale = arranged_scale
    _functional.embedding_bag_backward(arranged, rows, shard_rows, torch.arange(rows.numel(), dtype=torch.int64),
                                       mode="sum", per_sample_weights=scale, out=grad, accumulate=True)
    return grad


def bag_max_gradient(max_rows, values, start, shard_rows, dim, dtype):
    """The dense max shard gradient from received bags: ``max_rows`` (n, D) global arg-max rows,
    -1 in the columns another rank owns; ``values`` (n, D) the bags' gradients, in rank then bag order."""
    if shard_rows == 0:
        return torch.zeros((0, dim), dtype=dtype)
    # One scratch row past the shard takes the other ranks' columns (+0.0 added there, dropped).
    grad = _zeros(shard_rows + 1, dim, dtype)
    count = max_rows.shape[0]
    if count:
        local = torch.where(max_rows >= 0, max_rows - start, torch.full_like(max_rows, shard_rows))
        scratch = torch.full((count,), shard_rows, dtype=torch.int64)
        _functional.embedding_bag_backward(values, scratch, shard_rows + 1, torch.arange(count, dtype=torch.int64),
                                           mode="max", max_indices=local, out=grad, accumulate=True)
    return grad[:shard_rows]
