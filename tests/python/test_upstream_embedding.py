"""torch's own CPU tests of nn.Embedding / F.embedding, rewritten as parity tests for
embedding_native.torch.Embedding / embedding and embedding_native.functional.embedding.

Sources: the TestNN / TestNNDeviceType methods of torch 1.13's test/test_nn.py whose names contain
``embedding`` (2.x moved them to test/nn/test_embedding.py), the OpInfo of
``nn.functional.embedding`` (sample_inputs_embedding, error_inputs_embedding), the ModuleInfo of
``torch.nn.Embedding`` (module_inputs_torch_nn_Embedding) and the older ``module_tests`` entries
for Embedding in common_nn.py. Each test names what it ports. Each runs the case through torch and
through ours and compares:

* values, dense gradients and sparse gradients (layout and values): bit for bit, since torch's
  gather and its dense backward in position order are deterministic (spec §4.1);
* rows renormalised by max_norm (in the weight and in the output): bit for bit too, since the
  library computes each row's norm as torch does (docs/exactness.md#max_norm; helpers.renorm_matches).

Left out: the CUDA/device halves (test_embedding_max_norm_unsorted_repeating_indices compares CUDA
with CPU: its CPU half is ported; test_large_tensors; test_embedding_max_norm_device, whose CPU
case is test_embedding_max_norm) and the CUDA move of test_move_sparse_half_embedding.
"""

import copy
import io
import pickle

import pytest
import torch
import torch.autograd.forward_ad as fwAD
import torch.nn as nn
import torch.nn.functional as F

import embedding_native as en
import embedding_native.functional as ef
import embedding_native.torch as et
from helpers import GRADCHECK_DTYPES, TABLE_DTYPES, assert_same_error, identical, raised, renorm_matches

dtypes = pytest.mark.parametrize("dtype", TABLE_DTYPES, ids=str)
#: Where upstream's absolute checks (a rescaled row's norm <= max_norm) hold: not after rounding to 16 bits.
FULL_PRECISION = (torch.float32, torch.float64)
gradcheck_dtypes = pytest.mark.parametrize("dtype", GRADCHECK_DTYPES, ids=str)


def pair(num_embeddings, embedding_dim, dtype, seed=0, **kwargs):
    """(torch.nn.Embedding, ours) with the same weight, cast to ``dtype`` (padding row zeroed by torch's init)."""
    torch.manual_seed(seed)
    reference = nn.Embedding(num_embeddings, embedding_dim, **kwargs).to(dtype)
    ours = et.Embedding(num_embeddings, embedding_dim, _weight=reference.weight.detach().clone(), **kwargs)
    return reference, ours


def upstream_grad(shape, dtype, seed=2):
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed)).to(dtype)


def assert_forward_backward(reference, ours, idx, seed=2):
    """Forward values and the weight gradient of one call, bit for bit."""
    expected, got = reference(idx), ours(idx)
    assert identical(got, expected)
    grad = upstream_grad(expected.shape, expected.dtype, seed)
    expected.backward(grad)
    got.backward(grad)
    assert identical(ours.weight.grad, reference.weight.grad)
    return expected, got


def assert_renormed_like_torch(ours, theirs, original, p=2.0):
    ok, detail = renorm_matches(ours, theirs, original, p)
    assert ok, detail


# ---- TestNN -------------------------------------------------------------------------------------------


@dtypes
def test_sparse_gradient_of_a_2d_input(dtype):
    # test_embedding_sparse_basic
    reference, ours = pair(10, 20, dtype, sparse=True)
    assert_forward_backward(reference, ours, torch.tensor([[0, 2, 4, 5], [4, 3, 0, 9]]))
    assert ours.weight.grad.is_sparse and ours.weight.grad.shape == ours.weight.shape


@dtypes
@pytest.mark.parametrize("num_embeddings, embedding_dim, idx", [
    (0, 0, torch.tensor([], dtype=torch.int64)),
    (10, 0, torch.tensor([[0, 2, 4, 5], [4, 3, 0, 9]])),
], ids=["0x0-empty-input", "10x0"])
def test_sparse_gradient_of_zero_size_tables(dtype, num_embeddings, embedding_dim, idx):
    # test_embedding_sparse_empty_tensor
    reference, ours = pair(num_embeddings, embedding_dim, dtype, sparse=True)
    reference(idx).sum().backward()
    ours(idx).sum().backward()
    assert identical(ours.weight.grad, reference.weight.grad)
    assert ours.weight.grad.is_sparse and ours.weight.grad.shape == ours.weight.shape


