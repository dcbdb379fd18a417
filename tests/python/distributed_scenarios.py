"""Training scenarios run both sharded (in spawned ranks) and single-process (in the parent) by
test_distributed.py: the same tables, batches, targets and optimizer steps, so every output,
gradient and weight can be compared with torch.equal.

Each rank's batch at each step comes from a generator seeded with (scenario, step, rank); the
single-process module gets the concatenation in rank order (1-D bags: offsets shifted by the
lengths before). The loss is ``(output * target).sum()`` per rank, so each rank's grad_output is
its target exactly, and the single-process grad_output is their concatenation.
"""

import torch

from embedding_native import functional as ef, optim as eo

V, D, STEPS, LR = 23, 6, 20, 0.25
#: A row every batch references several times, so duplicates cross ranks.
HOT_ROW = 11

#: name -> (kind, constructor arguments, input form, per_sample_weights, optimizer)
SCENARIOS = {
    "embedding_sparse_padding": ("embedding", dict(padding_idx=3, sparse=True), "2d", None, "fused"),
    "embedding_dense_max_norm_freq": ("embedding", dict(max_norm=1.5, scale_grad_by_freq=True, padding_idx=7), "2d",
                                      None, "torch"),
    "bag_sum_dense_psw_padding": ("bag", dict(mode="sum", padding_idx=4), "1d", "grad", "torch"),
    "bag_mean_sparse_padding": ("bag", dict(mode="mean", sparse=True, padding_idx=0), "1d", None, "fused"),
    "bag_mean_dense_freq_max_norm": ("bag", dict(mode="mean", scale_grad_by_freq=True, max_norm=2.0), "2d", None,
                                     "torch"),
    "bag_sum_sparse_psw": ("bag", dict(mode="sum", sparse=True, include_last_offset=True), "1d", "fixed", "fused"),
    "bag_max_dense_padding": ("bag", dict(mode="max", padding_idx=2), "1d", None, "torch"),
    "bag_sum_dense_psw_float64": ("bag", dict(mode="sum", padding_idx=9), "1d", "fixed", "torch"),
    # torch.optim.SGD adds an uncoalesced sparse gradient entry by entry: the same bits on a shard.
    "embedding_sparse_torch_sgd": ("embedding", dict(sparse=True), "2d", None, "torch"),
}
#: Scenarios whose indices (and offsets) are int32; the others' are int64.
INT32_SCENARIOS = ("bag_max_dense_padding", "embedding_sparse_padding")
#: The scenario whose trained table is saved by 2 ranks and re-sharded to 3.
CHECKPOINTED = "bag_sum_dense_psw_padding"


def dtype_of(name):
    return torch.float64 if name.endswith("_float64") else torch.float32


def initial_table(name):
    g = torch.Generator().manual_seed(1000 + sorted(SCENARIOS).index(name))
    return torch.randn(V, D, generator=g).to(dtype_of(name))


def batch(name, step, rank, form, psw, include_last_offset=False):
    """(input, offsets or None, per_sample_weights or None, target) of one rank at one step."""
    seed = 7919 * (1 + sorted(SCENARIOS).index(name)) + 131 * step + rank
    g = torch.Generator().manual_seed(seed)
    if form == "2d":
        rows = 2 + rank + step % 3
        x = torch.randint(0, V, (rows, 5), generator=g)
        x[0, 0] = HOT_ROW
        offsets = None
        bags = rows
    else:
        bags = 4 + (step + rank) % 3
        lengths = torch.randint(0, 7, (bags,), generator=g)
        lengths[0] = max(int(lengths[0]), 2)
        x = torch.randint(0, V, (int(lengths.sum()),), generator=g)
        x[:2] = HOT_ROW
        offsets = torch.cat([torch.zeros(1, dtype=torch.long), lengths.cumsum(0)[:-1]])
        if include_last_offset:
            offsets = torch.cat([offsets, torch.tensor([x.numel()])])
    if name in INT32_SCENARIOS:
        x = x.to(torch.int32)
        offsets = None if offsets is None else offsets.to(torch.int32)
    weights = None if psw is None else (torch.rand(x.shape, generator=g) + 0.5).to(dtype_of(name))
    kind = SCENARIOS[name][0]
    shape = tuple(x.shape) + (D,) if kind == "embedding" else (bags, D)
    target = torch.randn(shape, generator=g).to(dtype_of(name))
    return x, offsets, weights, target


def concatenated(name, step, world_size):
    """The single-process batch: every rank's, concatenated in rank order."""
    kind, kwargs, form, psw, _ = SCENARIOS[name]
    include_last = kwargs.get("include_last_offset", False)
    parts = [batch(name, step, rank, form, psw, include_last) for rank in range(world_size)]
    x = torch.cat([p[0] for p in parts])
    offsets = None
    if form == "1d":
        shifted, length = [], 0
        for rank, (xi, oi, _, _) in enumerate(parts):
            oi = oi[:-1] if include_last else oi
            shifted.append(oi.to(torch.int64) + length)
            length += xi.numel()
        if include_last:
            shifted.append(torch.tensor([length]))
        offsets = torch.cat(shifted).to(x.dtype)
    weights = None if psw is None else torch.cat([p[2] for p in parts])
    target = torch.cat([p[3] for p in parts])
    return x, offsets, weights, target


def build(name, module_classes, table):
    kind, kwargs, _, _, _ = SCENARIOS[name]
    return module_classes[kind].from_pretrained(table.clone(), freeze=False, **kwargs)


def train(name, module, batches):
    """Runs STEPS steps of ``module`` on ``batches(step)``; returns a record of outputs (every
    step), the first step's gradients, and the final weight."""
    kind, kwargs, form, psw, optimizer = SCENARIOS[name]
    weight = module.weight
    sgd = torch.optim.SGD([weight], lr=LR) if optimizer == "torch" else None
    record = {"outputs": [], "grad": None, "psw_grad": None}
    for step in range(STEPS):
        x, offsets, weights, target = batches(step)
        if weights is not None and psw == "grad":
            weights.requires_grad_(True)
        output = module(x) if kind == "embedding" else module(x, offsets, weights)
        (output * target).sum().backward()
        record["outputs"].append(output.detach().clone())
        grad = weight.grad
        if step == 0:
            record["grad"] = (grad._indices().clone(), grad._values().clone()) if grad.is_sparse else grad.clone()
            if weights is not None and psw == "grad":
                record["psw_grad"] = weights.grad.clone()
        if sgd is not None:
            sgd.step()
            sgd.zero_grad()
        else:
            rows, values = ef.sparse_coalesce(grad._indices()[0], grad._values(), weight.shape[0])
            eo.sgd_step(weight.data, rows, values, LR)
            weight.grad = None
    record["weight"] = weight.detach().clone()
    return record
