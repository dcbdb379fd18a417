"""embedding_native.torch.quantized.Embedding / EmbeddingBag against torch.ao.nn.quantized (torch 1.13).

* constructor, attributes, repr / extra_repr / _get_name, weight(), state-dict keys and version
  metadata: as torch's.
* from_float (8- and 4-bit qconfigs, torch's float modules, our drop-ins, QAT modules, a custom
  observer): the same quantized weight as torch's, and forwards bit-identical to torch's modules
  (4-bit nnq.Embedding: to torch's embedding_4bit on the same table, since torch's module reads
  its 4-bit table as 8-bit).
* state dicts load both ways; torch.save / torch.load of a state dict and of a whole module;
  deepcopy.
* where torch returns garbage (4-bit tables of an odd dimension, a weight of another dtype than
  the module's, mode='mean'): the documented results (docs/divergences.md, "Quantized tables").
"""

import copy
import io

import numpy as np
import pytest
import torch
import torch.ao.nn.qat as nnqat
import torch.ao.nn.quantized as nnq
from torch.ao.quantization import (
    QConfig, PerChannelMinMaxObserver, default_qconfig, float_qparams_weight_only_qconfig,
    float_qparams_weight_only_qconfig_4bit,
)

import embedding_native.quantized as enqf
import embedding_native.torch as et
import embedding_native.torch.quantized as enq
from helpers import assert_same_error, raised, same_values

Q = torch.ops.quantized
QCONFIGS = {8: float_qparams_weight_only_qconfig, 4: float_qparams_weight_only_qconfig_4bit}
DTYPES = {8: torch.quint8, 4: torch.quint4x2}
#: 8-bit: any dimension; 4-bit: even ones (torch's modules cannot describe odd ones).
DIMS = {8: [1, 2, 3, 5, 8, 13, 16, 31, 64, 100, 128, 257, 300], 4: [2, 4, 6, 8, 14, 16, 32, 64, 100, 128, 256, 300]}
V = 29


def same_qtensor(a, b):
    return (a.dtype == b.dtype and a.shape == b.shape and a.qscheme() == b.qscheme()
            and torch.equal(a.int_repr(), b.int_repr())
            and torch.equal(a.q_per_channel_scales(), b.q_per_channel_scales())
            and torch.equal(a.q_per_channel_zero_points(), b.q_per_channel_zero_points())
            and a.q_per_channel_axis() == b.q_per_channel_axis())


def float_module(cls, dim, bits, seed=0, **kwargs):
    torch.manual_seed(seed)
    module = cls(V, dim, **kwargs)
    with torch.no_grad():
        module.weight.mul_(torch.logspace(-2, 2, V).unsqueeze(1))      # rows of very different ranges
        module.weight[3] = 0.5                                         # a constant row
    module.qconfig = QCONFIGS[bits]
    return module


def bag_inputs(seed, index_dtype=torch.int64, offset_dtype=torch.int64):
    g = torch.Generator().manual_seed(seed)
    indices = torch.randint(0, V, (40,), generator=g).to(index_dtype)
    offsets = torch.tensor([0, 3, 3, 17, 39]).to(offset_dtype)
    return indices, offsets


# ---- construction ------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [torch.quint8, torch.quint4x2])
def test_constructor_attributes_repr_and_state_dict_keys(dtype):
    for ours, theirs in ((enq.Embedding(10, 12, dtype=dtype), nnq.Embedding(10, 12, dtype=dtype)),
                         (enq.EmbeddingBag(10, 12, dtype=dtype, include_last_offset=True, mode="sum"),
                          nnq.EmbeddingBag(10, 12, dtype=dtype, include_last_offset=True, mode="sum"))):
        assert (ours.num_embeddings, ours.embedding_dim) == (theirs.num_embeddings, theirs.embedding_dim)
        assert ours._get_name() == theirs._get_name()
        assert ours.extra_repr() == theirs.extra_repr()
        assert repr(ours) == repr(theirs)
        ours_sd, theirs_sd = ours.state_dict(), theirs.state_dict()
        assert list(ours_sd) == list(theirs_sd) == ["_packed_params.dtype", "_packed_params._packed_weight"]
        assert ours_sd._metadata == theirs_sd._metadata
        assert ours_sd["_packed_params.dtype"] == dtype
        weight = ours.weight()
        assert weight.dtype == dtype and weight.shape == (10, 12)
        assert weight.qscheme() is torch.per_channel_affine_float_qparams
        assert torch.equal(weight.q_per_channel_scales(), torch.ones(10))
        assert torch.equal(weight.q_per_channel_zero_points(), torch.zeros(10))
        assert not weight.int_repr().any()                    # torch's initial codes are uninitialised memory
    bag = enq.EmbeddingBag(10, 12, dtype=dtype, include_last_offset=True)
    assert (bag.mode, bag.pruned_weights, bag.include_last_offset) == ("sum", False, True)


