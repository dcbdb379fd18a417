"""embedding_native.torch.distributed against the single-process drop-ins, bit for bit.

One spawn of 2 ranks and one of 3 (gloo, 127.0.0.1, one torch thread each) run every scenario of
distributed_scenarios.py sharded — Embedding and EmbeddingBag (sum, mean, max), dense gradients
with torch.optim.SGD and sparse ones with the fused sparse SGD step, padding_idx, max_norm,
scale_grad_by_freq, per_sample_weights (with their gradient), indices that cross shards and
repeat across ranks — for 20 steps, plus checkpoints (saved by 2 ranks, re-sharded to 3),
from_pretrained from numpy and from a table file, a collection with a table-wise and a row-wise
table, and a bad index on one rank. Each rank saves what it saw; the tests below run the
single-process drop-in on the concatenated batches here and compare with torch.equal: every
step's outputs, the first step's gradients (sparse ones entry by entry, in order), the
per_sample_weights gradients and the final tables.
"""

import os
import socket

import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

import distributed_scenarios as S
import embedding_native
import embedding_native.torch as et
from embedding_native import tables

# The sharded modules are Python over the library's operations, and the rest of the suite checks
# those at every tier: the process groups are spawned once, at the CPU's best tier (the one `make
# test` runs last and users get), not once per tier (about 80 s of `make test`).
_INFO = embedding_native.build_info()
if _INFO["tier"] != _INFO["cpu_tier"]:
    pytest.skip("sharding runs at the CPU's best tier (%s) only; this run is %s" % (_INFO["cpu_tier"], _INFO["tier"]),
                allow_module_level=True)

WORLD_SIZES = (2, 3)
SINGLE = {"embedding": et.Embedding, "bag": et.EmbeddingBag}


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _rank_main(rank, world_size, port, directory):
    os.environ["MASTER_ADDR"] = "127.0.0.1"
    os.environ["MASTER_PORT"] = str(port)
    torch.set_num_threads(1)
    import embedding_native.functional as ef
    ef.set_num_threads(1)
    from embedding_native.torch import distributed as sd
    dist.init_process_group("gloo", rank=rank, world_size=world_size)
    sharded = {"embedding": sd.ShardedEmbedding, "bag": sd.ShardedEmbeddingBag}
    results = {}
    for name, (kind, kwargs, form, psw, _) in S.SCENARIOS.items():
        module = S.build(name, sharded, S.initial_table(name))
        include_last = kwargs.get("include_last_offset", False)
        record = S.train(name, module, lambda step: S.batch(name, step, rank, form, psw, include_last))
        record["full"] = module.full_weight()
        record["rows"] = (module.row_start, module.row_stop)
        results[name] = record
        if name == S.CHECKPOINTED and world_size == 2:
            sd.save_shard(module, os.path.join(directory, "checkpoint"))
            dist.barrier()  # every shard written before any rank reads the checkpoint
            mapped = sd.ShardedEmbeddingBag(S.V, S.D, mode="sum")
            sd.load_shards(mapped, os.path.join(directory, "checkpoint"), map_own_file=True)
            results["mapped_own_file"] = (isinstance(mapped.mapped_table, np.memmap),
                                          torch.equal(mapped.weight.detach(), module.weight.detach()))
    if world_size == 3:
        resharded = sd.ShardedEmbeddingBag(S.V, S.D, mode="sum", padding_idx=4)
        sd.load_shards(resharded, os.path.join(directory, "..", "world2", "checkpoint"))
        results["resharded"] = (resharded.weight.detach().clone(), resharded.full_weight())

    table = S.initial_table(S.CHECKPOINTED)
    from_numpy = sd.ShardedEmbedding.from_pretrained(table.numpy())
    from_file = sd.ShardedEmbeddingBag.from_pretrained(os.path.join(directory, "..", "table.npy"))
    results["from_pretrained"] = (from_numpy.weight.detach().clone(), from_file.weight.detach().clone(),
                                  from_numpy.weight.requires_grad)

    # A bad index on the last rank only: it raises torch's IndexError, the others PeerFailure,
    # and the next call works on every rank (nobody is left waiting in a collective).
    lookup = sd.ShardedEmbedding.from_pretrained(table, freeze=False)
    bad = torch.tensor([0, S.V if rank == world_size - 1 else 1])
    try:
        lookup(bad)
        results["bad_index"] = None
    except Exception as exc:
        results["bad_index"] = type(exc).__name__
    results["after_bad_index"] = lookup(torch.tensor([rank, S.V - 1])).detach()
    # An empty batch on rank 0 (nothing to fetch, nothing to send back).
    x = torch.tensor([], dtype=torch.int64) if rank == 0 else torch.tensor([rank, 2, S.V - 1])
    lookup.weight.grad = None
    output = lookup(x)
    output.sum().backward()
    results["empty_batch"] = (output.detach(), _gather_grad(lookup))
    bags = sd.ShardedEmbeddingBag.from_pretrained(table, mode="sum")
    try:
        bags(torch.tensor([1, -1 if rank == 0 else 2]), torch.tensor([0]))
        results["bad_bag_index"] = None
    except Exception as exc:
        results["bad_bag_index"] = (type(exc).__name__, isinstance(exc, RuntimeError), str(exc))
    refused = []
    for dtype in (torch.float16, torch.bfloat16):
        try:
            sd.ShardedEmbeddingBag.from_pretrained(table.to(dtype))
            refused.append(None)
        except NotImplementedError as exc:
            refused.append(str(exc))
    results["refused_types"] = refused

    collection = sd.ShardedEmbeddingCollection({
        "users": dict(weight=table, mode="sum", sparse=True, freeze=False),
        "words": dict(weight=table * 2, kind="embedding", sharding="row_wise", freeze=False),
    })
    x, offsets, weights, _ = S.batch(S.CHECKPOINTED, 0, rank, "1d", "fixed")
    outputs = collection({"users": (x, offsets, weights), "words": x})
    (outputs["users"].sum() + outputs["words"].sum()).backward()
    users, words = collection.tables["users"], collection.tables["words"]
    results["collection"] = {
        "outputs": {k: v.detach() for k, v in outputs.items()},
        "users_rows": (users.row_start, users.row_stop),
        "users_grad": users.weight.grad.coalesce().to_dense() if users.weight.grad is not None else None,
        "words_grad": _gather_grad(words),
    }
    torch.save(results, os.path.join(directory, "rank%d.pt" % rank))
    dist.destroy_process_group()


