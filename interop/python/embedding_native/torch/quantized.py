"""``embedding_native.torch.quantized``: drop-ins for ``torch.ao.nn.quantized.Embedding`` and
``EmbeddingBag`` whose lookups run the native quantized kernels::

    from embedding_native.torch.quantized import EmbeddingBag   # instead of nnq.EmbeddingBag
    float_bag.qconfig = torch.ao.quantization.float_qparams_weight_only_qconfig_4bit
    bag = EmbeddingBag.from_float(float_bag)
    bag(indices, offsets)                                    # torch 1.13's bits

Everything else is torch 1.13's: the constructors and their arguments, ``from_float`` (the
qconfig's weight observer and torch's own quantize step), ``from_reference``, ``weight()``,
``set_weight``, ``extra_repr``, ``_get_name``, ``repr``, and the state dict: the keys
``_packed_params.dtype`` and ``_packed_params._packed_weight`` (a per-channel-affine-float-qparams
quantized tensor) with version 1, so state dicts load into torch's modules and back. torch is
used for that bookkeeping (quantized tensors, observers); the table is packed here (torch's
``PackedEmbeddingBagWeight::prepack``: scale, and bias = -zero_point * scale, both float32 for 8-bit
and float16 for 4-bit) and every lookup is a native call.

Where torch 1.13 returns garbage, these modules do the right thing instead (docs/divergences.md,
"Quantized tables"):

* The table's bit width is the weight's: ``Embedding.from_float`` with a 4-bit qconfig (torch
  builds a quint8 module and reads its 4-bit table as 8-bit), a quint4x2 weight set into a quint8
  module or the reverse, ``Embedding(..., dtype=torch.quint4x2)`` (torch packs its initial
  weight as 8-bit). ``dtype`` follows the weight.
* 4-bit tables of an odd dimension are packed row by row (torch misreads the quantized tensor's
  packing and adds a column); ``weight()`` has the module's dimension.
* ``EmbeddingBag(mode='mean')`` divides each bag by its count (torch sums whatever the mode);
  ``mode='max'`` raises NotImplementedError at forward.
* The initial table (before ``set_weight``) is zeros (torch's is uninitialised memory).
* Empty indices give empty outputs (torch segfaults); see ``embedding_native.quantized`` for the
  bag layouts.
"""

import ctypes

import numpy as np
import torch
from torch.ao.nn.quantized.modules.utils import hide_packed_params_repr

import torch.ao.nn.qat
from torch.ao.nn.quantized.modules.utils import _quantize_weight

from .._ops import quantized as _q
from .._ops.failures import error as _error
from .._ops.quantized import PackedEmbeddingWeight
from ..errors import EMB_ERROR_INVALID_ARGUMENT, EMB_ERROR_NOT_SUPPORTED, EmbeddingNotSupportedError, \
    EmbeddingRuntimeError
from . import Embedding as _NativeEmbedding, EmbeddingBag as _NativeEmbeddingBag

__all__ = ["Embedding", "EmbeddingBag", "EmbeddingPackedParams", "embedding_bag_prepack", "embedding_bag_unpack"]

#: The quantized dtypes a module holds, with their code widths.
_BITS = {torch.quint8: 8, torch.quint4x2: 4}
_DTYPES = {bits: dtype for dtype, bits in _BITS.items()}


def _runtime(detail):
    return _error(EmbeddingRuntimeError, EMB_ERROR_INVALID_ARGUMENT, detail)


# ---- Quantized tensors <-> packed tables ----------------------------------------------------------------