def test_constructor_refusals_are_torchs():
    assert_same_error(lambda: nnq.Embedding(4, 3, dtype=torch.qint8), lambda: enq.Embedding(4, 3, dtype=torch.qint8))
    wrong = torch.quantize_per_channel(torch.randn(4, 3), torch.ones(4), torch.zeros(4), 0, torch.quint8)
    assert_same_error(lambda: nnq.Embedding(5, 3, _weight=wrong), lambda: enq.Embedding(5, 3, _weight=wrong))
    module = enq.Embedding(4, 3)
    for bad in (torch.randn(4, 3),
                torch.quantize_per_tensor(torch.randn(4, 3), 0.1, 0, torch.quint8),
                torch.quantize_per_channel(torch.randn(4, 3), torch.ones(4), torch.zeros(4), 0, torch.qint8),
                torch.quantize_per_channel(torch.randn(4, 3), torch.ones(4, dtype=torch.double),
                                           torch.zeros(4, dtype=torch.long), 0, torch.quint8)):
        assert_same_error(lambda: nnq.Embedding(4, 3).set_weight(bad), lambda: module.set_weight(bad),
                          same_message=not isinstance(bad, torch.Tensor) or bad.is_quantized)


# ---- from_float ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("bits", [8, 4])
def test_embedding_bag_from_float_bit_exact(bits):
    for dim in DIMS[bits]:
        float_bag = float_module(torch.nn.EmbeddingBag, dim, bits, seed=dim)
        theirs = nnq.EmbeddingBag.from_float(float_bag)
        ours = enq.EmbeddingBag.from_float(float_bag)
        assert ours.dtype == DTYPES[bits] and same_qtensor(ours.weight(), theirs.weight()), dim
        assert repr(ours) == repr(theirs)
        for index_dtype, offset_dtype in ((torch.int64, torch.int64), (torch.int32, torch.int32),
                                          (torch.int32, torch.int64)):
            indices, offsets = bag_inputs(dim, index_dtype, offset_dtype)
            assert same_values(ours(indices, offsets), theirs(indices, offsets)), dim
        psw = torch.randn(40, generator=torch.Generator().manual_seed(dim))
        indices, offsets = bag_inputs(dim)
        assert same_values(ours(indices, offsets, psw), theirs(indices, offsets, psw))
        if bits == 4:
            assert same_values(ours(indices, offsets, psw.half()), theirs(indices, offsets, psw.half()))
        matrix = indices[:36].reshape(6, 6)
        assert same_values(ours(matrix), theirs(matrix))


@pytest.mark.parametrize("bits", [8, 4])
def test_embedding_from_float_bit_exact(bits):
    for dim in DIMS[bits]:
        float_embedding = float_module(torch.nn.Embedding, dim, bits, seed=dim)
        theirs = nnq.Embedding.from_float(float_embedding)
        ours = enq.Embedding.from_float(float_embedding)
        # torch builds a quint8 module whatever the qconfig (its 4-bit table is then read as 8-bit);
        # the table it packs is right, so the oracle is torch's embedding_4bit on it.
        assert same_qtensor(ours.weight(), theirs.weight()), dim
        assert ours.dtype == DTYPES[bits]
        lookup = Q.embedding_byte if bits == 8 else Q.embedding_4bit
        for shape in ((25,), (5, 5)):
            for index_dtype in (torch.int64, torch.int32):
                indices = torch.randint(0, V, shape, generator=torch.Generator().manual_seed(dim)).to(index_dtype)
                expected = lookup(theirs._packed_params._packed_weight, indices)
                if bits == 8:
                    assert same_values(theirs(indices), expected)
                got = ours(indices)
                assert got.shape == shape + (dim,) and same_values(got, expected), (dim, shape)