@dtypes
def test_module_to_dtype_keeps_its_attributes(dtype):
    # test_move_sparse_half_embedding (the CPU part; half joins through TABLE_DTYPES)
    torch.manual_seed(0)
    reference = nn.Embedding(10, 3, sparse=True)
    torch.manual_seed(0)
    ours = et.Embedding(10, 3, sparse=True)
    assert ours.weight.device.type == "cpu" and ours.weight.dtype == torch.get_default_dtype()
    reference.to(dtype)
    ours.to(dtype)
    assert ours.weight.dtype == dtype and isinstance(ours.weight, nn.Parameter)
    assert (ours.num_embeddings, ours.embedding_dim, ours.sparse) == (10, 3, True)
    assert_forward_backward(reference, ours, torch.tensor([[1, 9, 9], [0, 4, 1]]))


@dtypes
@pytest.mark.parametrize("idx", [[2, 8, 8, 6], [0, 1] * 2000], ids=["test_embedding_max_norm", "2000-repeats"])
def test_max_norm_renormalises_the_referenced_rows(dtype, idx):
    # test_embedding_max_norm; test_embedding_max_norm_unsorted_repeating_indices (its CPU half: the
    # 2000 unsorted repeats of two rows, torch's CPU result as the oracle instead of CUDA's)
    num_embeddings, embedding_dim = (22, 5) if len(idx) == 4 else (20, 64)
    reference, ours = pair(num_embeddings, embedding_dim, dtype, max_norm=1.0)
    original = reference.weight.detach().clone()
    idx = torch.tensor(idx)
    expected, got = reference(idx), ours(idx)
    assert_renormed_like_torch(ours.weight, reference.weight, original)
    assert_renormed_like_torch(got, expected, original[idx])
    # repeated indices give identical rows: the renormalised rows of the weight
    assert identical(got, ours.weight.detach()[idx])
    if dtype in FULL_PRECISION:  # in float16/bfloat16 the rescaled row's own norm rounds above max_norm (torch's too)
        assert got.detach().norm(p=2, dim=1).le(1).all()
    untouched = torch.ones(num_embeddings, dtype=torch.bool)
    untouched[idx] = False
    assert identical(ours.weight[untouched], original[untouched])


@pytest.mark.parametrize("dtype", TABLE_DTYPES + [torch.uint8, torch.int8, torch.int16, torch.int32, torch.int64],
                         ids=str)
def test_from_pretrained(dtype):
    # test_embedding_from_pretrained. torch 1.13 refuses integer tables ("Only Tensors of floating
    # point ... can require gradients"; 2.x accepts them): so do we, with its error.
    a = torch.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]).to(dtype)
    if not dtype.is_floating_point:
        theirs, ours = assert_same_error(lambda: nn.Embedding.from_pretrained(a.clone()),
                                         lambda: et.Embedding.from_pretrained(a.clone()))
        assert str(ours) == str(theirs)
        return
    reference, ours = nn.Embedding.from_pretrained(a.clone()), et.Embedding.from_pretrained(a)
    assert ours.weight.data_ptr() == a.data_ptr() and identical(ours.weight, reference.weight)
    idx = torch.tensor([0, 1])
    assert identical(ours(idx), reference(idx)) and identical(ours(idx), a)


@dtypes
def test_from_pretrained_does_not_zero_the_padding_row(dtype):
    # test_embedding_from_pretrained_padding_idx
    embeddings = torch.rand(4, 3, generator=torch.Generator().manual_seed(0)).to(dtype)
    embeddings[2] = 7
    embeddings.requires_grad_()
    reference = nn.Embedding.from_pretrained(embeddings.detach().clone(), padding_idx=2)
    ours = et.Embedding.from_pretrained(embeddings, padding_idx=2)
    assert identical(ours.weight, reference.weight) and ours.weight[2].eq(7).all()