def packed_from_qtensor(qweight):
    """torch's ``PackedEmbeddingBagWeight::prepack`` (``quantized::embedding_bag_prepack``): a
    ``[N, D]`` quint8 / quint4x2 tensor quantized per row with float qparams, as a packed table.

    Per row: codes as they are; scale = the row's scale and bias = zero_point * scale * -1 in
    float32, both stored as float32 (8-bit) or rounded to float16 (4-bit). Refused as torch
    refuses: a tensor that is not quantized (NotImplementedError), rank != 2, another dtype or
    qscheme (RuntimeError, torch's texts).
    """
    if not isinstance(qweight, torch.Tensor) or not qweight.is_quantized:
        what = type(qweight).__name__ if not isinstance(qweight, torch.Tensor) else "a %s tensor" % qweight.dtype
        raise _error(EmbeddingNotSupportedError, EMB_ERROR_NOT_SUPPORTED,
                                  "Could not run 'quantized::embedding_bag_prepack' with arguments from the 'CPU' "
                                  "backend. (It takes a quantized tensor, got %s.)" % what)
    if qweight.dim() != 2:
        raise _runtime("quantized::embedding_bag_prepack weight tensor rank should be 2")
    bits = _BITS.get(qweight.dtype)
    if bits is None:
        raise _runtime("qembedding_bag_prepack currently only supports quint8 and quint4x2 weights")
    if qweight.qscheme() is not torch.per_channel_affine_float_qparams:
        raise _runtime("Expect embedding_bag weights to be quantized using kPerChannelAffineFloatQParams")
    rows, dim = qweight.shape
    scales = qweight.q_per_channel_scales().to(torch.float32).contiguous()
    zero_points = qweight.q_per_channel_zero_points().to(torch.float32).contiguous()
    codes = _codes_of(qweight, bits, rows, dim)
    scale = scales.numpy()
    bias = (zero_points.numpy() * scale) * np.float32(-1)          # torch: zero_point * scale * -1, in float
    width = _q.row_bytes(bits, dim)
    packed = np.zeros((rows, width), dtype=np.uint8)
    code_bytes = width - _q.scale_bias_bytes(bits)
    if bits == 8:
        packed[:, :dim] = codes
        tail = np.stack([scale, bias], axis=1).astype(np.float32)
    else:
        per_byte = _q.codes_per_byte(bits)
        padded = np.zeros((rows, code_bytes * per_byte), dtype=np.uint8)
        padded[:, :dim] = codes
        for slot in range(per_byte):
            packed[:, :code_bytes] |= padded[:, slot::per_byte] << (slot * bits)
        tail = np.stack([scale, bias], axis=1).astype(np.float16)   # at::Half(float): round to nearest even
    packed[:, code_bytes:] = tail.view(np.uint8).reshape(rows, -1)
    return PackedEmbeddingWeight(torch.from_numpy(packed), bits, dim, scales.clone(), zero_points.clone())


def _codes_of(qweight, bits, rows, dim):
    """The ``[rows, dim]`` codes of a quantized tensor. A quint4x2 tensor packs its elements two per
    byte in row-major order across rows (``int_repr()`` gives those bytes), not row by row."""
    if bits == 8:
        return qweight.int_repr().numpy()
    flat = qweight.int_repr().numpy()
    codes = np.empty(flat.shape[0] * 2, dtype=np.uint8)
    codes[0::2] = flat & 0x0F
    codes[1::2] = flat >> 4
    return codes[:rows * dim].reshape(rows, dim)


