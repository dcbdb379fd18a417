"""``ShardedEmbeddingBag``: ``embedding_native.torch.EmbeddingBag`` with its rows split over ranks."""

import torch

from ...errors import EMB_ERROR_INDEX_OUT_OF_RANGE, EmbeddingIndexError
from ..._ops.failures import error as _error
from .. import _BagPerSampleWeightsGradient, _bag_normalize_padding_idx, _bag_sparse_gradient, \
    _prepare_embedding_bag
from .embedding import flat_indices
from .gradients import bag_max_gradient, bag_sum_mean_gradient, route_to_owners, sparse_gradient
from .lookup import RowRequest, fetch_rows
from .table import ShardedTable, table_shape

__all__ = ["ShardedEmbeddingBag"]


class _LocalBags:
    """One rank's bags over its compact table: the validated BagCall (indices remapped into the
    fetched rows, the padding row too when the batch references it) and the remapping."""

    __slots__ = ("call", "table", "fetched", "request", "flat")

    def __init__(self, module, shard, input, offsets, per_sample_weights):
        self.request = self.flat = None
        compact = input
        table_rows = 0
        padding = None
        if isinstance(input, torch.Tensor) and input.dtype in (torch.int32, torch.int64):
            self.flat = _bag_flat_indices(input, module)
            self.request = RowRequest(self.flat, module.partition)
            unique = self.request.unique
            compact = self.request.inverse.reshape(input.shape).to(input.dtype)
            table_rows = unique.numel()
            if module.padding_idx is not None:
                place = int(torch.searchsorted(unique, torch.tensor(module.padding_idx)))
                if place < table_rows and int(unique[place]) == module.padding_idx:
                    padding = place
                else:
                    # torch's bag kernels round differently with a padding_idx than without
                    # (a product rounded before each add, not one fma), even when no position
                    # is padding: the compact table gets an unreferenced padding row of its own.
                    padding = table_rows
        # The fetched rows land here (the checks below read only its shape and type), and the
        # unreferenced padding row after them, zero, if there is one.
        self.table = torch.empty((table_rows + (padding == table_rows), module.embedding_dim), dtype=shard.dtype)
        self.table[table_rows:].zero_()
        self.fetched = self.table[:table_rows]
        # torch's checks and errors (on the compact indices: same shapes, dtypes and offsets);
        # max_norm is the owners' (lookup.py), so it is not passed.
        self.call = _prepare_embedding_bag(compact, self.table, offsets, None, module.norm_type,
                                           module.scale_grad_by_freq, module.mode, module.sparse, per_sample_weights,
                                           module.include_last_offset, padding)

    def bag_of_positions(self, input, offsets):
        """Each flat position's bag (-1 for none), as the layout assigns them."""
        layout = self.call.layout
        positions = torch.arange(layout.num_indices)
        if input.dim() == 2:
            return positions // input.shape[1]
        starts = offsets.reshape(-1).to(torch.int64)[:layout.num_bags]
        return torch.searchsorted(starts, positions, right=True) - 1


def _bag_flat_indices(input, module):
    """The flat int64 indices after the drop-in's index checks: with max_norm first its renorm's
    IndexError for an index outside [-V, V), then the bag's RuntimeError for any outside [0, V)."""
    rows = module.num_embeddings
    if module.max_norm is not None:
        flat = input.reshape(-1).to(torch.int64)
        bad = flat[(flat < -rows) | (flat >= rows)]
        if bad.numel():
            shown = int(bad.max()) if int(bad.max()) >= rows else int(bad.min())
            raise _error(EmbeddingIndexError, EMB_ERROR_INDEX_OUT_OF_RANGE,
                         "select(): index %d out of range for tensor of size [%d, %d] at dimension 0"
                         % (shown, rows, module.embedding_dim))
    return flat_indices(input, rows, bag=True)


