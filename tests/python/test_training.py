"""End to end: the same small model trained with torch.nn.Embedding and with
embedding_native.torch.Embedding, from identical initial weights and batches.

Model: embedding(50, 16) -> mean(dim=1) -> Linear(16, 4) -> cross-entropy, torch.optim.SGD
(lr 0.5), 120 steps of batches (8, 6), for sparse False/True x padding_idx None/0 x max_norm
None/1.5.

No tolerances: the gradients are bit-identical (dense: same accumulation order; sparse: same
uncoalesced layout fed to the same optimizer) and max_norm renormalises with torch's own float32
norm (docs/exactness.md#max_norm), so losses and final weights must be bit-identical.
"""

import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

import embedding_native.torch as et

V, D, CLASSES, BATCH, LENGTH, STEPS = 50, 16, 4, 8, 6, 120


class BagModel(nn.Module):
    def __init__(self, embedding_cls, **kwargs):
        super().__init__()
        self.embedding = embedding_cls(V, D, **kwargs)
        self.fc = nn.Linear(D, CLASSES)

    def forward(self, x):
        return self.fc(self.embedding(x).mean(dim=1))


def train(model, batches):
    optimizer = torch.optim.SGD(model.parameters(), lr=0.5)
    losses = []
    for x, y in batches:
        optimizer.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return np.array(losses), {k: v.detach().clone() for k, v in model.state_dict().items()}


@pytest.mark.parametrize("sparse", [False, True], ids=["dense", "sparse"])
@pytest.mark.parametrize("padding_idx", [None, 0], ids=["nopad", "pad0"])
@pytest.mark.parametrize("max_norm", [None, 1.5], ids=["nonorm", "maxnorm"])
def test_training_parity(sparse, padding_idx, max_norm):
    kwargs = dict(sparse=sparse, padding_idx=padding_idx, max_norm=max_norm)
    torch.manual_seed(0)
    reference = BagModel(nn.Embedding, **kwargs)
    ours = BagModel(et.Embedding, **kwargs)
    ours.load_state_dict(reference.state_dict())
    generator = torch.Generator().manual_seed(1)
    batches = [(torch.randint(0, V, (BATCH, LENGTH), generator=generator),
                torch.randint(0, CLASSES, (BATCH,), generator=generator)) for _ in range(STEPS)]
    for x, _ in batches[::3]:
        x[:, -1] = 0  # some padding positions (row 0 is an ordinary row when padding_idx is None)

    expected_losses, expected_state = train(reference, batches)
    losses, state = train(ours, batches)

    assert expected_losses[-10:].mean() < expected_losses[:10].mean()  # it does learn
    assert np.array_equal(losses, expected_losses)
    for key in expected_state:
        assert torch.equal(state[key], expected_state[key]), key
    if padding_idx is not None:
        assert torch.equal(state["embedding.weight"][padding_idx], torch.zeros(D))  # never updated