def test_from_float_accepts_our_drop_ins_and_qat_modules():
    for bits in (8, 4):
        float_bag = float_module(torch.nn.EmbeddingBag, 16, bits, seed=1)
        native_bag = et.EmbeddingBag.from_pretrained(float_bag.weight.detach().clone())
        native_bag.qconfig = QCONFIGS[bits]
        assert same_qtensor(enq.EmbeddingBag.from_float(native_bag).weight(),
                            nnq.EmbeddingBag.from_float(float_bag).weight())
        float_embedding = float_module(torch.nn.Embedding, 16, bits, seed=2)
        native = et.Embedding.from_pretrained(float_embedding.weight.detach().clone())
        native.qconfig = QCONFIGS[bits]
        assert same_qtensor(enq.Embedding.from_float(native).weight(), nnq.Embedding.from_float(float_embedding).weight())
    qat = nnqat.Embedding(V, 8, qconfig=float_qparams_weight_only_qconfig)
    qat.activation_post_process = torch.nn.Identity()       # what prepare() attaches
    qat(torch.arange(V))
    assert_same_error(lambda: nnq.Embedding.from_float(nnqat.Embedding(V, 8, qconfig=float_qparams_weight_only_qconfig)),
                      lambda: enq.Embedding.from_float(nnqat.Embedding(V, 8, qconfig=float_qparams_weight_only_qconfig)))
    assert same_qtensor(enq.Embedding.from_float(qat).weight(), nnq.Embedding.from_float(qat).weight())


def test_from_float_with_a_custom_observer():
    observer = PerChannelMinMaxObserver.with_args(dtype=torch.quint8, qscheme=torch.per_channel_affine_float_qparams,
                                                  ch_axis=0, quant_min=0, quant_max=100)
    float_bag = float_module(torch.nn.EmbeddingBag, 12, 8, seed=3)
    float_bag.qconfig = QConfig(activation=float_qparams_weight_only_qconfig.activation, weight=observer)
    theirs = nnq.EmbeddingBag.from_float(float_bag)
    ours = enq.EmbeddingBag.from_float(float_bag)
    assert same_qtensor(ours.weight(), theirs.weight())
    indices, offsets = bag_inputs(3)
    assert same_values(ours(indices, offsets), theirs(indices, offsets))


def test_from_float_refusals_are_torchs():
    plain = torch.nn.Embedding(5, 4)
    assert_same_error(lambda: nnq.Embedding.from_float(plain), lambda: enq.Embedding.from_float(plain))
    plain.qconfig = default_qconfig
    assert_same_error(lambda: nnq.Embedding.from_float(plain), lambda: enq.Embedding.from_float(plain))
    linear = torch.nn.Linear(3, 3)
    assert_same_error(lambda: nnq.Embedding.from_float(linear), lambda: enq.Embedding.from_float(linear),
                      same_message=False)
    bag = torch.nn.Embedding(5, 4)
    bag.qconfig = float_qparams_weight_only_qconfig
    assert_same_error(lambda: nnq.EmbeddingBag.from_float(bag), lambda: enq.EmbeddingBag.from_float(bag),
                      same_message=False)


def test_from_float_keeps_torchs_defaults_for_mode_and_include_last_offset():
    float_bag = float_module(torch.nn.EmbeddingBag, 8, 8, mode="mean", include_last_offset=True)
    theirs, ours = nnq.EmbeddingBag.from_float(float_bag), enq.EmbeddingBag.from_float(float_bag)
    assert (ours.mode, ours.include_last_offset) == (theirs.mode, theirs.include_last_offset) == ("sum", False)


# ---- forward options -----------------------------------------------------------------------------------


