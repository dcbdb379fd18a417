"""The dense sum/mean EmbeddingBag backward adds each row's contributions in torch 1.13's order.

torch (``_embedding_bag_dense_backward_cpu_sum_mean``, aten/src/ATen/native/EmbeddingBag.cpp) sorts
the whole index tensor with ``indices.sort()`` (CPU, not stable: libstdc++'s ``std::sort`` over
(value, position) pairs compared by value) and applies each row's contributions in sorted order
with ``axpy(fl(s))``. We reproduce that sort step for step, so the gradient is torch's bit for bit.

* ``test_sort_model_*``: a plain Python model of the sort (below) gives ``torch.sort(x)[1]`` exactly,
  for every length 0..300 and large lengths, all patterns, int32 and int64, and inputs built (by
  McIlroy's adversary against the model) to exhaust the depth limit and reach the heapsort. The
  model only generates those adversarial inputs; every expected gradient comes from torch itself.
* ``test_dense_gradient_*``: ``torch.equal`` of our gradient and torch's over sizes, index patterns,
  sum / mean, per_sample_weights, padding_idx, include_last_offset, 2-D input, int32 / int64,
  float32 / float64 / float16, one and two threads. scale_grad_by_freq is compared where every
  distinct index has the same count (torch divides by another row's count: docs/divergences.md).
* ``test_position_order_would_differ``: the same cases summed in position order differ from torch,
  so these tests fail for any order but torch's.
* ``test_training_*``: a bag-of-words classifier, 100 steps of SGD with dense gradients: bit-identical
  losses and weights against torch.nn.EmbeddingBag.
"""

import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

import embedding_native as en
import embedding_native.torch as et


# --- a model of torch 1.13's CPU sort (libstdc++ std::sort), used to build adversarial inputs -------------