def qtensor_from_packed(packed):
    """torch's ``PackedEmbeddingBagWeight::unpack`` (``quantized::embedding_bag_unpack``): the
    quantized tensor a packed table was made from (codes, and the scales and zero points given to
    ``set_weight``; a table packed without them gets scale and -bias/scale of each row)."""
    bits = packed.bit_width
    dim = packed.embedding_dim
    rows = packed.num_embeddings
    table = packed.packed.numpy() if isinstance(packed.packed, torch.Tensor) else np.asarray(packed.packed)
    width = table.shape[1]
    code_bytes = width - _q.scale_bias_bytes(bits)
    if bits == 8:
        codes = table[:, :dim]
    else:
        columns = np.arange(dim)
        codes = (table[:, columns // 2] >> ((columns % 2) * 4).astype(np.uint8)) & 0x0F
    scales, zero_points = packed.scales, packed.zero_points
    if scales is None or zero_points is None:
        tail = np.ascontiguousarray(table[:, code_bytes:])
        pair = tail.view(np.float32 if bits == 8 else np.float16).astype(np.float32)
        with np.errstate(divide="ignore", invalid="ignore"):
            zp = np.where(pair[:, 0] != 0, -pair[:, 1] / pair[:, 0], np.float32(0))
        scales, zero_points = torch.from_numpy(pair[:, 0].copy()), torch.from_numpy(zp.astype(np.float32))
    qweight = torch._empty_per_channel_affine_quantized([rows, dim], scales=scales, zero_points=zero_points, axis=0,
                                                        dtype=_DTYPES[bits])
    if bits == 8:
        data = np.ascontiguousarray(codes, dtype=np.uint8)
    else:
        # quint4x2's own packing: element k of the flattened tensor in byte k/2, bits 4(k%2).
        count = rows * dim
        flat = np.zeros(count + count % 2, dtype=np.uint8)
        flat[:count] = codes.reshape(-1)
        data = np.ascontiguousarray(flat[0::2] | (flat[1::2] << 4))
    if data.size:
        ctypes.memmove(qweight.data_ptr(), data.ctypes.data, data.size)
    return qweight


#: torch's names for the two conversions (``torch.ops.quantized.embedding_bag_prepack`` / ``_unpack``).
embedding_bag_prepack = packed_from_qtensor
embedding_bag_unpack = qtensor_from_packed


def _empty_qweight(num_embeddings, embedding_dim, dtype):
    """The initial weight: zero codes, scale 1, zero point 0 (torch's codes are uninitialised)."""
    scales = torch.ones(num_embeddings, dtype=torch.float)
    zero_points = torch.zeros(num_embeddings, dtype=torch.float)
    packed = PackedEmbeddingWeight(torch.zeros((num_embeddings, _q.row_bytes(_BITS[dtype], embedding_dim)),
                                               dtype=torch.uint8), _BITS[dtype], embedding_dim)
    packed.scales, packed.zero_points = scales, zero_points
    return qtensor_from_packed(packed)


# ---- Modules ----------------------------------------------------------------------------------------------


class EmbeddingPackedParams(torch.nn.Module):
    """torch's ``EmbeddingPackedParams`` with a native table: ``_packed_weight`` is a
    :class:`embedding_native.quantized.PackedEmbeddingWeight`; ``dtype`` is its dtype (quint8 or
    quint4x2). Its state dict is torch's: ``dtype`` and ``_packed_weight`` (the quantized tensor)."""

    _version = 1

    def __init__(self, num_embeddings, embedding_dim, dtype=torch.quint8):
        super().__init__()
        self.dtype = dtype
        if dtype not in _BITS:
            # torch.ao.nn.quantized's own refusal, type and text (it has no 2-bit or qint8 module).
            raise NotImplementedError(f'Unsupported dtype on quantized embedding! Supports quint8 and quint4x2. '
                                      f'Got dtype: {dtype}')
        self.set_weight(_empty_qweight(num_embeddings, embedding_dim, dtype))

    def set_weight(self, weight):
        """Packs ``weight`` (torch's embedding_bag_prepack); the table's dtype becomes the weight's."""
        self._packed_weight = packed_from_qtensor(weight)
        self.dtype = weight.dtype

    def _weight(self):
        return qtensor_from_packed(self._packed_weight)

    def forward(self, x):
        return x

    def _save_to_state_dict(self, destination, prefix, keep_vars):
        super()._save_to_state_dict(destination, prefix, keep_vars)
        destination[prefix + 'dtype'] = self.dtype
        destination[prefix + '_packed_weight'] = self._weight()

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys,
                              error_msgs):
        self.dtype = state_dict[prefix + 'dtype']
        state_dict.pop(prefix + 'dtype')
        weight = state_dict[prefix + '_packed_weight']
        state_dict.pop(prefix + '_packed_weight')
        self.set_weight(weight)
        super()._load_from_state_dict(state_dict, prefix, local_metadata, False, missing_keys, unexpected_keys,
                                      error_msgs)

    def __repr__(self):
        return self._weight().__repr__()


def _observer_of(mod, cls, float_types, qat_type):
    """from_float's weight observer, with torch's assertions."""
    if hasattr(mod, 'weight_fake_quant'):
        if qat_type is not None:
            assert type(mod) == qat_type, 'nnq.' + cls.__name__ + '.from_float ' + \
                'with fake quant only works for ' + qat_type.__name__
            mod.activation_post_process   # read (and so required) by torch's from_float, unused
        return mod.weight_fake_quant
    assert type(mod) in float_types, 'nnq.' + cls.__name__ + '.from_float only works for ' + \
        float_types[0].__name__
    assert hasattr(mod, 'qconfig'), cls.__name__ + ' input float module must have qconfig defined'
    from torch.ao.quantization import float_qparams_weight_only_qconfig
    if mod.qconfig is not None and mod.qconfig.weight is not None:
        return mod.qconfig.weight()
    return float_qparams_weight_only_qconfig.weight()


def _quantize_with(mod, weight_observer, cls):
    """torch's from_float steps after the observer: its checks, the observer run, the quantize."""
    dtype = weight_observer.dtype
    is_float_qparams_qconfig = weight_observer.qscheme == torch.per_channel_affine_float_qparams
    assert is_float_qparams_qconfig, \
        cls.__name__ + ' quantization is only supported with float_qparams_weight_only_qconfig.'
    assert dtype == torch.quint8 or dtype == torch.quint4x2, \
        f'The only supported dtype for nnq.{cls.__name__} is torch.quint8 and torch.quint4x2, got {dtype}'
    weight_observer(mod.weight)
    return _quantize_weight(mod.weight.float(), weight_observer), dtype


class Embedding(torch.nn.Module):
    """``torch.ao.nn.quantized.Embedding`` with native lookups (see the module doc).

    ``Embedding(num_embeddings, embedding_dim, padding_idx=None, max_norm=None, norm_type=2.,
    scale_grad_by_freq=False, sparse=False, _weight=None, dtype=torch.quint8)``; the float
    module's options are accepted and unused, as in torch. ``forward(indices)``: float32
    ``indices.shape + (embedding_dim,)`` for 1-D or 2-D int32/int64 indices.
    """

    _version = 1

    def __init__(self, num_embeddings, embedding_dim, padding_idx=None, max_norm=None, norm_type=2.,
                 scale_grad_by_freq=False, sparse=False, _weight=None, dtype=torch.quint8):
        super().__init__()
        self.num_embeddings = num_embeddings
        self.embedding_dim = embedding_dim
        self.dtype = dtype
        if _weight is None:
            qweight = _empty_qweight(num_embeddings, embedding_dim, dtype) if dtype in _BITS else None
        else:
            assert list(_weight.shape) == [num_embeddings, embedding_dim], \
                'Shape of weight does not match num_embeddings and embedding_dim'
            qweight = _weight
        self._packed_params = EmbeddingPackedParams(num_embeddings, embedding_dim, dtype)
        self.set_weight(qweight)

    def forward(self, indices):
        packed = self._packed_params._packed_weight
        return _q.embedding(packed.bit_width, packed, indices, op="embedding_" + _q.BIT_NAMES[packed.bit_width])

    def _get_name(self):
        return 'QuantizedEmbedding'

    def __repr__(self):
        return hide_packed_params_repr(self, EmbeddingPackedParams)

    def extra_repr(self):
        return 'num_embeddings={}, embedding_dim={}, dtype={}, qscheme={}'.format(
            self.num_embeddings, self.embedding_dim, self._packed_params.dtype, self.weight().qscheme())

    def set_weight(self, w):
        """Packs the quantized tensor ``w``; the module's dtype becomes ``w``'s."""
        self._packed_params.set_weight(w)
        self.dtype = self._packed_params.dtype

    def weight(self):
        """The quantized weight (torch's embedding_bag_unpack of the table)."""
        return self._packed_params._weight()

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys,
                              error_msgs):
        # The table (loaded by _packed_params, after this) decides the dtype.
        weight = state_dict.get(prefix + '_packed_params._packed_weight')
        if isinstance(weight, torch.Tensor) and weight.dtype in _BITS:
            self.dtype = weight.dtype
        super()._load_from_state_dict(state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys,
                                      error_msgs)

    @classmethod
    def from_float(cls, mod):
        """A quantized Embedding from ``torch.nn.Embedding`` (or this package's drop-in, or a QAT
        Embedding): torch's observer and quantize step, then a module of the observer's dtype."""
        weight_observer = _observer_of(mod, cls, (torch.nn.Embedding, _NativeEmbedding),
                                       torch.ao.nn.qat.Embedding)
        qweight, dtype = _quantize_with(mod, weight_observer, cls)
        qembedding = cls(mod.num_embeddings, mod.embedding_dim, dtype=dtype)
        qembedding.set_weight(qweight)
        return qembedding

    @classmethod
    def from_reference(cls, ref_embedding):
        return cls(ref_embedding.num_embeddings, ref_embedding.embedding_dim, ref_embedding.padding_idx,
                   ref_embedding.max_norm, ref_embedding.norm_type, ref_embedding.scale_grad_by_freq,
                   ref_embedding.sparse, ref_embedding.get_quantized_weight(), ref_embedding.weight_dtype)


