"""End to end: a skip-gram model with negative sampling (word2vec's objective) trained with
torch.nn.Embedding and with embedding_native.torch.Embedding, from identical initial weights and
batches, dense and sparse gradients.

Model: two tables (centre words and context words, V = 300, D = 24), score = the dot product of a
centre row and a context row, loss = -log σ(score of the true pair) - Σ log σ(-score of 5 sampled
negatives), averaged over a batch of 32 centre words; SGD (lr 0.2; torch's SGD takes the sparse
gradients as they are), 100 steps. Frequent words repeat inside a batch (Zipf-like sampling), so
every step adds duplicate rows in both tables' gradients, and padding_idx = 0 zeroes the rows of
a word that is never trained.

Both gradients are computed the way torch computes them (dense: the same accumulation order;
sparse: the same uncoalesced layout), so losses and weights must be bit-identical: torch.equal,
no tolerance.
"""

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

import embedding_native.torch as et

V, D, BATCH, NEGATIVES, STEPS = 300, 24, 32, 5, 100


class SkipGram(nn.Module):
    def __init__(self, embedding_cls, **kwargs):
        super().__init__()
        self.centre = embedding_cls(V, D, **kwargs)
        self.context = embedding_cls(V, D, **kwargs)

    def forward(self, centre, context, negatives):
        c = self.centre(centre)                                        # (B, D)
        positive = (c * self.context(context)).sum(dim=1)               # (B,)
        negative = torch.bmm(self.context(negatives), c.unsqueeze(2))   # (B, K, 1)
        return -(F.logsigmoid(positive).mean() + F.logsigmoid(-negative).sum(dim=(1, 2)).mean())


def batches(seed):
    generator = torch.Generator().manual_seed(seed)
    # Zipf-like word frequencies: low ranks repeat within every batch.
    weights = 1.0 / torch.arange(1, V + 1, dtype=torch.float64)
    for _ in range(STEPS):
        centre = torch.multinomial(weights, BATCH, replacement=True, generator=generator)
        context = torch.multinomial(weights, BATCH, replacement=True, generator=generator)
        negatives = torch.multinomial(weights, BATCH * NEGATIVES, replacement=True, generator=generator)
        yield centre, context, negatives.view(BATCH, NEGATIVES)


def train(model, seed):
    optimizer = torch.optim.SGD(model.parameters(), lr=0.2)
    losses = []
    for centre, context, negatives in batches(seed):
        optimizer.zero_grad()
        loss = model(centre, context, negatives)
        loss.backward()
        optimizer.step()
        losses.append(loss.detach().clone())
    return torch.stack(losses), {name: value.detach().clone() for name, value in model.state_dict().items()}


@pytest.mark.parametrize("sparse", [False, True], ids=["dense", "sparse"])
@pytest.mark.parametrize("padding_idx", [None, 0], ids=["nopad", "pad0"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["f32", "f64"])
def test_skipgram_training_is_bit_identical(sparse, padding_idx, dtype):
    torch.manual_seed(3)
    reference = SkipGram(nn.Embedding, sparse=sparse, padding_idx=padding_idx).to(dtype)
    ours = SkipGram(et.Embedding, sparse=sparse, padding_idx=padding_idx).to(dtype)
    ours.load_state_dict(reference.state_dict())
    initial = {name: value.clone() for name, value in reference.state_dict().items()}

    torch_losses, torch_state = train(reference, seed=7)
    our_losses, our_state = train(ours, seed=7)

    assert torch.equal(our_losses, torch_losses), (our_losses - torch_losses).abs().max()
    for name, value in torch_state.items():
        assert torch.equal(our_state[name], value), name
    # The model trained: the loss fell and both tables moved; the padding rows never did.
    assert our_losses[-10:].mean() < our_losses[:10].mean()
    for name, value in initial.items():
        assert not torch.equal(our_state[name], value), name
        if padding_idx is not None:
            assert torch.equal(our_state[name][padding_idx], torch.zeros(D, dtype=dtype)), name