@pytest.mark.parametrize("bits", [8, 4])
def test_pruned_and_include_last_offset_forward_bit_exact(bits):
    float_bag = float_module(torch.nn.EmbeddingBag, 16, bits, seed=4)
    theirs, ours = nnq.EmbeddingBag.from_float(float_bag), enq.EmbeddingBag.from_float(float_bag)
    mapping = torch.tensor([3, -1, 0, 8, -1, 2, 2, 7, 1, 5, -1, 4, 6, 0, 28, 27], dtype=torch.int32)
    indices = torch.randint(0, mapping.numel(), (30,), generator=torch.Generator().manual_seed(4))
    offsets = torch.tensor([0, 2, 2, 9, 25])
    theirs.pruned_weights = ours.pruned_weights = True
    for ilo in (False, True):
        theirs.include_last_offset = ours.include_last_offset = ilo
        assert same_values(ours(indices, offsets, compressed_indices_mapping=mapping),
                           theirs(indices, offsets, compressed_indices_mapping=mapping))
        fallback = torch.tensor([0], dtype=torch.int32)
        rows = indices % V
        assert same_values(ours(rows, offsets, compressed_indices_mapping=fallback),
                           theirs(rows, offsets, compressed_indices_mapping=fallback))


def test_mean_mode_divides_and_max_mode_raises():
    # torch's nnq.EmbeddingBag sums whatever its mode (docs/divergences.md).
    float_bag = float_module(torch.nn.EmbeddingBag, 8, 4, seed=5)
    ours = enq.EmbeddingBag.from_float(float_bag)
    indices, offsets = bag_inputs(5)
    summed = ours(indices, offsets)
    ours.mode = "mean"
    counts = torch.tensor([3, 0, 14, 22, 1], dtype=torch.float32).clamp(min=1).unsqueeze(1)
    assert same_values(ours(indices, offsets), summed / counts)
    ours.mode = "max"
    assert isinstance(raised(lambda: ours(indices, offsets)), NotImplementedError)


def test_forward_errors_have_torchs_types():
    float_bag = float_module(torch.nn.EmbeddingBag, 8, 8)
    theirs, ours = nnq.EmbeddingBag.from_float(float_bag), enq.EmbeddingBag.from_float(float_bag)
    for args in ((torch.tensor([0, V]), torch.tensor([0])), (torch.tensor([0, 1]),),
                 (torch.tensor([[0, 1]]), torch.tensor([0])), (torch.tensor([1.0]), torch.tensor([0])),
                 (torch.tensor([0, 1]), torch.tensor([0]), torch.ones(2, dtype=torch.float16))):
        assert_same_error(lambda: theirs(*args), lambda: ours(*args))
    embedding_float = float_module(torch.nn.Embedding, 8, 8)
    theirs_e, ours_e = nnq.Embedding.from_float(embedding_float), enq.Embedding.from_float(embedding_float)
    for indices in (torch.tensor([V]), torch.zeros((1, 1, 1), dtype=torch.long), torch.tensor([0.0])):
        assert_same_error(lambda: theirs_e(indices), lambda: ours_e(indices))
    assert ours_e(torch.tensor([], dtype=torch.long)).shape == (0, 8)     # torch 1.13 segfaults here


# ---- state dicts, save and load, copies ------------------------------------------------------------------