def _gather_grad(module):
    return module.group.gather_rows(module.weight.grad, module.partition)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """{world_size: [each rank's results]}, world 2 first (world 3 re-shards its checkpoint)."""
    base = tmp_path_factory.mktemp("distributed")
    tables.save(os.path.join(base, "table.npy"), S.initial_table(S.CHECKPOINTED))
    results = {}
    for world_size in WORLD_SIZES:
        directory = os.path.join(base, "world%d" % world_size)
        os.makedirs(directory)
        mp.start_processes(_rank_main, args=(world_size, _free_port(), directory), nprocs=world_size,
                           start_method="spawn")
        results[world_size] = [torch.load(os.path.join(directory, "rank%d.pt" % r)) for r in range(world_size)]
    return results


@pytest.fixture(scope="module")
def single():
    """The single-process drop-in's record of every scenario, per world size."""
    return {(name, w): S.train(name, S.build(name, SINGLE, S.initial_table(name)),
                               lambda step, name=name, w=w: S.concatenated(name, step, w))
            for w in WORLD_SIZES for name in S.SCENARIOS}


def _split(tensor, ranks, key):
    sizes = [r[key] for r in ranks]
    return list(torch.split(tensor, sizes))


@pytest.mark.parametrize("world_size", WORLD_SIZES)
@pytest.mark.parametrize("name", sorted(S.SCENARIOS))
def test_outputs_every_step(runs, single, name, world_size):
    expected = single[name, world_size]["outputs"]
    for step in range(S.STEPS):
        parts = [r[name]["outputs"][step] for r in runs[world_size]]
        assert torch.equal(torch.cat(parts), expected[step]), "step %d" % step


@pytest.mark.parametrize("world_size", WORLD_SIZES)
@pytest.mark.parametrize("name", sorted(S.SCENARIOS))
def test_first_gradient(runs, single, name, world_size):
    expected = single[name, world_size]["grad"]
    for rank in runs[world_size]:
        start, stop = rank[name]["rows"]
        grad = rank[name]["grad"]
        if isinstance(expected, tuple):
            rows, values = expected[0][0], expected[1]
            mine = (rows >= start) & (rows < stop)
            assert torch.equal(grad[0][0], rows[mine] - start)
            assert torch.equal(grad[1], values[mine])
        else:
            assert torch.equal(grad, expected[start:stop])


