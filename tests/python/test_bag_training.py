"""End to end: a bag-of-words classifier (EmbeddingBag mode='mean' -> Linear -> cross-entropy,
torch.optim.SGD lr 0.5, 120 steps; 1-D inputs with offsets, bags of 0–7 words, some empty)
trained with torch.nn.EmbeddingBag and with embedding_native.torch.EmbeddingBag from identical
weights and batches, sparse and dense.

Both bit-identical: the forward is torch's bit for bit; the sparse gradient has torch's exact
layout and values, and the dense one adds duplicate rows in the order of torch's unstable sort
(reproduced step for step: test_bag_backward_order.py), so losses and weights are equal.
"""

import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

import embedding_native.torch as et

V, D, CLASSES, BATCH, STEPS = 60, 16, 4, 8, 120


class BagOfWords(nn.Module):
    def __init__(self, bag_cls, **kwargs):
        super().__init__()
        self.bag = bag_cls(V, D, mode="mean", **kwargs)
        self.fc = nn.Linear(D, CLASSES)

    def forward(self, x, offsets):
        return self.fc(self.bag(x, offsets))


def batches(seed=1):
    g = torch.Generator().manual_seed(seed)
    result = []
    for _ in range(STEPS):
        lengths = torch.randint(0, 8, (BATCH,), generator=g)
        x = torch.randint(0, V, (int(lengths.sum()),), generator=g)
        offsets = torch.cat([torch.zeros(1, dtype=torch.long), lengths.cumsum(0)[:-1]])
        # learnable labels: each word has a class (word % CLASSES); a bag's label is its first
        # word's class (0 for an empty bag)
        y = torch.where(lengths > 0, x[offsets.clamp(max=max(len(x) - 1, 0))] % CLASSES if len(x) else lengths * 0,
                        torch.zeros_like(lengths))
        result.append((x, offsets, y))
    return result


def train(model, data):
    optimizer = torch.optim.SGD(model.parameters(), lr=0.5)
    losses = []
    for x, offsets, y in data:
        optimizer.zero_grad()
        loss = F.cross_entropy(model(x, offsets), y)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return np.array(losses), {k: v.detach().clone() for k, v in model.state_dict().items()}


@pytest.mark.parametrize("padding_idx", [None, 0], ids=["nopad", "pad0"])
@pytest.mark.parametrize("sparse", [False, True], ids=["dense", "sparse"])
def test_bag_of_words_training_parity(sparse, padding_idx):
    torch.manual_seed(0)
    reference = BagOfWords(nn.EmbeddingBag, sparse=sparse, padding_idx=padding_idx)
    ours = BagOfWords(et.EmbeddingBag, sparse=sparse, padding_idx=padding_idx)
    ours.load_state_dict(reference.state_dict())
    data = batches()
    expected_losses, expected_state = train(reference, data)
    losses, state = train(ours, data)
    assert expected_losses[-20:].mean() < expected_losses[:20].mean()   # it learns
    assert np.array_equal(losses, expected_losses)
    for key in expected_state:
        assert torch.equal(state[key], expected_state[key]), key
    if padding_idx is not None:
        assert not state["bag.weight"][padding_idx].any()
