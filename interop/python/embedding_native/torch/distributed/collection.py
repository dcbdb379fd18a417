"""``ShardedEmbeddingCollection``: several named tables, each placed whole on one rank
(table-wise) or split by rows over every rank (row-wise), with one forward over a dict."""

import torch

from .embedding import ShardedEmbedding
from .embedding_bag import ShardedEmbeddingBag
from .exchange import Group
from .partition import RowPartition
from .table import table_shape

__all__ = ["ShardedEmbeddingCollection"]

_KINDS = {"bag": ShardedEmbeddingBag, "embedding": ShardedEmbedding}
_SHARDINGS = ("table_wise", "row_wise")


class ShardedEmbeddingCollection(torch.nn.Module):
    """Named tables over one process group.

    ``tables`` maps a name to a dict: ``num_embeddings`` and ``embedding_dim`` (or ``weight``, a
    whole table: tensor, numpy array or file path), ``kind`` ``"bag"`` (default) or
    ``"embedding"``, ``sharding`` ``"table_wise"`` (default) or ``"row_wise"``, ``rank`` (for
    table-wise; by default each table goes to the rank holding the fewest table elements so far, tables
    taken in name order), ``freeze`` (default False), and any constructor
    argument of the module (``mode``, ``sparse``, ``padding_idx``, ...).

    A table-wise table is a row-wise one whose partition gives every row to one rank
    (``RowPartition.on_rank``), so it computes exactly as the sharded modules do: the other
    ranks fetch its rows from that rank. ``forward(inputs)`` takes a dict name -> indices (an
    Embedding) or name -> ``(indices, offsets)`` / ``(indices, offsets, per_sample_weights)``
    (a bag) and returns a dict name -> output; every rank must pass the same names (the
    tables run one after another, in name order, each a collective).
    """

    def __init__(self, tables, process_group=None):
        super().__init__()
        group = Group(process_group)
        self.tables = torch.nn.ModuleDict()
        load = [0] * group.world_size
        for name in sorted(tables):
            spec = dict(tables[name])
            kind = spec.pop("kind", "bag")
            sharding = spec.pop("sharding", "table_wise")
            rank = spec.pop("rank", None)
            weight = spec.pop("weight", None)
            freeze = spec.pop("freeze", None)
            if kind not in _KINDS or sharding not in _SHARDINGS:
                raise ValueError("table %r: kind must be one of %s and sharding one of %s"
                                 % (name, sorted(_KINDS), list(_SHARDINGS)))
            cls = _KINDS[kind]
            if weight is not None:
                rows, dim = table_shape(weight)
            else:
                rows, dim = spec.pop("num_embeddings"), spec.pop("embedding_dim")
            if sharding == "table_wise":
                if rank is None:
                    rank = min(range(group.world_size), key=lambda r: (load[r], r))
                partition = RowPartition.on_rank(rows, group.world_size, rank)
                load[rank] += rows * dim
            else:
                partition = RowPartition.row_wise(rows, group.world_size)
            if weight is not None:
                module = cls.from_pretrained(weight, freeze=bool(freeze), process_group=process_group,
                                             partition=partition, **spec)
            else:
                module = cls(rows, dim, process_group=process_group, partition=partition, **spec)
                if freeze is not None:
                    module.weight.requires_grad = not freeze
            self.tables[name] = module

    def forward(self, inputs):
        if sorted(inputs) != list(self.tables.keys()):
            raise KeyError("inputs name %s; the collection's tables are %s"
                           % (sorted(inputs), list(self.tables.keys())))
        outputs = {}
        for name, module in self.tables.items():
            arguments = inputs[name]
            if isinstance(module, ShardedEmbeddingBag):
                arguments = arguments if isinstance(arguments, (tuple, list)) else (arguments,)
                outputs[name] = module(*arguments)
            else:
                outputs[name] = module(arguments)
        return outputs

