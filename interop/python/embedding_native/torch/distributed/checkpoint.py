"""Per-rank checkpoints of sharded tables, and loading them into any number of ranks.

``save_shard(module, directory)`` writes this rank's rows as one .safetensors file (through
``embedding_native.tables.save``: written under a temporary name, then renamed), named
``<name>.rank-<r>-of-<W>.safetensors``, with metadata ``format``, ``num_embeddings``,
``embedding_dim``, ``row_start``, ``row_stop``, ``rank``, ``world_size``. ``load_shards(module,
directory)`` fills a module built for another world size (or partition): it reads the headers
of the saved files, checks that their ranges tile ``[0, V)``, and copies into its shard only the
rows it owns, each file memory-mapped (``embedding_native.tables.load``), so a rank reads the
pages of its own rows and nothing else. No collective runs: each rank saves and loads on its own
(the directory must be visible to every rank that loads, e.g. a shared file system).
"""

import glob
import os
import re

import torch
from torch.nn import Parameter

from ... import tables as _tables
from ..._tables import safetensors as _safetensors

__all__ = ["save_shard", "read_checkpoint", "load_shards", "FORMAT"]

#: The ``format`` metadata value of a shard file.
FORMAT = "embedding_native.row-shard/1"
_INTEGER_FIELDS = ("num_embeddings", "embedding_dim", "row_start", "row_stop", "rank", "world_size")


def shard_path(directory, name, rank, world_size):
    return os.path.join(os.fspath(directory), "%s.rank-%05d-of-%05d.safetensors" % (name, rank, world_size))


def save_shard(module, directory, name="weight"):
    """Writes ``module``'s shard (a ShardedEmbedding / ShardedEmbeddingBag) to ``directory``;
    returns the file's path. Every rank calls it for its own shard."""
    os.makedirs(os.fspath(directory), exist_ok=True)
    path = shard_path(directory, name, module.rank, module.world_size)
    metadata = {"format": FORMAT, "num_embeddings": module.num_embeddings, "embedding_dim": module.embedding_dim,
                "row_start": module.row_start, "row_stop": module.row_stop, "rank": module.rank,
                "world_size": module.world_size}
    _tables.save(path, module.weight.detach(), "safetensors", metadata={k: str(v) for k, v in metadata.items()})
    return path


def read_checkpoint(directory, name="weight"):
    """The saved shards of ``name`` in ``directory``: ``(num_embeddings, embedding_dim, pieces)``
    with ``pieces`` a list of ``(row_start, row_stop, path)`` in row order. Raises ValueError when
    the files are not one complete checkpoint (ranges that overlap or leave a gap, shapes or
    world sizes that disagree, files of another format)."""
    pattern = re.compile(re.escape(name) + r"\.rank-(\d+)-of-(\d+)\.safetensors$")
    entries = []
    for path in sorted(glob.glob(os.path.join(glob.escape(os.fspath(directory)), name + ".rank-*.safetensors"))):
        if not pattern.search(os.path.basename(path)):
            continue
        metadata = _read_metadata(path)
        if metadata.get("format") != FORMAT:
            raise ValueError("%r is not a row shard (format %r)" % (path, metadata.get("format")))
        try:
            fields = {key: int(metadata[key]) for key in _INTEGER_FIELDS}
        except (KeyError, ValueError):
            raise ValueError("%r: its metadata lacks %s" % (path, ", ".join(_INTEGER_FIELDS))) from None
        entries.append((fields, path))
    if not entries:
        raise ValueError("no shards of %r in %r" % (name, os.fspath(directory)))
    first = entries[0][0]
    for fields, path in entries:
        for key in ("num_embeddings", "embedding_dim", "world_size"):
            if fields[key] != first[key]:
                raise ValueError("%r: %s %d, another shard says %d" % (path, key, fields[key], first[key]))
    if len(entries) != first["world_size"]:
        raise ValueError("%d shard files of %r for a world of %d" % (len(entries), name, first["world_size"]))
    pieces = sorted((fields["row_start"], fields["row_stop"], path) for fields, path in entries)
    expected = 0
    for start, stop, path in pieces:
        if start != expected or stop < start:
            raise ValueError("%r holds rows [%d, %d), expected rows from %d" % (path, start, stop, expected))
        expected = stop
    if expected != first["num_embeddings"]:
        raise ValueError("the shards of %r cover rows [0, %d) of %d" % (name, expected, first["num_embeddings"]))
    return first["num_embeddings"], first["embedding_dim"], pieces


def load_shards(module, directory, name="weight", map_own_file=False):
    """Copies the rows ``module`` owns from the checkpoint in ``directory`` (saved by any number
    of ranks) into its shard; returns ``module``.

    ``map_own_file=True``: when this rank's rows are exactly one saved file's rows, the shard
    becomes a writable memory map of that file instead of a copy: optimizer steps then write to
    the file (``module.mapped_table.flush()`` pushes them to disk)."""
    rows, dim, pieces = read_checkpoint(directory, name)
    if (rows, dim) != (module.num_embeddings, module.embedding_dim):
        raise ValueError("the checkpoint holds a (%d, %d) table, the module (%d, %d)"
                         % (rows, dim, module.num_embeddings, module.embedding_dim))
    start, stop = module.row_start, module.row_stop
    if map_own_file:
        for piece_start, piece_stop, path in pieces:
            if (piece_start, piece_stop) == (start, stop) and stop > start:
                table = _tables.load(path, mmap=True, writable=True)
                requires_grad = module.weight.requires_grad
                module.mapped_table = table
                module.weight = Parameter(torch.from_numpy(table), requires_grad=requires_grad)
                return module
    shard = module.weight.detach()
    for piece_start, piece_stop, path in pieces:
        low, high = max(start, piece_start), min(stop, piece_stop)
        if low >= high:
            continue
        table = _tables.load(path, mmap=True)
        rows_read = torch.from_numpy(table[low - piece_start:high - piece_start].copy())
        if rows_read.dtype != shard.dtype:
            raise ValueError("%r holds %s rows, the module %s" % (path, rows_read.dtype, shard.dtype))
        with torch.no_grad():
            shard[low - start:high - start] = rows_read
    return module


def _read_metadata(path):
    def describe(problem):
        return ValueError("%r: %s" % (path, problem))

    with open(path, "rb") as file:
        size = os.fstat(file.fileno()).st_size
        return _safetensors.read_header(file, size, None, describe)[3] or {}
