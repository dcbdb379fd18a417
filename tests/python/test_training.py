"""End to end: the same small model trained with torch.nn.Embedding and with
embedding_native.torch.Embedding, from identical initial weights and batches.

Model: embedding(50, 16) -> mean(dim=1) -> Linear(16, 4) -> cross-entropy, torch.optim.SGD
(lr 0.5), 120 steps of batches (8, 6), for sparse False/True x padding_idx None/0 x max_norm
None/1.5.

Tolerances: without max_norm the gradients are bit-identical (dense: same accumulation order;
sparse: same uncoalesced layout fed to the same optimizer), so losses and final weights must be
bit-identical. With max_norm (p = 2) each rescaled element may differ from torch's by a few ulps
each time its row is rescaled (torch's norm is float32, ours double: at most 4 ulp measured,
docs/exactness.md) and those differences propagate through training: losses within rtol 1e-5
and weights within atol 1e-5 (measured after 120 steps, every tier: losses 1.8e-7 relative,
weights 2.4e-7 absolute).
"""

import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

import embedding_native.torch as et

V, D, CLASSES, BATCH, LENGTH, STEPS = 50, 16, 4, 8, 6, 120
MAX_NORM_RTOL, MAX_NORM_ATOL = 1e-5, 1e-5


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
    if max_norm is None:
        assert np.array_equal(losses, expected_losses)
        for key in expected_state:
            assert torch.equal(state[key], expected_state[key]), key
    else:
        np.testing.assert_allclose(losses, expected_losses, rtol=MAX_NORM_RTOL, atol=0)
        for key in expected_state:
            np.testing.assert_allclose(state[key].numpy(), expected_state[key].numpy(), rtol=0, atol=MAX_NORM_ATOL)
    if padding_idx is not None:
        assert torch.equal(state["embedding.weight"][padding_idx], torch.zeros(D))  # never updated
