"""``embedding_native.torch.distributed``: the drop-in modules sharded by rows over
``torch.distributed`` (gloo, CPU), with the single-process module's results bit for bit.

    import torch.distributed as dist
    from embedding_native.torch.distributed import ShardedEmbeddingBag
    dist.init_process_group("gloo")                       # torchrun / env:// sets rank and world
    bag = ShardedEmbeddingBag.from_pretrained("table.npy", freeze=False, mode="sum")  # rows of this rank
    out = bag(my_indices, my_offsets)                     # this rank's own batch

Rows are split contiguously: rank r holds ``[r·ceil(V/W), min(V, (r+1)·ceil(V/W)))`` (partition.py).
Each rank runs forward on its own batch (data parallel, as TorchRec's row-wise sharding): the
indices go to their owners with ``all_to_all_single``, the owners send the rows back, and the
rank looks up or reduces its bags over those rows locally, in position order, so its output is
the single-process module's for its batch. In backward, per-position gradients go back to the
owners, and each shard's gradient is the single-process gradient of the concatenated batches
(rank order) restricted to its rows — the same additions in the same order (gradients.py).

Modules: :class:`ShardedEmbedding`, :class:`ShardedEmbeddingBag`, :class:`ShardedEmbeddingCollection`
(several tables, each table-wise on one rank or row-wise); checkpoints per rank with
re-sharding to another world size (checkpoint.py). ``python -m embedding_native.torch.distributed``
runs a demo. docs/scaling.md explains the bytes moved and how to launch over machines.
"""

from .checkpoint import load_shards, read_checkpoint, save_shard
from .collection import ShardedEmbeddingCollection
from .embedding import ShardedEmbedding
from .embedding_bag import ShardedEmbeddingBag
from .exchange import PeerFailure
from .partition import RowPartition

__all__ = ["ShardedEmbedding", "ShardedEmbeddingBag", "ShardedEmbeddingCollection", "RowPartition", "PeerFailure",
           "save_shard", "load_shards", "read_checkpoint"]