def model_sort(items, less):
    """Sorts ``items`` in place exactly as libstdc++'s std::sort does with the comparator ``less``."""
    a = items
    heap_sorts = [0]

    def swap(i, j):
        a[i], a[j] = a[j], a[i]

    def adjust_heap(first, hole, length, value):
        top = child = hole
        while child < (length - 1) // 2:
            child = 2 * (child + 1)
            if less(a[first + child], a[first + child - 1]):
                child -= 1
            a[first + hole] = a[first + child]
            hole = child
        if length % 2 == 0 and child == (length - 2) // 2:
            child = 2 * (child + 1)
            a[first + hole] = a[first + child - 1]
            hole = child - 1
        parent = (hole - 1) // 2
        while hole > top and less(a[first + parent], value):
            a[first + hole] = a[first + parent]
            hole = parent
            parent = (hole - 1) // 2
        a[first + hole] = value

    def heap_sort(first, last):
        heap_sorts[0] += 1
        length = last - first
        for parent in range((length - 2) // 2, -1, -1):
            adjust_heap(first, parent, length, a[first + parent])
        while last - first > 1:
            last -= 1
            value = a[last]
            a[last] = a[first]
            adjust_heap(first, 0, last - first, value)

    def median_to_first(result, x, y, z):
        if less(a[x], a[y]):
            swap(result, y if less(a[y], a[z]) else z if less(a[x], a[z]) else x)
        else:
            swap(result, x if less(a[x], a[z]) else z if less(a[y], a[z]) else y)

    def partition(first, last, pivot):
        while True:
            while less(a[first], a[pivot]):
                first += 1
            last -= 1
            while less(a[pivot], a[last]):
                last -= 1
            if first >= last:
                return first
            swap(first, last)
            first += 1

    def introsort(first, last, depth):
        while last - first > 16:
            if depth == 0:
                heap_sort(first, last)
                return
            depth -= 1
            mid = first + (last - first) // 2
            median_to_first(first, first + 1, mid, last - 1)
            cut = partition(first + 1, last, first)
            introsort(cut, last, depth)
            last = cut

    def linear_insert(i):
        value = a[i]
        while less(value, a[i - 1]):
            a[i] = a[i - 1]
            i -= 1
        a[i] = value

    def insertion(first, last):
        for i in range(first + 1, last):
            if less(a[i], a[first]):
                value = a[i]
                a[first + 1:i + 1] = a[first:i]
                a[first] = value
            else:
                linear_insert(i)

    n = len(a)
    if n:
        introsort(0, n, 2 * (n.bit_length() - 1))
        if n > 16:
            insertion(0, 16)
            for i in range(16, n):
                linear_insert(i)
        else:
            insertion(0, n)
    return heap_sorts[0]


def model_order(values):
    pairs = [(v, i) for i, v in enumerate(values)]
    model_sort(pairs, lambda x, y: x[0] < y[0])
    return [i for _, i in pairs]


def adversary(n):
    """McIlroy's "killer adversary for quicksort" against the model: values on which the introsort
    degrades until it reaches its depth limit and falls back to the heapsort."""
    gas = n
    value = [gas] * n
    state = {"solid": 0, "candidate": 0}

    def freeze(x):
        value[x] = state["solid"]
        state["solid"] += 1

    def less(x, y):
        if value[x] == gas and value[y] == gas:
            freeze(x if x == state["candidate"] else y)
        if value[x] == gas:
            state["candidate"] = x
        elif value[y] == gas:
            state["candidate"] = y
        return value[x] < value[y]

    model_sort(list(range(n)), less)
    for i in range(n):
        if value[i] == gas:
            freeze(i)
    return value


def pattern(name, n, rows, seed):
    rng = np.random.default_rng(seed)
    if name == "random":
        return rng.integers(0, rows, n)
    if name == "few":
        return rng.integers(0, min(3, rows), n)
    if name == "duplicates":
        return rng.integers(0, max(1, min(rows, n // 8)), n)
    if name == "sorted":
        return np.sort(rng.integers(0, min(50, rows), n))
    if name == "reversed":
        return np.sort(rng.integers(0, min(50, rows), n))[::-1].copy()
    if name == "equal":
        return np.full(n, min(7, rows - 1))
    if name == "alternating":
        return np.arange(n) % 2
    if name == "killer":
        return np.array(adversary(n), dtype=np.int64) // 2 % rows
    raise ValueError(name)


PATTERNS = ["random", "few", "duplicates", "sorted", "reversed", "equal", "alternating", "killer"]


# --- the sort ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("index_dtype", [torch.int64, torch.int32])
def test_sort_model_is_torch_sort_for_every_length_up_to_300(index_dtype):
    for n in range(301):
        for name in PATTERNS[:-1]:
            values = pattern(name, n, max(n, 1), seed=n)
            got = torch.sort(torch.tensor(values, dtype=index_dtype))[1].tolist()
            assert got == model_order(values.tolist()), (name, n)


@pytest.mark.parametrize("n", [1000, 4096, 100000])
def test_sort_model_is_torch_sort_for_large_lengths(n):
    for name in PATTERNS[:-1]:
        values = pattern(name, n, n, seed=3)
        for index_dtype in (torch.int64, torch.int32):
            assert torch.sort(torch.tensor(values, dtype=index_dtype))[1].tolist() == model_order(values.tolist()), name


@pytest.mark.parametrize("n", [100, 1000, 5000])
def test_sort_model_reaches_the_heapsort_as_torch_does(n):
    for halve in (1, 2):
        values = [v // halve for v in adversary(n)]
        pairs = [(v, i) for i, v in enumerate(values)]
        assert model_sort(pairs, lambda x, y: x[0] < y[0]) > 0          # the depth limit was reached
        assert torch.sort(torch.tensor(values))[1].tolist() == [i for _, i in pairs]


# --- the gradient -----------------------------------------------------------------------------------------

def sensitive(shape, dtype, seed):
    """Values whose sums depend on the order: random signs and mantissas over a wide range of exponents."""
    rng = np.random.default_rng(seed)
    spread = 6 if dtype == torch.float16 else 20
    values = rng.standard_normal(shape) * np.exp2(rng.integers(-spread, spread, shape))
    return torch.from_numpy(values).to(dtype)


def case(n, name, rows, bag, seed, index_dtype, two_d=False, include_last_offset=False):
    idx = torch.from_numpy(pattern(name, n, rows, seed).astype(np.int64)).to(index_dtype)
    if two_d:
        return idx.view(-1, bag), None
    starts = list(range(0, n, bag))
    rng = np.random.default_rng(seed + 1)
    if len(starts) > 2:                     # an empty bag and an uneven one
        starts[1] = starts[2] = starts[1] + int(rng.integers(0, bag))
    if include_last_offset:
        starts.append(n)
    return idx, torch.tensor(starts, dtype=index_dtype)


def both_gradients(idx, offsets, rows, dim, dtype, mode, psw=False, padding_idx=None, freq=False, ilo=False, seed=0):
    weight = sensitive((rows, dim), dtype, seed)
    g = None
    results = []
    sample_weights = sensitive(tuple(idx.shape), dtype, seed + 2) if psw else None
    for fn in (F.embedding_bag, et.embedding_bag):
        w = weight.clone().requires_grad_()
        out = fn(idx, w, offsets, mode=mode, per_sample_weights=sample_weights, padding_idx=padding_idx,
                 scale_grad_by_freq=freq, include_last_offset=ilo)
        if g is None:
            g = sensitive(tuple(out.shape), dtype, seed + 1)
        out.backward(g)
        results.append(w.grad)
    return results[0], results[1], g, sample_weights


def position_order_gradient(idx, offsets, rows, g, mode, sample_weights, padding_idx, ilo):
    """The gradient summed in position order with torch's update, fma(g, fl(s), acc) (float32: exact in float64)."""
    flat = idx.reshape(-1).tolist()
    bags = offsets_to_bags(idx, offsets, ilo)
    grad = torch.zeros(rows, g.shape[1], dtype=g.dtype)
    members = {}
    for i, b in enumerate(bags):
        if flat[i] != padding_idx:
            members[b] = members.get(b, 0) + 1
    for i, b in enumerate(bags):
        if flat[i] == padding_idx:
            continue
        s = 1.0 if sample_weights is None else float(sample_weights.reshape(-1)[i])
        if mode == "mean":
            s /= members[b]
        scale = torch.tensor(s, dtype=g.dtype).double()
        grad[flat[i]] = (grad[flat[i]].double() + g[b].double() * scale).to(g.dtype)
    return grad


def offsets_to_bags(idx, offsets, ilo):
    if offsets is None:
        return [i // idx.shape[1] for i in range(idx.numel())]
    starts = offsets.tolist()
    if ilo:
        starts = starts[:-1]
    bags = []
    for b, start in enumerate(starts):
        end = starts[b + 1] if b + 1 < len(starts) else idx.numel()
        bags += [b] * (end - start)
    return bags


SIZES = [17, 40, 100, 257, 1000, 4096]
DTYPES = [torch.float32, torch.float64, torch.float16]


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: str(d)[6:])
@pytest.mark.parametrize("mode", ["sum", "mean"])
@pytest.mark.parametrize("name", PATTERNS)
def test_dense_gradient_is_torch_bit_for_bit(name, mode, dtype):
    for n in SIZES:
        for index_dtype in (torch.int64, torch.int32):
            rows = max(2, n // 3)
            idx, offsets = case(n, name, rows, bag=7, seed=n, index_dtype=index_dtype)
            expected, ours, _, _ = both_gradients(idx, offsets, rows, 5, dtype, mode, seed=n)
            assert torch.equal(ours, expected), (n, index_dtype)


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: str(d)[6:])
@pytest.mark.parametrize("option", ["psw", "padding", "psw-padding", "include_last_offset", "2d", "2d-padding"])
@pytest.mark.parametrize("mode", ["sum", "mean"])
def test_dense_gradient_options_are_torch_bit_for_bit(mode, option, dtype):
    if "psw" in option and mode != "sum":
        pytest.skip("per_sample_weights is sum-only (torch raises)")
    for n in (40, 257, 1000):
        for name in ("random", "few", "killer"):
            rows = max(2, n // 5)
            two_d = option.startswith("2d")
            ilo = option == "include_last_offset"
            idx, offsets = case(n - n % 8 if two_d else n, name, rows, bag=8, seed=n, index_dtype=torch.int64,
                                two_d=two_d, include_last_offset=ilo)
            padding_idx = int(idx.reshape(-1)[3]) if "padding" in option else None
            expected, ours, _, _ = both_gradients(idx, offsets, rows, 6, dtype, mode, psw="psw" in option,
                                                  padding_idx=padding_idx, ilo=ilo, seed=n)
            assert torch.equal(ours, expected), (n, name)


@pytest.mark.parametrize("mode", ["sum", "mean"])
def test_dense_gradient_scale_grad_by_freq_is_torch_where_counts_are_equal(mode):
    # torch divides row k by the count of the value at sorted position k (docs/divergences.md), which is
    # every row's own count exactly when all distinct indices occur equally often.
    for n, distinct in ((40, 5), (256, 8), (1000, 10), (4096, 64)):
        rng = np.random.default_rng(n)
        idx = torch.from_numpy(rng.permutation(np.arange(n) % distinct))
        offsets = torch.arange(0, n, 8)
        for dtype in DTYPES:
            expected, ours, _, _ = both_gradients(idx, offsets, distinct, 5, dtype, mode, freq=True, seed=n)
            assert torch.equal(ours, expected), (n, dtype)


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("mode", ["sum", "mean"])
def test_dense_gradient_large_calls_are_torch_on_every_thread_count(mode, threads):
    previous = en.get_num_threads()
    en.set_num_threads(threads)
    try:
        for n, rows, name in ((100000, 5000, "random"), (65536, 64, "few"), (20000, 20000, "killer")):
            idx, offsets = case(n, name, rows, bag=32, seed=n, index_dtype=torch.int64)
            expected, ours, _, _ = both_gradients(idx, offsets, rows, 24, torch.float32, mode, seed=n)
            assert torch.equal(ours, expected), (n, name)
    finally:
        en.set_num_threads(previous)


@pytest.mark.parametrize("mode", ["sum", "mean"])
def test_position_order_would_differ(mode):
    # The gradient tests above can fail: summed in position order, most of these cases differ from torch.
    differ = 0
    for n in (100, 257, 1000):
        for name in ("random", "few", "killer"):
            rows = max(2, n // 5)
            idx, offsets = case(n, name, rows, bag=8, seed=n, index_dtype=torch.int64)
            expected, ours, g, _ = both_gradients(idx, offsets, rows, 6, torch.float32, mode, seed=n)
            assert torch.equal(ours, expected)
            differ += not torch.equal(position_order_gradient(idx, offsets, rows, g, mode, None, None, False), expected)
    assert differ >= 5, differ


# --- training ---------------------------------------------------------------------------------------------

V, D, CLASSES, BATCH, STEPS = 200, 16, 4, 16, 100


class BagOfWords(nn.Module):
    def __init__(self, bag_cls, mode, **kwargs):
        super().__init__()
        self.bag = bag_cls(V, D, mode=mode, **kwargs)
        self.fc = nn.Linear(D, CLASSES)

    def forward(self, x, offsets, per_sample_weights=None):
        return self.fc(self.bag(x, offsets, per_sample_weights=per_sample_weights))


def batches(weighted, seed=1):
    g = torch.Generator().manual_seed(seed)
    data = []
    for _ in range(STEPS):
        lengths = torch.randint(0, 12, (BATCH,), generator=g)
        # Zipf-like words: frequent words repeat within and across the bags of a batch.
        x = (torch.rand(int(lengths.sum()), generator=g) ** 3 * V).long()
        offsets = torch.cat([torch.zeros(1, dtype=torch.long), lengths.cumsum(0)[:-1]])
        first = x[offsets.clamp(max=max(len(x) - 1, 0))] % CLASSES if len(x) else lengths * 0
        y = torch.where(lengths > 0, first, torch.zeros_like(lengths))
        psw = torch.rand(len(x), generator=g) if weighted else None
        data.append((x, offsets, psw, y))
    return data


def train(model, data):
    optimizer = torch.optim.SGD(model.parameters(), lr=0.5)
    losses = []
    for x, offsets, psw, y in data:
        optimizer.zero_grad()
        loss = F.cross_entropy(model(x, offsets, psw), y)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return losses, {k: v.detach().clone() for k, v in model.state_dict().items()}


@pytest.mark.parametrize("mode,weighted,padding_idx", [("mean", False, None), ("sum", True, None), ("mean", False, 0)],
                         ids=["mean", "sum-psw", "mean-pad0"])
def test_training_dense_is_torch_bit_for_bit(mode, weighted, padding_idx):
    torch.manual_seed(0)
    reference = BagOfWords(nn.EmbeddingBag, mode, padding_idx=padding_idx)
    ours = BagOfWords(et.EmbeddingBag, mode, padding_idx=padding_idx)
    ours.load_state_dict(reference.state_dict())
    data = batches(weighted)
    expected_losses, expected_state = train(reference, data)
    losses, state = train(ours, data)
    assert np.mean(expected_losses[-20:]) < np.mean(expected_losses[:20])   # it learns
    assert losses == expected_losses
    for key in expected_state:
        assert torch.equal(state[key], expected_state[key]), key