@pytest.mark.parametrize("bits", [8, 4])
@pytest.mark.parametrize("cls_name", ["Embedding", "EmbeddingBag"])
def test_state_dict_both_ways(bits, cls_name):
    float_cls = getattr(torch.nn, cls_name)
    float_module_ = float_module(float_cls, 10, bits, seed=6)
    theirs = getattr(nnq, cls_name).from_float(float_module_)
    ours = getattr(enq, cls_name).from_float(float_module_)
    inputs = bag_inputs(6) if cls_name == "EmbeddingBag" else (torch.arange(V).reshape(1, V),)
    if cls_name == "Embedding" and bits == 4:
        theirs = nnq.Embedding(V, 10, dtype=torch.quint4x2)            # a torch module that reads 4-bit tables
        theirs.set_weight(ours.weight())
    expected = theirs(*inputs)

    loaded = getattr(enq, cls_name)(V, 10)                             # quint8: the state dict's table decides
    loaded.load_state_dict(theirs.state_dict())
    assert loaded.dtype == DTYPES[bits] and same_qtensor(loaded.weight(), theirs.weight())
    assert same_values(loaded(*inputs), expected)

    back = getattr(nnq, cls_name)(V, 10, dtype=DTYPES[bits])
    back.load_state_dict(ours.state_dict())
    assert same_qtensor(back.weight(), ours.weight())
    assert same_values(back(*inputs), expected)

    buffer = io.BytesIO()
    torch.save(ours.state_dict(), buffer)
    buffer.seek(0)
    reloaded = getattr(enq, cls_name)(V, 10, dtype=DTYPES[bits])
    reloaded.load_state_dict(torch.load(buffer))
    assert same_values(reloaded(*inputs), expected)

    buffer = io.BytesIO()
    torch.save(ours, buffer)
    buffer.seek(0)
    whole = torch.load(buffer)
    assert type(whole) is type(ours) and same_values(whole(*inputs), expected) and repr(whole) == repr(ours)

    duplicate = copy.deepcopy(ours)
    assert same_values(duplicate(*inputs), expected)
    duplicate.set_weight(getattr(enq, cls_name)(V, 10, dtype=DTYPES[bits]).weight())
    assert same_values(ours(*inputs), expected)                        # the copy shares nothing


# ---- where torch returns garbage ------------------------------------------------------------------------


@pytest.mark.parametrize("dim", [1, 3, 5, 7, 15, 33, 101])
def test_odd_4bit_dimensions(dim):
    # torch's quint4x2 tensor packs elements two per byte across row ends; torch's prepack copies
    # ceil(D/2) bytes per row from it (misaligned from row 1 on) and its ops add a padding column.
    # Here the rows are packed one by one: the bags equal torch's kernel on our table, minus the
    # padding column, and weight() gives back the quantized tensor.
    float_bag = float_module(torch.nn.EmbeddingBag, dim, 4, seed=dim)
    ours = enq.EmbeddingBag.from_float(float_bag)
    observer = float_qparams_weight_only_qconfig_4bit.weight()
    observer(float_bag.weight)
    scales, zero_points = observer.calculate_qparams()
    qweight = torch.quantize_per_channel(float_bag.weight.float(), scales, zero_points, 0, torch.quint4x2)
    assert same_qtensor(ours.weight(), qweight)
    assert torch.equal(ours.weight().dequantize(), qweight.dequantize())
    packed = ours._packed_params._packed_weight
    assert packed.embedding_dim == dim and packed.packed.shape == (V, (dim + 1) // 2 + 4)
    indices, offsets = bag_inputs(dim)
    expected = Q.embedding_bag_4bit_rowwise_offsets(packed.packed, indices, offsets)[:, :dim]
    assert same_values(ours(indices, offsets), expected)
    embedding = enq.Embedding(V, dim, dtype=torch.quint4x2)
    embedding.set_weight(qweight)
    assert same_values(embedding(indices), Q.embedding_4bit(Q.embedding_bag_prepack(
        torch.quantize_per_channel(torch.nn.functional.pad(float_bag.weight.float(), (0, 1)), scales, zero_points, 0,
                                   torch.quint4x2)), indices)[:, :dim])


def test_the_weights_dtype_decides_the_tables():
    # torch's module keeps its dtype and reads a table of another width as its own (garbage).
    qweight = torch.quantize_per_channel(torch.randn(V, 8), torch.rand(V) * 0.1 + 0.01, torch.rand(V) * 10, 0,
                                         torch.quint4x2)
    ours = enq.EmbeddingBag(V, 8)                                       # quint8
    ours.set_weight(qweight)
    assert ours.dtype == ours._packed_params.dtype == torch.quint4x2
    indices, offsets = bag_inputs(7)
    expected = Q.embedding_bag_4bit(Q.embedding_bag_prepack(qweight), indices, offsets)
    assert same_values(ours(indices, offsets), expected)
    assert same_values(enqf.embedding_bag_4bit(ours, indices, offsets), expected)
    assert same_values(enqf.embedding_bag_4bit(ours._packed_params, indices, offsets), expected)