class _ShardedBags(torch.autograd.Function):
    """Forward: fetch the batch's rows from their owners and reduce the bags locally, in position
    order, over them; backward: the per_sample_weights gradient locally, the weight gradient at
    the owners (gradients.py). Both are collectives."""

    @staticmethod
    def forward(ctx, shard, per_sample_weights, module, input, offsets):
        bags = failure = None
        try:
            bags = _LocalBags(module, shard, input, offsets, per_sample_weights)
        except Exception as exc:  # raised by every rank after the count exchange (exchange.py)
            failure = exc
        request = None if bags is None else bags.request
        fetch_rows(module.group, module.partition, shard, request, failure, module.max_norm, module.norm_type,
                   None if bags is None else bags.fetched)
        want_max = ctx.needs_input_grad[0] and module.mode == "max"
        output, max_indices = bags.call.forward(want_max_indices=want_max)
        ctx.module = module
        ctx.bags = bags
        ctx.max_indices = max_indices
        ctx.input = input
        ctx.offsets = offsets
        ctx.per_sample_weights = None if per_sample_weights is None else per_sample_weights.detach()
        return output

    @staticmethod
    def backward(ctx, grad_output):
        module, bags = ctx.module, ctx.bags
        grad_output = grad_output.contiguous()
        grad_weight = grad_psw = None
        if ctx.needs_input_grad[1]:
            psw = ctx.per_sample_weights
            grad_psw = _BagPerSampleWeightsGradient.compute(grad_output, bags.table, bags.call, psw.shape)
        if ctx.needs_input_grad[0]:
            if module.sparse:
                grad_weight = _sparse_bag_gradient(module, bags, grad_output)
            elif module.mode == "max":
                grad_weight = _max_bag_gradient(module, bags, grad_output, ctx.max_indices)
            else:
                grad_weight = _sum_mean_bag_gradient(module, bags, grad_output, ctx.input, ctx.offsets,
                                                     ctx.per_sample_weights)
        return grad_weight, grad_psw, None, None, None


def _shard_rows(module):
    return module.row_stop - module.row_start


def _sparse_bag_gradient(module, bags, grad_output):
    """The local sparse gradient (compact rows, position order), its entries sent to the owners."""
    local = _bag_sparse_gradient(grad_output, bags.call)
    rows = bags.request.unique[local._indices()[0]]
    received, (values,) = route_to_owners(module.group, module.partition, rows, [local._values()])
    return sparse_gradient(received - module.row_start, values, _shard_rows(module), module.embedding_dim,
                           grad_output.dtype)


def _max_bag_gradient(module, bags, grad_output, max_indices):
    """Each owner gets the bags with an arg-max column in its rows (other columns -1), in bag order."""
    group, partition = module.group, module.partition
    unique = bags.request.unique
    empty = max_indices < 0
    rows = torch.where(empty, torch.full_like(max_indices, -1), unique[max_indices.clamp(min=0)]) \
        if unique.numel() else max_indices
    owners = torch.where(empty, torch.full_like(rows, -1), partition.owners(rows.clamp(min=0)))
    max_rows, values, counts = [], [], []
    for rank in range(group.world_size):
        owned = owners == rank
        chosen = owned.any(1).nonzero().reshape(-1)
        max_rows.append(torch.where(owned[chosen], rows[chosen], torch.full_like(rows[chosen], -1)))
        values.append(grad_output[chosen])
        counts.append(chosen.numel())
    received = group.counts(counts)
    max_rows = group.exchange(torch.cat(max_rows), counts, received)
    values = group.exchange(torch.cat(values), counts, received)
    return bag_max_gradient(max_rows, values, module.row_start, _shard_rows(module), module.embedding_dim,
                            grad_output.dtype)


def _sum_mean_bag_gradient(module, bags, grad_output, input, offsets, per_sample_weights):
    """Each non-padding position's bag gradient, weight and bag size sent to its row's owner with
    its place in the concatenated index tensor, which every rank gathers (gradients.py)."""
    group = module.group
    all_indices, rank_starts = group.gather_concatenated(bags.flat)
    flat = bags.flat
    bag_of = bags.bag_of_positions(input, offsets)
    keep = bag_of >= 0
    if module.padding_idx is not None:
        keep &= flat != module.padding_idx
    positions = keep.nonzero().reshape(-1)
    mean = module.mode == "mean"
    float64 = torch.float64
    if mean:
        members = torch.bincount(bag_of[positions], minlength=bags.call.layout.num_bags).to(float64)
        members = members[bag_of[positions]]
    else:
        members = torch.zeros(positions.numel(), dtype=float64)
    weights = torch.ones(positions.numel(), dtype=float64) if per_sample_weights is None \
        else per_sample_weights.reshape(-1)[positions].to(float64)
    meta = torch.stack([(positions + rank_starts[group.rank]).to(float64), weights, members], 1)
    received, (meta, values) = route_to_owners(group, module.partition, flat[positions],
                                               [meta, grad_output[bag_of[positions]]])
    scaled = mean or module.scale_grad_by_freq or per_sample_weights is not None
    return bag_sum_mean_gradient(all_indices, meta[:, 0].to(torch.int64), meta[:, 1], meta[:, 2], values,
                                 module.row_start, _shard_rows(module), module.embedding_dim, grad_output.dtype,
                                 scaled, module.scale_grad_by_freq)