@dtypes
def test_from_pretrained_options_renormalise_the_shared_table(dtype):
    # test_embedding_from_pretrained_options (upstream in float64; here every table dtype)
    opts = dict(max_norm=2.0, norm_type=0.5, scale_grad_by_freq=False, sparse=True)
    a = torch.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]).to(dtype)
    original, a_torch = a.clone(), a.clone()
    reference, ours = nn.Embedding.from_pretrained(a_torch, **opts), et.Embedding.from_pretrained(a, **opts)
    idx = torch.tensor([0, 1])
    expected, got = reference(idx), ours(idx)
    assert_renormed_like_torch(a, a_torch, original, p=0.5)
    assert identical(got, a)  # the output is the renormalised table, which is the caller's tensor
    assert a.ne(original).all()
    if dtype == torch.float64:  # upstream's dtype; in float32 torch's own second row has norm 2.0000002
        assert got.detach().norm(p=0.5, dim=1).le(2.0).all()


@dtypes
def test_module_and_functionals_agree(dtype):
    # test_embedding_functional: the module, F.embedding and (here) both of our functionals
    embeddings = torch.rand(4, 3, generator=torch.Generator().manual_seed(0)).to(dtype).requires_grad_()
    a = torch.tensor([[1, 3, 2], [0, 2, 1]])
    expected = F.embedding(a, embeddings)
    for padding_idx in (None, 2):
        module = et.Embedding.from_pretrained(embeddings, padding_idx=padding_idx)
        for got in (module(a), et.embedding(a, embeddings, padding_idx=padding_idx),
                    ef.embedding(a, embeddings.detach(), padding_idx=padding_idx)):
            assert identical(got, expected)
        if dtype != torch.bfloat16:  # numpy has no bfloat16
            assert identical(torch.from_numpy(ef.embedding(a.numpy(), embeddings.detach().numpy())), expected)


# ---- TestNNDeviceType ----------------------------------------------------------------------------------


@gradcheck_dtypes
def test_gradcheck_dense(dtype):
    # test_embedding_dense_grad
    torch.manual_seed(0)
    weight = et.Embedding(20, 20, dtype=dtype).weight
    inp = torch.tensor([[0, 1, 1, 2], [3, 5, 7, 11]])
    assert torch.autograd.gradcheck(lambda w: et.embedding(inp, w), (weight,))
    assert torch.autograd.gradgradcheck(lambda w: et.embedding(inp, w), (weight,))


@dtypes
@pytest.mark.parametrize("weight", [torch.tensor(1.0), torch.tensor(1.0).reshape(1, 1, 1)], ids=["0-d", "3-d"])
def test_weight_must_be_2d(dtype, weight):
    # test_embedding_scalar_weight_error; OpInfo error_inputs_embedding
    indices = torch.rand(2, 2, generator=torch.Generator().manual_seed(0)).long()
    weight = weight.to(dtype)
    for ours in (et.embedding, ef.embedding):
        theirs, got = assert_same_error(lambda: F.embedding(indices, weight), lambda: ours(indices, weight))
        assert isinstance(got, RuntimeError) and "'weight' must be 2-D" in str(got)


@dtypes
def test_sparse_backward_concatenates_calls(dtype):
    # test_embedding_backward (upstream float64 on the CPU): sparse gradients of repeated calls are
    # concatenated, uncoalesced, even after the index tensor is changed in place between calls.
    reference, ours = pair(10, 3, dtype, sparse=True)
    if dtype in (torch.float16, torch.bfloat16):
        # torch 1.13 cannot add two sparse half gradients ("add_out_sparse_cpu" not implemented):
        # accumulation fails the same way with our modules, which hand torch the same layout.
        for module in (reference, ours):
            module(torch.tensor([7, 1])).sum().backward()
        assert identical(ours.weight.grad, reference.weight.grad)
        assert_same_error(lambda: reference(torch.tensor([1])).sum().backward(),
                          lambda: ours(torch.tensor([1])).sum().backward())
        return
    for module in (reference, ours):
        tensor = torch.tensor([[7, 1, 3]])
        module.zero_grad()
        module(tensor[0]).sum().backward()
        one = module.weight.grad.clone()
        module.zero_grad()
        module(tensor[0]).sum().backward()
        module(tensor[0]).sum().backward()
        twice = module.weight.grad.clone()
        module.zero_grad()
        module(tensor[0]).sum().backward()
        tensor[0, 0] = 8
        module(tensor[0]).sum().backward()
        module.results = (one, twice, module.weight.grad)
    for got, expected in zip(ours.results, reference.results):
        assert identical(got, expected)
    assert ours.results[2]._indices().tolist() == [[7, 1, 3, 8, 1, 3]]
    assert identical(ours.results[2]._values(), torch.ones(6, 3, dtype=dtype))


