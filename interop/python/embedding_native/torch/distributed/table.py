"""What the sharded modules share: the process group, the row partition, this rank's shard as
the ``weight`` Parameter, and building that shard from a whole table without copying the rest."""

import os

import numpy as np
import torch
from torch.nn import Parameter, init

from ... import tables as _tables
from ...errors import EMB_ERROR_UNSUPPORTED_DTYPE, EmbeddingNotSupportedError
from ..._ops.failures import error as _error
from .exchange import Group
from .partition import RowPartition

__all__ = ["ShardedTable", "SHARD_DTYPES"]

#: Table types of the sharded modules. Their dense bag gradient rebuilds each contribution's
#: scale in double and converts it once to the table type (gradients.py); torch converts double
#: to float16 through float, the library directly, so 16-bit tables are refused rather than risk
#: a last-bit difference.
SHARD_DTYPES = (torch.float32, torch.float64)


def rows_of_table(table, start, stop):
    """Rows ``[start, stop)`` of a whole table as a new tensor (a copy of those rows only).

    ``table``: a 2-D tensor, a numpy array, or the path of a .npy / .safetensors table file,
    which is memory-mapped, so only the pages of these rows are read."""
    if isinstance(table, (str, bytes, os.PathLike)):
        table = _tables.load(table, mmap=True)
    if isinstance(table, np.ndarray):
        if table.ndim != 2:
            raise AssertionError("Embeddings parameter is expected to be 2-dimensional")
        return torch.from_numpy(np.array(table[start:stop], copy=True))
    if not isinstance(table, torch.Tensor):
        raise TypeError("a table must be a torch.Tensor, a numpy array or a table file path, got %s"
                        % type(table).__name__)
    if table.dim() != 2:
        raise AssertionError("Embeddings parameter is expected to be 2-dimensional")
    return table.detach()[start:stop].clone(memory_format=torch.contiguous_format)


def table_shape(table):
    """``(rows, columns)`` of a whole table given as :func:`rows_of_table` takes it."""
    if isinstance(table, (str, bytes, os.PathLike)):
        table = _tables.load(table, mmap=True)
    if len(table.shape) != 2:
        raise AssertionError("Embeddings parameter is expected to be 2-dimensional")
    return tuple(int(n) for n in table.shape)


class ShardedTable(torch.nn.Module):
    """A table of ``num_embeddings`` rows split by ``partition`` (row-wise, ``ceil(V / W)`` rows
    per rank, by default) over the ranks of ``process_group``; ``weight`` holds this rank's rows.

    Attributes: ``weight`` (the shard, ``(stop - start, D)``), ``partition``, ``row_start``,
    ``row_stop``, ``rank``, ``world_size``, plus the constructor arguments of the drop-in.
    """

    def _init_shard(self, num_embeddings, embedding_dim, _weight, _shard, device, dtype, process_group, partition):
        self.group = Group(process_group)
        self.num_embeddings = int(num_embeddings)
        self.embedding_dim = int(embedding_dim)
        if partition is None:
            partition = RowPartition.row_wise(self.num_embeddings, self.group.world_size)
        if partition.num_embeddings != self.num_embeddings or partition.world_size != self.group.world_size:
            raise ValueError("partition %r does not split %d rows over %d ranks"
                             % (partition, self.num_embeddings, self.group.world_size))
        self.partition = partition
        self.row_start, self.row_stop = partition.rows_of(self.group.rank)
        shard_shape = (self.row_stop - self.row_start, self.embedding_dim)
        if _shard is not None:
            if tuple(_shard.shape) != shard_shape:
                raise AssertionError("Shape of the shard %s does not match rows [%d, %d) of %d columns"
                                     % (tuple(_shard.shape), self.row_start, self.row_stop, self.embedding_dim))
            shard = _shard
        elif _weight is not None:
            if table_shape(_weight) != (self.num_embeddings, self.embedding_dim):
                raise AssertionError("Shape of weight does not match num_embeddings and embedding_dim")
            shard = rows_of_table(_weight, self.row_start, self.row_stop)
        else:
            shard = None
        if shard is None:
            self.weight = Parameter(torch.empty(shard_shape, device=device, dtype=dtype))
            _check_shard_type(self.weight.dtype)
            self.reset_parameters()
        else:
            _check_shard_type(shard.dtype)
            self.weight = Parameter(shard)

    @property
    def rank(self):
        return self.group.rank

    @property
    def world_size(self):
        return self.group.world_size

    @property
    def process_group(self):
        return self.group.process_group

    def reset_parameters(self):
        """N(0, 1) on this rank's rows (from this process's RNG: the whole table is never drawn,
        so the values differ from a single-process module's; use ``from_pretrained`` for a given
        table), then the padding row zeroed on its owner."""
        init.normal_(self.weight)
        padding = getattr(self, "padding_idx", None)
        if padding is not None and self.row_start <= padding < self.row_stop:
            with torch.no_grad():
                self.weight[padding - self.row_start].fill_(0)

    def full_weight(self):
        """The whole ``(V, D)`` table, gathered from every rank (collective: every rank calls it)."""
        return self.group.gather_rows(self.weight.detach(), self.partition)

    def shard_nbytes(self):
        """Bytes of this rank's rows."""
        return self.weight.numel() * self.weight.element_size()

    def _shard_repr(self):
        return "rows=[%d, %d) on rank %d of %d" % (self.row_start, self.row_stop, self.rank, self.world_size)


def _check_shard_type(dtype):
    if dtype not in SHARD_DTYPES:
        raise _error(EmbeddingNotSupportedError, EMB_ERROR_UNSUPPORTED_DTYPE,
                     "embedding_native sharded modules support weight dtype float32, float64 only in this "
                     "version (got %s)" % dtype)