class ShardedEmbeddingBag(ShardedTable):
    """``embedding_native.torch.EmbeddingBag`` whose rows are split over the ranks of a process group.

    ``ShardedEmbeddingBag(num_embeddings, embedding_dim, max_norm=None, norm_type=2.0,
    scale_grad_by_freq=False, mode='mean', sparse=False, _weight=None, include_last_offset=False,
    padding_idx=None, device=None, dtype=None, process_group=None)``; ``forward(input,
    offsets=None, per_sample_weights=None)`` with this rank's own batch. Rows, semantics and
    collectives as :class:`ShardedEmbedding`: the output is the drop-in's for this batch bit for
    bit (bags are reduced here, in position order, over the fetched rows, so a bag whose rows
    live on several ranks adds them in the same order); the shard gradients are the drop-in's for
    the concatenated batches (1-D inputs: indices concatenated, each rank's offsets shifted by
    the lengths before it; per_sample_weights on every rank or on none). Every mode trains dense
    and (sum, mean) sparse; scale_grad_by_freq counts each row over every rank's batch.
    """

    def __init__(self, num_embeddings, embedding_dim, max_norm=None, norm_type=2.0, scale_grad_by_freq=False,
                 mode="mean", sparse=False, _weight=None, include_last_offset=False, padding_idx=None,
                 device=None, dtype=None, process_group=None, *, partition=None, _shard=None):
        super().__init__()
        self.max_norm = max_norm
        self.norm_type = norm_type
        self.scale_grad_by_freq = scale_grad_by_freq
        self.padding_idx = _bag_normalize_padding_idx(padding_idx, num_embeddings)
        self.mode = mode
        self.sparse = sparse
        self.include_last_offset = include_last_offset
        self._init_shard(num_embeddings, embedding_dim, _weight, _shard, device, dtype, process_group, partition)

    def forward(self, input, offsets=None, per_sample_weights=None):
        return _ShardedBags.apply(self.weight, per_sample_weights, self, input, offsets)

    def extra_repr(self):
        text = "%d, %d" % (self.num_embeddings, self.embedding_dim)
        if self.max_norm is not None:
            text += ", max_norm=%s" % self.max_norm
        if self.norm_type != 2:
            text += ", norm_type=%s" % self.norm_type
        if self.scale_grad_by_freq:
            text += ", scale_grad_by_freq=True"
        text += ", mode=%s" % self.mode
        if self.sparse:
            text += ", sparse=True"
        if self.include_last_offset:
            text += ", include_last_offset=True"
        if self.padding_idx is not None:
            text += ", padding_idx=%s" % self.padding_idx
        return text + ", " + self._shard_repr()

    @classmethod
    def from_pretrained(cls, embeddings, freeze=True, max_norm=None, norm_type=2.0, scale_grad_by_freq=False,
                        mode="mean", sparse=False, include_last_offset=False, padding_idx=None, process_group=None,
                        *, partition=None):
        """A ShardedEmbeddingBag holding this rank's rows of ``embeddings`` (tensor, numpy array or
        table file path, memory-mapped); every rank passes the whole table and copies only its
        rows. ``freeze`` sets ``weight.requires_grad = not freeze``."""
        rows, cols = table_shape(embeddings)
        module = cls(rows, cols, max_norm=max_norm, norm_type=norm_type, scale_grad_by_freq=scale_grad_by_freq,
                     mode=mode, sparse=sparse, _weight=embeddings, include_last_offset=include_last_offset,
                     padding_idx=padding_idx, process_group=process_group, partition=partition)
        module.weight.requires_grad = not freeze
        return module