@dtypes
def test_max_norm_backward_is_a_count_scatter(dtype):
    # test_embedding_max_norm_backward (gradcheck cannot apply: the in-place renorm is not differentiated)
    weight = (torch.randn(4, 4, generator=torch.Generator().manual_seed(0)) * 2).to(dtype)
    w_ours, w_torch = weight.clone().requires_grad_(), weight.clone().requires_grad_()
    inp = torch.tensor([0, 1, 2, 2])
    et.embedding(inp, w_ours, max_norm=1.0).sum().backward()
    F.embedding(inp, w_torch, max_norm=1.0).sum().backward()
    assert_renormed_like_torch(w_ours, w_torch, weight)
    assert identical(w_ours.grad, w_torch.grad)
    assert identical(w_ours.grad, torch.tensor([[1.0], [1.0], [2.0], [0.0]], dtype=dtype).expand(4, 4))


@dtypes
@pytest.mark.xfail(strict=True, reason=(
    "forward-mode AD is silently dropped: a dual weight (made with forward_ad.make_dual) does not require "
    "grad, so embedding_native.torch.embedding takes its no-autograd lookup path and the output has no "
    "tangent (unpack_dual(out).tangent is None); torch 1.13 returns the gathered tangent rows"))
def test_max_norm_forward_ad(dtype):
    # test_embedding_max_norm_fwd_AD
    weight = (torch.randn(4, 4, generator=torch.Generator().manual_seed(0)) * 2).to(dtype)
    tangent = torch.ones(4, 4, dtype=dtype)
    inp = torch.tensor([[0, 1], [2, 2]])
    tangents = []
    for embedding in (F.embedding, et.embedding):
        with fwAD.dual_level():
            out = embedding(inp, fwAD.make_dual(weight.clone(), tangent), max_norm=1.0)
            tangents.append(fwAD.unpack_dual(out).tangent)
    assert identical(tangents[0], torch.ones(2, 2, 4, dtype=dtype))
    assert tangents[1] is not None and identical(tangents[1], tangents[0])


@dtypes
@pytest.mark.parametrize("padding_idx, idx", [
    (0, [[0, 2, 4, 5], [4, 3, 0, 9]]),
    (-2, [[0, 2, 8, 5], [4, 8, 0, 9]]),   # normalised to 8
], ids=["padding_idx=0", "padding_idx=-2"])
@pytest.mark.parametrize("sparse", [False, True], ids=["dense", "sparse"])
def test_padding_row_is_zeroed_at_init(dtype, padding_idx, idx, sparse):
    # test_embedding_padding_idx, first part: the same seed gives torch's initial table, padding row zero
    torch.manual_seed(4)
    reference = nn.Embedding(10, 20, padding_idx=padding_idx, sparse=sparse).to(dtype)
    torch.manual_seed(4)
    ours = et.Embedding(10, 20, padding_idx=padding_idx, sparse=sparse).to(dtype)
    assert identical(ours.weight, reference.weight)
    expected, got = assert_forward_backward(reference, ours, torch.tensor(idx))
    row = 10 + padding_idx if padding_idx < 0 else padding_idx
    assert got[0][idx[0].index(row)].eq(0).all() and got[1][idx[1].index(row)].eq(0).all()


@dtypes
def test_changed_padding_vector_is_returned_as_stored(dtype):
    # test_embedding_padding_idx: "change padding vector"
    reference, ours = pair(10, 20, dtype, padding_idx=2, sparse=True)
    with torch.no_grad():
        reference.weight[2] = 1
        ours.weight[2] = 1
    got, _ = assert_forward_backward(reference, ours, torch.tensor([0, 2]))
    assert identical(got[1], torch.ones(20, dtype=dtype))


@pytest.mark.parametrize("padding_idx", [25, -25])
def test_padding_idx_out_of_range(padding_idx):
    # test_embedding_padding_idx: "out of bounds check for padding_idx"
    theirs, ours = assert_same_error(lambda: nn.Embedding(num_embeddings=10, embedding_dim=20, padding_idx=padding_idx),
                                     lambda: et.Embedding(num_embeddings=10, embedding_dim=20, padding_idx=padding_idx))
    assert isinstance(ours, AssertionError) and str(ours) == str(theirs)