@pytest.mark.parametrize("world_size", WORLD_SIZES)
def test_max_norm_training_equals_torch(runs, world_size):
    """max_norm (renormalised by the owners) against torch.nn.Embedding itself: every step's
    outputs and the trained table; and the first bag forward with max_norm against
    torch.nn.EmbeddingBag (later steps differ: torch's bag scale_grad_by_freq divides by another
    row's count, docs/divergences.md)."""
    torch_modules = {"embedding": torch.nn.Embedding, "bag": torch.nn.EmbeddingBag}
    name = "embedding_dense_max_norm_freq"
    expected = S.train(name, S.build(name, torch_modules, S.initial_table(name)),
                       lambda step: S.concatenated(name, step, world_size))
    for step in range(S.STEPS):
        assert torch.equal(torch.cat([r[name]["outputs"][step] for r in runs[world_size]]), expected["outputs"][step])
    assert torch.equal(runs[world_size][0][name]["full"], expected["weight"])
    name = "bag_mean_dense_freq_max_norm"
    x, offsets, weights, _ = S.concatenated(name, 0, world_size)
    bag = S.build(name, torch_modules, S.initial_table(name))
    assert torch.equal(torch.cat([r[name]["outputs"][0] for r in runs[world_size]]), bag(x, offsets, weights))


@pytest.mark.parametrize("world_size", WORLD_SIZES)
def test_per_sample_weights_gradient(runs, single, world_size):
    name = S.CHECKPOINTED
    parts = [r[name]["psw_grad"] for r in runs[world_size]]
    assert torch.equal(torch.cat(parts), single[name, world_size]["psw_grad"])


@pytest.mark.parametrize("world_size", WORLD_SIZES)
@pytest.mark.parametrize("name", sorted(S.SCENARIOS))
def test_trained_tables(runs, single, name, world_size):
    expected = single[name, world_size]["weight"]
    for rank in runs[world_size]:
        start, stop = rank[name]["rows"]
        assert torch.equal(rank[name]["weight"], expected[start:stop])
        assert torch.equal(rank[name]["full"], expected)


def test_row_wise_split_is_ceil_rows_per_rank(runs):
    name = S.CHECKPOINTED
    assert [r[name]["rows"] for r in runs[2]] == [(0, 12), (12, 23)]
    assert [r[name]["rows"] for r in runs[3]] == [(0, 8), (8, 16), (16, 23)]


def test_checkpoint_reshards_two_ranks_to_three(runs, single):
    trained = single[S.CHECKPOINTED, 2]["weight"]
    for rank, result in enumerate(runs[3]):
        shard, full = result["resharded"]
        assert torch.equal(full, trained)
        assert torch.equal(shard, trained[8 * rank:min(8 * (rank + 1), S.V)])
    assert all(r["mapped_own_file"] == (True, True) for r in runs[2])