class EmbeddingBag(Embedding):
    """``torch.ao.nn.quantized.EmbeddingBag`` with native bags (see the module doc).

    ``EmbeddingBag(num_embeddings, embedding_dim, max_norm=None, norm_type=2.,
    scale_grad_by_freq=False, mode='sum', sparse=False, _weight=None, include_last_offset=False,
    dtype=torch.quint8)``; ``forward(indices, offsets=None, per_sample_weights=None,
    compressed_indices_mapping=None)`` as ``embedding_native.quantized.embedding_bag_byte`` /
    ``embedding_bag_4bit`` with the module's mode, ``pruned_weights`` attribute (False) and
    include_last_offset. mode 'mean' divides by the bag's count (torch sums).
    """

    _version = 1

    def __init__(self, num_embeddings, embedding_dim, max_norm=None, norm_type=2., scale_grad_by_freq=False,
                 mode='sum', sparse=False, _weight=None, include_last_offset=False, dtype=torch.quint8):
        super().__init__(num_embeddings, embedding_dim, _weight=_weight, dtype=dtype)
        self.mode = mode
        self.pruned_weights = False
        self.include_last_offset = include_last_offset

    def forward(self, indices, offsets=None, per_sample_weights=None, compressed_indices_mapping=None):
        packed = self._packed_params._packed_weight
        return _q.embedding_bag(packed.bit_width, packed, indices, offsets, False, self.mode, self.pruned_weights,
                                per_sample_weights, compressed_indices_mapping, self.include_last_offset,
                                op="embedding_bag_" + _q.BIT_NAMES[packed.bit_width])

    def _get_name(self):
        return 'QuantizedEmbeddingBag'

    @classmethod
    def from_float(cls, mod):
        """A quantized EmbeddingBag from ``torch.nn.EmbeddingBag`` (or this package's drop-in):
        torch's observer and quantize step. As in torch, the result has the default mode ('sum')
        and include_last_offset (False), not the float module's."""
        weight_observer = _observer_of(mod, cls, (torch.nn.EmbeddingBag, _NativeEmbeddingBag), None)
        qweight, dtype = _quantize_with(mod, weight_observer, cls)
        qembedding_bag = cls(mod.num_embeddings, mod.embedding_dim, dtype=dtype)
        qembedding_bag.set_weight(qweight)
        return qembedding_bag

    @classmethod
    def from_reference(cls, ref_embedding_bag):
        return cls(ref_embedding_bag.num_embeddings, ref_embedding_bag.embedding_dim, ref_embedding_bag.max_norm,
                   ref_embedding_bag.norm_type, ref_embedding_bag.scale_grad_by_freq, ref_embedding_bag.mode,
                   ref_embedding_bag.sparse, ref_embedding_bag.get_quantized_weight(),
                   ref_embedding_bag.include_last_offset, ref_embedding_bag.weight_dtype)