@dtypes
@pytest.mark.parametrize("n", [1, 2, 1000])  # 1000: large enough for every path of torch's backward
@pytest.mark.parametrize("other_indices", [[], [1, 3], [2]], ids=str)
def test_padding_row_gets_no_gradient(dtype, n, other_indices):
    # test_embedding_padding_idx: "pre == weight + grad" at the padding row, after a backward and
    # after a double backward whose first gradient enters the loss (its own derivative is zero)
    reference, ours = pair(5, 2, dtype, padding_idx=0)
    indices = torch.tensor(other_indices + [0] * n)
    assert_forward_backward(reference, ours, indices)
    assert identical(ours.weight.grad[0], torch.zeros(2, dtype=dtype))
    for module in (reference, ours):
        module.zero_grad()
        emb_sum = module(indices).sum()
        (emb_grad,) = torch.autograd.grad(emb_sum, list(module.parameters()), create_graph=True)
        (emb_grad.sum() + emb_sum).backward()
    assert identical(ours.weight.grad, reference.weight.grad)
    assert identical(ours.weight.grad[0], torch.zeros(2, dtype=dtype))


# ---- OpInfo nn.functional.embedding: sample_inputs_embedding ------------------------------------------

S, M = 5, 10  # common_methods_invocations' small and medium sizes


def _index(shape, low, high, g):
    return torch.randint(low, high, shape, generator=g)


def _weight(shape, dtype, g, scale=1.0):
    # make_tensor's range for floats: uniform in [-9, 9)
    return ((torch.rand(shape, generator=g) * 18 - 9) * scale).to(dtype)


def embedding_samples(dtype, g):
    """(name, weight, indices, kwargs) for each of sample_inputs_embedding's samples, with our seeds."""
    def marked(shape, value, *positions):
        idx = _index(shape, 0, S, g)
        for p in positions:
            idx[p] = value
        return idx

    yield "0-d", _weight((M, S), dtype, g), _index((), 0, M, g), {}
    yield "1-d", _weight((M, S), dtype, g), _index((S,), 0, M, g), {}
    yield "2-d", _weight((M, S), dtype, g), _index((S, S), 0, M, g), {}
    yield "padding_idx=2", _weight((S, S), dtype, g), marked((2, 2), 2, (0, 0), (1, 1)), dict(padding_idx=2)
    yield "padding_idx=-1", _weight((S, S), dtype, g), marked((2, 2), 4, (0, 0), (1, 1)), dict(padding_idx=-1)
    yield "max_norm", _weight((S, S), dtype, g, 2), _index((2, 2), 0, S, g), dict(max_norm=1.0)
    yield "max_norm-p1", _weight((S, S), dtype, g, 2), _index((2, 2), 0, S, g), dict(max_norm=1.0, norm_type=1.0)
    yield "scale_grad_by_freq", _weight((S, S), dtype, g), marked((2, 2), 1, (0, 0), (0, 1)), \
        dict(scale_grad_by_freq=True)
    yield "sparse", _weight((S, S), dtype, g), _index((2, 2), 0, S, g), dict(sparse=True)
    idx = marked((3, 3), 1, (0, 0), (0, 1))
    idx[1, 0] = 0
    yield "sparse-freq-pad-max_norm", _weight((S, S), dtype, g, 2), idx, \
        dict(sparse=True, scale_grad_by_freq=True, padding_idx=0, max_norm=1.0)


EMBEDDING_SAMPLES = [name for name, *_ in embedding_samples(torch.float32, torch.Generator().manual_seed(0))]


def non_contiguous(t):
    """The same values in a transposed-layout leaf (OpInfo's noncontiguous sample variant)."""
    return torch.empty(t.shape[::-1], dtype=t.dtype).t().copy_(t)