@pytest.mark.parametrize("world_size", WORLD_SIZES)
def test_from_pretrained_copies_only_its_rows(runs, world_size):
    table = S.initial_table(S.CHECKPOINTED)
    per_rank = -(-S.V // world_size)
    for rank, result in enumerate(runs[world_size]):
        from_numpy, from_file, requires_grad = result["from_pretrained"]
        rows = table[per_rank * rank:per_rank * (rank + 1)]
        assert torch.equal(from_numpy, rows) and torch.equal(from_file, rows) and not requires_grad


@pytest.mark.parametrize("world_size", WORLD_SIZES)
def test_bad_index_raises_on_every_rank_and_nothing_hangs(runs, world_size):
    table = S.initial_table(S.CHECKPOINTED)
    errors = [r["bad_index"] for r in runs[world_size]]
    assert errors == ["PeerFailure"] * (world_size - 1) + ["EmbeddingIndexError"]
    for rank, result in enumerate(runs[world_size]):
        assert torch.equal(result["after_bad_index"], table[[rank, S.V - 1]])


@pytest.mark.parametrize("world_size", WORLD_SIZES)
def test_a_rank_with_an_empty_batch(runs, world_size):
    table = S.initial_table(S.CHECKPOINTED)
    single = et.Embedding.from_pretrained(table.clone(), freeze=False)
    x = torch.tensor([i for rank in range(1, world_size) for i in (rank, 2, S.V - 1)])
    output = single(x)
    output.sum().backward()
    results = [r["empty_batch"] for r in runs[world_size]]
    assert results[0][0].shape == (0, S.D)
    assert torch.equal(torch.cat([r[0] for r in results]), output)
    assert all(torch.equal(r[1], single.weight.grad) for r in results)


@pytest.mark.parametrize("world_size", WORLD_SIZES)
def test_bad_bag_index_is_torchs_runtime_error(runs, world_size):
    errors = [r["bad_bag_index"] for r in runs[world_size]]
    name, is_runtime_error, text = errors[0]
    assert name == "EmbeddingRuntimeError" and is_runtime_error
    assert text.startswith("embedding_bag: Expected idx >= 0 && idx < num_embeddings but found idx to be -1")
    assert all(e[0] == "PeerFailure" and e[1] for e in errors[1:])


@pytest.mark.parametrize("world_size", WORLD_SIZES)
def test_16_bit_tables_are_refused(runs, world_size):
    for result in runs[world_size]:
        assert all(text is not None and "float32, float64 only" in text for text in result["refused_types"])


@pytest.mark.parametrize("world_size", WORLD_SIZES)
def test_collection(runs, world_size):
    table = S.initial_table(S.CHECKPOINTED)
    users = et.EmbeddingBag.from_pretrained(table.clone(), freeze=False, mode="sum", sparse=True)
    words = et.Embedding.from_pretrained(table * 2, freeze=False)
    x, offsets, weights, _ = S.concatenated(S.CHECKPOINTED, 0, world_size)
    x1d = torch.cat([S.batch(S.CHECKPOINTED, 0, r, "1d", "fixed")[0] for r in range(world_size)])
    assert torch.equal(x, x1d)
    out_users, out_words = users(x, offsets, weights), words(x)
    (out_users.sum() + out_words.sum()).backward()
    results = [r["collection"] for r in runs[world_size]]
    assert torch.equal(torch.cat([r["outputs"]["users"] for r in results]), out_users)
    assert torch.equal(torch.cat([r["outputs"]["words"] for r in results]), out_words)
    # "users" is table-wise: all of it on the least loaded rank, the first (the others hold none).
    assert [r["users_rows"] for r in results] == [(0, S.V)] + [(S.V, S.V)] * (world_size - 1)
    assert torch.equal(results[0]["users_grad"], users.weight.grad.coalesce().to_dense())
    for r in results:
        assert torch.equal(r["words_grad"], words.weight.grad)


# --- without processes: the split rule and the checkpoint checks ---------------------------------


def test_row_partition_rule():
    from embedding_native.torch.distributed import RowPartition
    assert RowPartition.row_wise(10, 4).starts == (0, 3, 6, 9, 10)
    assert RowPartition.row_wise(5, 4).starts == (0, 2, 4, 5, 5)
    assert RowPartition.on_rank(7, 3, 1).starts == (0, 0, 7, 7)
    rows = torch.arange(5)
    assert RowPartition.row_wise(5, 4).owners(rows).tolist() == [0, 0, 1, 1, 2]
    assert RowPartition.on_rank(5, 3, 1).owners(rows).tolist() == [1] * 5
    with pytest.raises(ValueError):
        RowPartition([0, 3, 2])


def _save_piece(directory, start, stop, rank, world_size, rows=6, **changes):
    metadata = {"format": "embedding_native.row-shard/1", "num_embeddings": rows, "embedding_dim": 2,
                "row_start": start, "row_stop": stop, "rank": rank, "world_size": world_size}
    metadata.update(changes)
    tables.save(os.path.join(directory, "weight.rank-%05d-of-%05d.safetensors" % (rank, world_size)),
                torch.zeros(stop - start, 2), metadata={k: str(v) for k, v in metadata.items()})


def test_read_checkpoint_refuses_incomplete_or_mixed_shards(tmp_path):
    from embedding_native.torch.distributed import read_checkpoint
    good, gap, mixed = (tmp_path / n for n in ("good", "gap", "mixed"))
    for d in (good, gap, mixed):
        d.mkdir()
    _save_piece(good, 0, 3, 0, 2)
    _save_piece(good, 3, 6, 1, 2)
    assert read_checkpoint(good)[:2] == (6, 2)
    _save_piece(gap, 0, 2, 0, 2)
    _save_piece(gap, 3, 6, 1, 2)
    _save_piece(mixed, 0, 3, 0, 2)
    _save_piece(mixed, 3, 6, 1, 2, embedding_dim=3)
    for directory, text in ((gap, "expected rows from 2"), (mixed, "embedding_dim"), (tmp_path, "no shards")):
        with pytest.raises(ValueError, match=text):
            read_checkpoint(directory)
