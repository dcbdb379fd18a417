"""End to end with max_norm: models trained with torch's modules and with embedding_native.torch's,
from identical weights and batches, must stay bit-identical (losses and every weight).

- A next-token language model: Embedding(V, D, max_norm) -> Linear -> cross-entropy, Adam, 100 steps,
  norm_type 1, 2 and 3, dense and sparse gradients (sparse: SGD, Adam takes no sparse gradients).
- A bag classifier: EmbeddingBag(V, D, max_norm, sparse=True) -> Linear, SGD, 100 steps, modes sum and
  mean, norm_type 1, 2 and 3.

D = 37 (four blocks of 8 and a tail of 5) and max_norm below most rows' norms, so rows are
rescaled in most steps and any difference in the norm would show in the scale of the next step.
"""

import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

import embedding_native.torch as et

V, D, STEPS = 60, 37, 100


class LanguageModel(nn.Module):
    def __init__(self, embedding_cls, **kwargs):
        super().__init__()
        self.embedding = embedding_cls(V, D, **kwargs)
        self.out = nn.Linear(D, V)

    def forward(self, tokens):
        return self.out(self.embedding(tokens))


class BagModel(nn.Module):
    def __init__(self, bag_cls, **kwargs):
        super().__init__()
        self.bag = bag_cls(V, D, **kwargs)
        self.out = nn.Linear(D, 5)

    def forward(self, indices, offsets):
        return self.out(self.bag(indices, offsets))


def run(model, optimizer, batches, forward):
    losses = []
    for inputs, target in batches:
        optimizer.zero_grad()
        loss = F.cross_entropy(forward(model, inputs), target)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return np.array(losses), {k: v.detach().clone() for k, v in model.state_dict().items()}


def assert_identical(reference, ours):
    (expected_losses, expected_state), (losses, state) = reference, ours
    assert expected_losses[-10:].mean() < expected_losses[:10].mean()  # it does learn
    assert np.array_equal(losses, expected_losses), np.flatnonzero(losses != expected_losses)[:5]
    for key in expected_state:
        assert torch.equal(state[key], expected_state[key]), key


@pytest.mark.parametrize("norm_type", [1.0, 2.0, 3.0], ids=str)
@pytest.mark.parametrize("sparse", [False, True], ids=["dense", "sparse"])
def test_language_model_with_max_norm(norm_type, sparse):
    max_norm = {1.0: 4.0, 2.0: 1.0, 3.0: 0.7}[norm_type]
    kwargs = dict(max_norm=max_norm, norm_type=norm_type, sparse=sparse)
    torch.manual_seed(3)
    reference = LanguageModel(nn.Embedding, **kwargs)
    ours = LanguageModel(et.Embedding, **kwargs)
    ours.load_state_dict(reference.state_dict())
    generator = torch.Generator().manual_seed(4)
    # A learnable text: each token mostly follows from the one before (t -> 7t + 3 mod V).
    noise = torch.randint(0, V, (STEPS * 16 + 1,), generator=generator)
    keep = torch.rand(STEPS * 16 + 1, generator=generator) < 0.8
    text = torch.empty(STEPS * 16 + 1, dtype=torch.long)
    text[0] = 1
    for i in range(1, len(text)):
        text[i] = (7 * text[i - 1] + 3) % V if keep[i] else noise[i]
    batches = [(text[i * 16:(i + 1) * 16].view(2, 8), text[i * 16 + 1:(i + 1) * 16 + 1]) for i in range(STEPS)]

    def forward(model, tokens):
        return model(tokens).view(-1, V)

    def optimizer(model):
        return torch.optim.SGD(model.parameters(), lr=0.3) if sparse else torch.optim.Adam(model.parameters(), lr=0.01)

    assert_identical(run(reference, optimizer(reference), batches, forward), run(ours, optimizer(ours), batches, forward))


@pytest.mark.parametrize("norm_type", [1.0, 2.0, 3.0], ids=str)
@pytest.mark.parametrize("mode", ["sum", "mean"])
def test_bag_model_with_max_norm(norm_type, mode):
    max_norm = {1.0: 4.0, 2.0: 1.0, 3.0: 0.7}[norm_type]
    kwargs = dict(max_norm=max_norm, norm_type=norm_type, mode=mode, sparse=True)
    torch.manual_seed(5)
    reference = BagModel(nn.EmbeddingBag, **kwargs)
    ours = BagModel(et.EmbeddingBag, **kwargs)
    ours.load_state_dict(reference.state_dict())
    generator = torch.Generator().manual_seed(6)
    batches = []
    for _ in range(STEPS):
        lengths = torch.randint(1, 7, (6,), generator=generator)
        indices = torch.randint(0, V, (int(lengths.sum()),), generator=generator)
        offsets = torch.cat([torch.zeros(1, dtype=torch.long), lengths.cumsum(0)[:-1]])
        batches.append(((indices, offsets), indices[offsets] % 5))   # learnable: the class of each bag's first row

    def forward(model, inputs):
        return model(*inputs)

    def optimizer(model):
        return torch.optim.SGD(model.parameters(), lr=0.5)

    assert_identical(run(reference, optimizer(reference), batches, forward), run(ours, optimizer(ours), batches, forward))