@dtypes
@pytest.mark.parametrize("contiguous", [True, False], ids=["contiguous", "noncontiguous-weight"])
@pytest.mark.parametrize("sample", EMBEDDING_SAMPLES)
def test_opinfo_sample(dtype, contiguous, sample):
    samples = {name: rest for name, *rest in embedding_samples(dtype, torch.Generator().manual_seed(0))}
    weight, idx, kwargs = samples[sample]
    if not contiguous:
        weight = non_contiguous(weight)
    w_torch, w_ours = weight.clone().requires_grad_(), weight.clone().requires_grad_()
    if not contiguous:
        w_ours = non_contiguous(weight).requires_grad_()
    expected, got = F.embedding(idx, w_torch, **kwargs), et.embedding(idx, w_ours, **kwargs)
    plain = ef.embedding(idx, weight.clone(), **kwargs)  # the numpy/tensor functional, no autograd
    if "max_norm" in kwargs:
        p = kwargs.get("norm_type", 2.0)
        assert_renormed_like_torch(w_ours, w_torch, weight, p)
        assert_renormed_like_torch(got, expected, weight[idx], p)
        assert_renormed_like_torch(plain, expected, weight[idx], p)
    else:
        assert identical(got, expected) and identical(plain, expected) and identical(w_ours, weight)
    grad = upstream_grad(expected.shape, dtype)
    if kwargs.get("sparse") and kwargs.get("scale_grad_by_freq"):
        theirs, ours = assert_same_error(lambda: expected.backward(grad), lambda: got.backward(grad))
        assert str(ours) == str(theirs)
        return
    expected.backward(grad)
    got.backward(grad)
    assert identical(w_ours.grad, w_torch.grad)


@gradcheck_dtypes
@pytest.mark.parametrize("sample", EMBEDDING_SAMPLES[:3])  # the samples OpInfo offers with requires_grad
def test_opinfo_gradcheck(dtype, sample):
    # TestGradients.test_fn_grad on sample_inputs_embedding (float64)
    samples = {name: rest for name, *rest in embedding_samples(dtype, torch.Generator().manual_seed(0))}
    weight, idx, kwargs = samples[sample]
    assert torch.autograd.gradcheck(lambda w: et.embedding(idx, w, **kwargs), (weight.requires_grad_(),))


# ---- ModuleInfo torch.nn.Embedding; common_nn module_tests ------------------------------------------------


def module_inputs(g):
    """(name, constructor kwargs, input) of module_inputs_torch_nn_Embedding and common_nn's Embedding entries."""
    yield "2x3", {}, torch.randint(0, 4, (2, 3), generator=g)
    yield "discontiguous", {}, torch.randint(0, 4, (1, 512), generator=g).expand(7, 512)
    yield "Embedding_sparse", dict(sparse=True), torch.randperm(2, generator=g).repeat(1, 2)


MODULE_INPUTS = [name for name, *_ in module_inputs(torch.Generator().manual_seed(0))]


@dtypes
@pytest.mark.parametrize("case", MODULE_INPUTS)
def test_module_input(dtype, case):
    # TestModule: test_forward, test_non_contiguous_tensors (a non-contiguous grad_output too),
    # test_repr, test_pickle, test_factory_kwargs; common_nn's NewModuleTest forward/backward
    kwargs, idx = {name: rest for name, *rest in module_inputs(torch.Generator().manual_seed(0))}[case]
    torch.manual_seed(1)
    reference = nn.Embedding(4, 3, device="cpu", dtype=dtype, **kwargs)
    torch.manual_seed(1)
    ours = et.Embedding(4, 3, device="cpu", dtype=dtype, **kwargs)
    assert identical(ours.weight, reference.weight) and repr(ours) == repr(reference)
    assert_forward_backward(reference, ours, idx)
    reference.zero_grad()
    ours.zero_grad()
    grad = upstream_grad(idx.shape[::-1] + (3,), dtype).transpose(0, 1)  # non-contiguous
    reference(idx).backward(grad)
    ours(idx).backward(grad)
    assert identical(ours.weight.grad, reference.weight.grad)
    buffer = io.BytesIO()
    torch.save(ours, buffer)
    buffer.seek(0)
    for restored in (pickle.loads(pickle.dumps(ours)), torch.load(buffer), copy.deepcopy(ours)):
        assert type(restored) is et.Embedding and identical(restored(idx), reference(idx))


@gradcheck_dtypes
@pytest.mark.parametrize("case", MODULE_INPUTS[:2])  # gradcheck has no sparse gradients
def test_module_gradcheck(dtype, case):
    # TestModule.test_grad
    kwargs, idx = {name: rest for name, *rest in module_inputs(torch.Generator().manual_seed(0))}[case]
    module = et.Embedding(4, 3, dtype=dtype, **kwargs)
    assert torch.autograd.gradcheck(lambda w: et.embedding(idx, w), (module.weight,))


# ---- table dtypes -------------------------------------------------------------------------------------------
