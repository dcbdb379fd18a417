"""``ShardedEmbedding``: ``embedding_native.torch.Embedding`` with its rows split over ranks."""

import torch

from ...errors import EMB_ERROR_INDEX_OUT_OF_RANGE, EMB_ERROR_INVALID_ARGUMENT, EmbeddingIndexError, \
    EmbeddingRuntimeError
from ..._ops.failures import error as _error
from .. import _SPARSE_SCALE_MESSAGE, _functional, _normalize_padding_idx
from .gradients import embedding_gradient, route_to_owners, sparse_gradient
from .lookup import RowRequest, fetch_rows
from .table import ShardedTable, table_shape

__all__ = ["ShardedEmbedding"]

_INDEX_TYPES = (torch.int32, torch.int64)
_INDEX_DTYPE_MESSAGE = ("Expected tensor for argument #1 'indices' to have one of the following scalar types: "
                        "Long, Int; but got %s instead (while checking arguments for embedding)")


def flat_indices(input, num_embeddings, bag=False):
    """``input`` flattened to int64 after torch's checks: a tensor of int32 / int64 indices, each
    in ``[0, V)`` (IndexError "index out of range in self", as torch's lookup raises; a bag's
    index error is torch's bag RuntimeError)."""
    if not isinstance(input, torch.Tensor):
        raise TypeError("embedding(): argument 'indices' must be Tensor, not %s" % type(input).__name__)
    if input.dtype not in _INDEX_TYPES:
        raise _error(EmbeddingRuntimeError, EMB_ERROR_INVALID_ARGUMENT, _INDEX_DTYPE_MESSAGE % input.type())
    flat = input.reshape(-1).to(torch.int64)
    if flat.numel():
        bad = flat[(flat < 0) | (flat >= num_embeddings)]
        if bad.numel():
            if bag:
                raise _error(EmbeddingRuntimeError, EMB_ERROR_INDEX_OUT_OF_RANGE,
                             "embedding_bag: Expected idx >= 0 && idx < num_embeddings but found idx to be %d"
                             % int(bad[0]))
            raise _error(EmbeddingIndexError, EMB_ERROR_INDEX_OUT_OF_RANGE, "index out of range in self")
    return flat


class _ShardedLookup(torch.autograd.Function):
    """Forward: fetch the batch's rows from their owners and look them up; backward: send each
    position's gradient to its row's owner and build the shard's gradient there (dense or
    sparse). Both are collectives: every rank runs them once per step."""

    @staticmethod
    def forward(ctx, shard, module, input):
        request = failure = None
        try:
            flat = flat_indices(input, module.num_embeddings)
            request = RowRequest(flat, module.partition)
        except Exception as exc:  # raised by every rank after the count exchange (exchange.py)
            failure = exc
        fetched = fetch_rows(module.group, module.partition, shard, request, failure, module.max_norm,
                             module.norm_type)
        output = _functional.embedding(request.inverse.reshape(input.shape), fetched)
        ctx.module = module
        ctx.flat = flat
        return output

    @staticmethod
    def backward(ctx, grad_output):
        module = ctx.module
        dim = module.embedding_dim
        if module.sparse and module.scale_grad_by_freq:
            raise _error(EmbeddingRuntimeError, EMB_ERROR_INVALID_ARGUMENT, _SPARSE_SCALE_MESSAGE)
        flat = ctx.flat
        values = grad_output.reshape(-1, dim)
        if module.padding_idx is not None:
            keep = flat != module.padding_idx
            flat, values = flat[keep], values[keep]
        rows, (values,) = route_to_owners(module.group, module.partition, flat, [values])
        local = rows - module.row_start
        shard_rows = module.row_stop - module.row_start
        if module.sparse:
            grad = sparse_gradient(local, values, shard_rows, dim, grad_output.dtype)
        else:
            grad = embedding_gradient(local, values, shard_rows, dim, grad_output.dtype, module.scale_grad_by_freq)
        return grad, None, None


class ShardedEmbedding(ShardedTable):
    """``embedding_native.torch.Embedding`` whose rows are split over the ranks of a process group.

    ``ShardedEmbedding(num_embeddings, embedding_dim, padding_idx=None, max_norm=None,
    norm_type=2.0, scale_grad_by_freq=False, sparse=False, _weight=None, device=None,
    dtype=None, process_group=None)``; ``_weight`` is the whole table (only this rank's rows are
    kept). Rank r holds rows ``[r·ceil(V/W), min(V, (r+1)·ceil(V/W)))`` as its ``weight``.

    Data-parallel, as TorchRec's row-wise sharding: every rank calls ``forward`` with its own
    batch, and gets what ``Embedding`` (with the whole table) returns for that batch, bit for
    bit; after every rank's ``backward``, each shard's gradient is the single-process gradient,
    for the concatenation of every rank's batch in rank order, restricted to the shard's rows —
    dense (shard-local rows), or sparse with the same entries in the same order. max_norm
    renormalises the rows any rank references (once per step, as one process fed the
    concatenated batch). Forward and backward are collectives: every rank must call them the same
    number of times, in the same order as its other sharded modules.
    """

    def __init__(self, num_embeddings, embedding_dim, padding_idx=None, max_norm=None, norm_type=2.0,
                 scale_grad_by_freq=False, sparse=False, _weight=None, device=None, dtype=None, process_group=None,
                 *, partition=None, _shard=None):
        super().__init__()
        self.padding_idx = _normalize_padding_idx(padding_idx, num_embeddings)
        self.max_norm = max_norm
        self.norm_type = norm_type
        self.scale_grad_by_freq = scale_grad_by_freq
        self.sparse = sparse
        self._init_shard(num_embeddings, embedding_dim, _weight, _shard, device, dtype, process_group, partition)

    def forward(self, input):
        return _ShardedLookup.apply(self.weight, self, input)

    def extra_repr(self):
        text = "%d, %d" % (self.num_embeddings, self.embedding_dim)
        for name in ("padding_idx", "max_norm"):
            if getattr(self, name) is not None:
                text += ", %s=%s" % (name, getattr(self, name))
        if self.norm_type != 2:
            text += ", norm_type=%s" % self.norm_type
        if self.scale_grad_by_freq:
            text += ", scale_grad_by_freq=True"
        if self.sparse:
            text += ", sparse=True"
        return text + ", " + self._shard_repr()

    @classmethod
    def from_pretrained(cls, embeddings, freeze=True, padding_idx=None, max_norm=None, norm_type=2.0,
                        scale_grad_by_freq=False, sparse=False, process_group=None, *, partition=None):
        """A ShardedEmbedding holding this rank's rows of ``embeddings`` (a tensor, a numpy array
        or the path of a .npy / .safetensors file, memory-mapped): every rank passes the whole
        table and copies only its rows. ``freeze`` sets ``weight.requires_grad = not freeze``;
        the padding row is not zeroed (as in torch)."""
        rows, cols = table_shape(embeddings)
        module = cls(rows, cols, padding_idx=padding_idx, max_norm=max_norm, norm_type=norm_type,
                     scale_grad_by_freq=scale_grad_by_freq, sparse=sparse, _weight=embeddings,
                     process_group=process_group, partition=partition)
        module.weight.requires_grad = not freeze
        return module
