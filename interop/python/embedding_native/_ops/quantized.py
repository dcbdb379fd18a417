"""Row-wise quantized tables: torch.ops.quantized's embedding operations on numpy arrays and CPU tensors.

A packed table is a uint8 array of rows laid out as torch 1.13 packs them (the C header's
``emb_quantize``): the codes, then the row's scale and bias::

    8-bit: D codes, one per byte;             scale, bias float32   (D + 8 bytes)
    4-bit: column j in byte j/2, bits 4(j%2);  scale, bias float16   (ceil(D/2) + 4 bytes)
    2-bit: column j in byte j/4, bits 2(j%4);  scale, bias float16   (ceil(D/4) + 4 bytes)
    value(j) = scale * code(j) + bias

A bare packed array says nothing of D, so the operations read it from the row width as torch
does (8-bit: width - 8; n-bit: (width - 4) * 8/n). A :class:`PackedEmbeddingWeight` carries D
itself (a 4-bit table of an odd dimension, which torch cannot describe), like torch's
``EmbeddingPackedParamsBase``.

Each operation checks its arguments in torch's order, with torch's exception types and texts
(``RuntimeError`` for nearly everything: torch's op parser and TORCH_CHECKs), then makes one
native call. Where torch 1.13 crashes, reads out of bounds or returns garbage, the operation does
what the docstrings of ``embedding_native.quantized`` say (docs/divergences.md, "Quantized
tables"). Non-contiguous inputs are copied (torch refuses them).

torch is never imported here: a tensor is recognised through ``sys.modules`` only.
"""

import sys
from ctypes import byref, c_int64

import numpy as np

from .. import _torch_operators as _operators
from .._bindings import (
    EMB_BAG_MEAN, EMB_BAG_SUM, EMB_DTYPE_FLOAT16, EMB_DTYPE_FLOAT32, EMB_DTYPE_INT32, EMB_DTYPE_INT64, EMB_NO_PADDING,
    emb_bags, emb_dequantize, emb_embedding_bag_count, emb_quantize, emb_quantize_optimized, emb_quantized_embedding,
    emb_quantized_embedding_bag, emb_quantized_row_bytes,
)
from ..errors import (
    EMB_ERROR_INDEX_OUT_OF_RANGE, EMB_ERROR_INVALID_ARGUMENT, EMB_ERROR_NOT_SUPPORTED, EMB_ERROR_UNSUPPORTED_DTYPE,
    EmbeddingNotSupportedError, EmbeddingRuntimeError,
)
from .buffers import NUMPY, TORCH, dtype_name
from .failures import error, last_error, native_error
from .._progress import Progress

#: The code widths, and torch's name of each in its op names.
BIT_NAMES = {8: "byte", 4: "4bit", 2: "2bit"}

#: torch's ScalarType names, for its "expected scalar type Float but found Half" messages.
SCALAR_TYPE_NAMES = {
    "float32": "Float", "float64": "Double", "float16": "Half", "bfloat16": "BFloat16", "int64": "Long",
    "int32": "Int", "int16": "Short", "int8": "Char", "uint8": "Byte", "bool": "Bool",
    "complex64": "ComplexFloat", "complex128": "ComplexDouble", "complex32": "ComplexHalf",
}

_CHECK_SUFFIX = "  (Could this error message be improved?  If so, please report an enhancement request to PyTorch.)"
#: prepack quantizes this many bytes of float rows per native call.
_PREPACK_BLOCK_BYTES = 64 << 20
_MODES = {"sum": EMB_BAG_SUM, "mean": EMB_BAG_MEAN, "max": 2}


def scale_bias_bytes(bits):
    """Bytes of scale and bias at the end of a packed row: 8 (two float32) or 4 (two float16)."""
    return 8 if bits == 8 else 4


def codes_per_byte(bits):
    return 8 // bits


def row_bytes(bits, embedding_dim):
    """Bytes of one packed row of ``embedding_dim`` columns (``emb_quantized_row_bytes``; a row of no
    columns, which the library does not take, is its scale and bias)."""
    if embedding_dim == 0:
        return scale_bias_bytes(bits)
    count = c_int64()
    status = emb_quantized_row_bytes(bits, embedding_dim, byref(count))
    if status:
        raise native_error(status)
    return count.value


def torch_dimension(bits, width):
    """The dimension torch reads from a packed row width: every code slot (may be negative)."""
    return (width - scale_bias_bytes(bits)) * codes_per_byte(bits)


def scalar_type_name(x):
    name = dtype_name(x)
    return SCALAR_TYPE_NAMES.get(name, name)


def _runtime(detail, status=EMB_ERROR_INVALID_ARGUMENT):
    return error(EmbeddingRuntimeError, status, detail)


def _check_failed(condition):
    """torch's TORCH_CHECK text for a failed condition without a message."""
    return _runtime("Expected %s to be true, but got false.%s" % (condition, _CHECK_SUFFIX))


# ---- torch's op argument parser ------------------------------------------------------------------


def _kind(x):
    """NUMPY, TORCH or None (torch is looked up in sys.modules only)."""
    if type(x) is np.ndarray:
        return NUMPY
    torch = sys.modules.get("torch")
    if torch is not None and isinstance(x, torch.Tensor):
        return TORCH
    if isinstance(x, np.ndarray):
        return NUMPY
    return None


def _python_type_name(value):
    return type(value).__name__


def tensor_argument(value, op, name, optional=False):
    """A numpy array or CPU tensor (a numpy scalar as a 0-d array); None for an optional argument
    given as None; otherwise torch's RuntimeError "Expected a value of type 'Tensor' ..."."""
    if value is None and optional:
        return None
    if _kind(value) is not None:
        return value
    if isinstance(value, np.generic):
        return np.asarray(value)
    raise _runtime("quantized::%s() Expected a value of type '%s' for argument '%s' but instead found type '%s'."
                   % (op, "Optional[Tensor]" if optional else "Tensor", name, _python_type_name(value)))


def bool_argument(value, op, name):
    """torch's ``bool`` op parameter: anything but a string, as its truth value (None is False)."""
    if value is True or value is False:
        return value
    if isinstance(value, (str, bytes)):
        raise _runtime("quantized::%s() Expected a value of type 'bool' for argument '%s' but instead found type '%s'."
                       % (op, name, _python_type_name(value)))
    return bool(value)


def int_argument(value, op, name):
    """torch's ``int`` op parameter: an int (bools included), a numpy integer or a 0-d integer tensor."""
    if isinstance(value, (int, np.integer)):
        return int(value)
    torch = sys.modules.get("torch")
    if (torch is not None and isinstance(value, torch.Tensor) and value.dim() == 0
            and not (value.dtype.is_floating_point or value.dtype.is_complex)):
        return int(value)
    raise _runtime("quantized::%s() Expected a value of type 'int' for argument '%s' but instead found type '%s'."
                   % (op, name, _python_type_name(value)))


def float_argument(value, op, name):
    """torch's ``float`` op parameter: a Python or numpy real number (or a 0-d tensor)."""
    if isinstance(value, (int, float, np.integer, np.floating)):
        return float(value)
    torch = sys.modules.get("torch")
    if torch is not None and isinstance(value, torch.Tensor) and value.dim() == 0 and not value.dtype.is_complex:
        return float(value)
    raise _runtime("quantized::%s() Expected a value of type 'float' for argument '%s' but instead found type '%s'."
                   % (op, name, _python_type_name(value)))


def mode_argument(value, op):
    """``mode``: torch's int (0 sum, 1 mean, 2 max), or the names ``"sum"``, ``"mean"``, ``"max"``.
    Returns the emb_bag_mode; max and unknown modes raise (torch ignores ``mode`` and always sums:
    docs/divergences.md)."""
    if isinstance(value, str):
        mode = _MODES.get(value)
        if mode is None:
            raise ValueError("mode has to be one of sum, mean or max (got %r)" % value)
    else:
        mode = int_argument(value, op, "mode")
        if mode not in (0, 1, 2):
            raise ValueError("mode has to be 0 (sum), 1 (mean) or 2 (max) (got %d)" % mode)
    if mode == 2:
        raise error(EmbeddingNotSupportedError, EMB_ERROR_NOT_SUPPORTED,
                    "%s: mode max is not supported for quantized tables (torch 1.13 sums whatever the mode; "
                    "embedding_native computes sum and mean)" % op)
    return mode


def check_dense(op, *tensors):
    """torch's dispatcher refusal of a sparse tensor: NotImplementedError "Could not run ..."."""
    torch = sys.modules.get("torch")
    if torch is None:
        return
    for tensor in tensors:
        if tensor is not None and isinstance(tensor, torch.Tensor) and tensor.layout is not torch.strided:
            backend = "SparseCPU" if tensor.layout is torch.sparse_coo else "SparseCsrCPU"
            raise error(EmbeddingNotSupportedError, EMB_ERROR_NOT_SUPPORTED,
                        "Could not run 'quantized::%s' with arguments from the '%s' backend." % (op, backend))


# ---- Buffers ----------------------------------------------------------------------------------------


def _contiguous(x):
    """``x`` detached, on the CPU and C-contiguous (a copy if it is not), and its kind."""
    kind = _kind(x)
    if kind is TORCH:
        kind.check_device(x, "tensor")
        x = x.detach()
        if not x.is_contiguous():
            x = x.contiguous()
    elif x.dtype.byteorder not in ("=", "|") or not x.flags.c_contiguous:
        native = x.dtype.newbyteorder("=") if x.dtype.byteorder not in ("=", "|") else x.dtype
        x = np.ascontiguousarray(x, dtype=native)
    return x, kind


def _address(x, kind):
    return kind.address(x)


def _new(kind, shape, dtype_name):
    """A new uninitialised array of ``kind`` (numpy or torch)."""
    return kind.empty(tuple(shape), dtype_name)


def _flat_float32(x):
    """``x`` as a flat C-contiguous float32 array of its kind (converted exactly from float16)."""
    kind = _kind(x)
    return kind.flat(x, "float32") if dtype_name(x) != "float32" else kind.flat(x)


# ---- Packed tables with their dimension --------------------------------------------------------------


class PackedEmbeddingWeight:
    """A packed quantized table and what a bare uint8 array cannot say: its bit width and
    dimension (torch's ``EmbeddingPackedParamsBase``). Pass it as the ``weight`` of
    :func:`embedding_native.quantized.embedding_byte` / ``embedding_4bit`` /
    ``embedding_bag_byte`` / ``embedding_bag_4bit``.

    Attributes:
        packed: the ``[num_embeddings, row_bytes]`` uint8 array (numpy, or a CPU tensor: results
            are of its kind).
        bit_width: 8, 4 or 2.
        embedding_dim: columns per row (a 4-bit table may have an odd number: its last code slot is
            padding, which torch's ops would read as a column).
        scales, zero_points: optional per-row float32 quantization parameters as given to
            ``set_weight`` (what torch's ``embedding_bag_unpack`` returns); None when unknown.
    """

    __slots__ = ("packed", "bit_width", "embedding_dim", "scales", "zero_points")

    def __init__(self, packed, bit_width, embedding_dim=None, scales=None, zero_points=None):
        if bit_width not in BIT_NAMES:
            raise ValueError("bit_width must be 8, 4 or 2, got %r" % (bit_width,))
        kind = _kind(packed)
        if kind is None or dtype_name(packed) != "uint8" or len(packed.shape) != 2:
            raise _runtime("a packed table is a 2-D uint8 array, got %s" % (
                "%s %s of shape %s" % (type(packed).__name__, dtype_name(packed), tuple(packed.shape))
                if kind is not None else type(packed).__name__))
        width = int(packed.shape[1])
        if embedding_dim is None:
            embedding_dim = torch_dimension(bit_width, width)
            if embedding_dim < 0:
                raise _runtime("a %d-bit packed row has %d bytes of scale and bias, got rows of %d bytes"
                               % (bit_width, scale_bias_bytes(bit_width), width))
        elif embedding_dim < 0 or row_bytes(bit_width, embedding_dim) != width:
            raise _runtime("%d-bit rows of %d columns take %s bytes, the packed rows have %d"
                           % (bit_width, embedding_dim,
                              row_bytes(bit_width, embedding_dim) if embedding_dim >= 0 else "no", width))
        self.packed = packed
        self.bit_width = bit_width
        self.embedding_dim = int(embedding_dim)
        self.scales = scales
        self.zero_points = zero_points

    @property
    def num_embeddings(self):
        return int(self.packed.shape[0])

    def __repr__(self):
        return "PackedEmbeddingWeight(num_embeddings=%d, embedding_dim=%d, bit_width=%d)" % (
            self.num_embeddings, self.embedding_dim, self.bit_width)


def packed_weight_of(weight, op):
    """``weight`` as a PackedEmbeddingWeight: one already, an object holding one (the drop-in
    modules and their ``_packed_params``), or torch's own EmbeddingPackedParamsBase (unpacked by
    torch and packed again here). Returns None for an array (the caller reads D from its width)."""
    if isinstance(weight, PackedEmbeddingWeight):
        return weight
    if _kind(weight) is not None:
        return None
    for attribute in ("_packed_params", "_packed_weight"):
        inner = getattr(weight, attribute, None)
        if inner is not None and inner is not weight:
            found = packed_weight_of(inner, op)
            if found is not None:
                return found
    torch = sys.modules.get("torch")
    if torch is not None and isinstance(weight, torch.ScriptObject):
        from ..torch.quantized import packed_from_qtensor   # torch is loaded: so may the torch layer be
        return packed_from_qtensor(torch.ops.quantized.embedding_bag_unpack(weight))
    return None


# ---- Prepack and unpack ---------------------------------------------------------------------------------


def prepack(weight, bits, optimized_qparams=False, nbins=200, ratio=0.16):
    """embedding_bag_{byte,4bit,2bit}_prepack (see embedding_native.quantized)."""
    op = "embedding_bag_%s_prepack" % BIT_NAMES[bits]
    weight = tensor_argument(weight, op, "weight")
    if bits != 8:
        optimized_qparams = bool_argument(optimized_qparams, op, "optimized_qparams")
        nbins = int_argument(nbins, op, "nbins")
        ratio = float_argument(ratio, op, "ratio")
    check_dense(op, weight)
    name = dtype_name(weight)
    if name not in ("float32", "float16"):
        raise _runtime("'%s' only support float32 or float16." % (
            "embedding_bag_byte_prepack" if bits == 8 else "qembeddingbag_nbit_prepack"), EMB_ERROR_UNSUPPORTED_DTYPE)
    shape = tuple(weight.shape)
    if bits == 8:
        if not shape:
            raise _runtime("embedding_bag_byte_prepack: weight must have at least one dimension (the columns)")
    elif len(shape) < 2:
        # torch's weight.size(1) on a 0-d or 1-d weight.
        raise IndexError("Dimension specified as 0 but tensor has no dimensions" if not shape else
                         "Dimension out of range (expected to be in range of [-1, 0], but got 1)")
    dim = shape[-1]
    if dim % codes_per_byte(bits):
        raise _runtime("qembeddingbag_%dbit_prepack only works for the number of columns a multiple of %d"
                       % (bits, codes_per_byte(bits)))
    if bits != 8 and optimized_qparams:
        if nbins == 0:
            # torch's search then takes no step (its threshold is 0 * inf): the plain prepack's result.
            optimized_qparams = False
        elif nbins < 0 or not 0.0 <= ratio <= 1.0:
            # torch 1.13 never returns for nbins < 0, and with ratio > 1 lets the range cross itself
            # (docs/divergences.md); the library's search takes nbins >= 1 and ratio in [0, 1].
            raise _runtime("%s: optimized_qparams needs nbins >= 0 and 0 <= ratio <= 1, got nbins=%d, ratio=%r"
                           % (op, nbins, ratio))
    rows = int(np.prod(shape[:-1], dtype=np.int64))
    width = row_bytes(bits, dim)
    weight, kind = _contiguous(weight)
    packed = _new(kind, shape[:-1] + (width,), "uint8")
    if rows == 0:
        return packed
    if dim == 0:
        # Rows without columns: nothing to quantize (torch 1.13 reads past the row and crashes).
        packed[...] = 0
        return packed
    code = EMB_DTYPE_FLOAT32 if name == "float32" else EMB_DTYPE_FLOAT16
    itemsize = 4 if name == "float32" else 2
    source, target = _address(weight, kind), _address(packed, kind)
    # Rows are quantized independently, so a block of rows at a time gives the same bytes; the
    # blocks let a table of a gigabyte or more show a progress bar on a terminal (_progress).
    rows_per_block = max(_PREPACK_BLOCK_BYTES // (dim * itemsize), 1)
    with Progress("quantizing to %d bits" % bits, rows * dim * itemsize) as progress:
        for start in range(0, rows, rows_per_block):
            count = min(rows_per_block, rows - start)
            block_source, block_target = source + start * dim * itemsize, target + start * width
            if bits != 8 and optimized_qparams:
                status = emb_quantize_optimized(block_source, code, count, dim, bits, nbins, ratio,
                                                block_target, count * width)
            else:
                status = emb_quantize(block_source, code, count, dim, bits, block_target, count * width)
            if status:
                raise native_error(status)
            progress.advance(count * dim * itemsize)
    return packed


def unpack(packed, bits):
    """embedding_bag_{byte,4bit,2bit}_unpack (see embedding_native.quantized)."""
    op = "embedding_bag_%s_unpack" % BIT_NAMES[bits]
    packed = tensor_argument(packed, op, "weight")
    check_dense(op, packed)
    shape = tuple(packed.shape)
    if bits != 8 and len(shape) < 2:
        raise IndexError("Dimension specified as 0 but tensor has no dimensions" if not shape else
                         "Dimension out of range (expected to be in range of [-1, 0], but got 1)")
    if not shape:
        raise _runtime("%s: the packed table must have at least one dimension" % op)
    if dtype_name(packed) != "uint8":
        raise _runtime("expected scalar type Byte but found %s" % scalar_type_name(packed), EMB_ERROR_UNSUPPORTED_DTYPE)
    width = shape[-1]
    dim = torch_dimension(bits, width)
    if dim < 0:
        raise _runtime("%s: a %d-bit packed row ends in %d bytes of scale and bias, got rows of %d bytes"
                       % (op, bits, scale_bias_bytes(bits), width))
    packed, kind = _contiguous(packed)
    rows = int(np.prod(shape[:-1], dtype=np.int64))
    out = _new(kind, shape[:-1] + (dim,), "float32")
    if rows == 0 or dim == 0:
        return out
    status = emb_dequantize(_address(packed, kind), rows, dim, bits, _address(out, kind), rows * dim)
    if status:
        raise native_error(status)
    return out


# ---- Lookups ------------------------------------------------------------------------------------------


class _Table:
    """A validated packed table: array, kind, address, rows, dimension, bits."""

    __slots__ = ("array", "kind", "address", "rows", "dim", "bits")


def _table(weight, bits, op, packed=None):
    """The packed table of a bag or lookup op, checked in torch's order for ``bits`` (``packed``:
    the PackedEmbeddingWeight when one was given, which fixes the dimension)."""
    if packed is not None:
        if packed.bit_width != bits:
            raise _runtime("%s takes %d-bit tables, got a %d-bit one" % (op, bits, packed.bit_width))
        array = packed.packed
    else:
        array = weight
    shape = tuple(array.shape)
    if bits == 8:
        if dtype_name(array) != "uint8":
            raise _check_failed("weight.scalar_type() == at::kByte")
        if len(shape) != 2:
            raise _check_failed("weight.dim() == 2")
    else:
        if len(shape) != 2:
            raise _check_failed("weight.dim() == 2")
        if dtype_name(array) != "uint8":
            raise _runtime("expected scalar type Byte but found %s" % scalar_type_name(array), EMB_ERROR_UNSUPPORTED_DTYPE)
    dim = packed.embedding_dim if packed is not None else torch_dimension(bits, shape[1])
    if dim < 0:
        raise _runtime("%s: a %d-bit packed row ends in %d bytes of scale and bias, got rows of %d bytes"
                       % (op, bits, scale_bias_bytes(bits), shape[1]))
    table = _Table()
    table.array, table.kind = _contiguous(array)
    table.address = table.kind.address(table.array)
    table.rows = shape[0]
    table.dim = dim
    table.bits = bits
    return table


def _index_array(x, what):
    """``x`` (int32/int64, any shape) flat and contiguous, with its emb_dtype; torch's text otherwise."""
    name = dtype_name(x)
    if name not in ("int32", "int64"):
        raise _runtime("Expect 32 or 64 bit %s, but found %s instead." % (what, SCALAR_TYPE_NAMES.get(name, name)),
                       EMB_ERROR_UNSUPPORTED_DTYPE)
    kind = _kind(x)
    return kind.flat(x), (EMB_DTYPE_INT32 if name == "int32" else EMB_DTYPE_INT64)


def _mapping(pruned_weights, mapping, op):
    """The compressed_indices_mapping to pass (flat contiguous int32 array) or None: torch reads it
    only with pruned_weights, and a mapping of exactly [0] means "not pruned"."""
    if not pruned_weights:
        return None
    if mapping is None:
        raise _runtime("%s: pruned_weights=True needs a compressed_indices_mapping (torch: bad optional access)" % op)
    if dtype_name(mapping) != "int32":
        raise _runtime("expected scalar type Int but found %s" % scalar_type_name(mapping), EMB_ERROR_UNSUPPORTED_DTYPE)
    flat = _kind(mapping).flat(mapping)
    if flat.shape[0] == 1 and int(flat[0]) == 0:
        return None
    return flat


def _lookup_failure(status, pruned):
    """The exception for a failed quantized lookup: torch's RuntimeError texts for bad indices."""
    if status == EMB_ERROR_INDEX_OUT_OF_RANGE:
        return _runtime("%s (%s)" % ("Invalid indices data for Sparse Op." if pruned else "Invalid indices data",
                                     last_error()), status)
    return native_error(status)


def _result(kind, shape):
    count = int(np.prod(shape, dtype=np.int64))
    return kind.result(tuple(shape), count)


def embedding_bag(bits, weight, indices, offsets=None, scale_grad_by_freq=False, mode=0, pruned_weights=False,
                  per_sample_weights=None, compressed_indices_mapping=None, include_last_offset=False, op=None):
    """embedding_bag_{byte,4bit,2bit}_rowwise_offsets and embedding_bag_{byte,4bit} (see
    embedding_native.quantized); ``op`` names the op in messages."""
    tensor = _operators.Tensor
    if (_operators.quantized_embedding_bag is not None and type(weight) is tensor and type(indices) is tensor
            and type(offsets) is tensor and type(scale_grad_by_freq) is bool and type(mode) is int
            and (mode == 0 or mode == 1) and pruned_weights is False and compressed_indices_mapping is None
            and include_last_offset is False and (per_sample_weights is None or type(per_sample_weights) is tensor)):
        result = _operators.quantized_embedding_bag(weight, bits, indices, offsets, mode, per_sample_weights)
        if result is not None:
            return result
    op = op or "embedding_bag_%s_rowwise_offsets" % BIT_NAMES[bits]
    packed = packed_weight_of(weight, op)
    if packed is None:
        weight = tensor_argument(weight, op, "weight")
    indices = tensor_argument(indices, op, "indices")
    offsets = tensor_argument(offsets, op, "offsets", optional=True)
    bool_argument(scale_grad_by_freq, op, "scale_grad_by_freq")   # a gradient option: no effect here
    mode = mode_argument(mode, op)
    pruned_weights = bool_argument(pruned_weights, op, "pruned_weights")
    per_sample_weights = tensor_argument(per_sample_weights, op, "per_sample_weights", optional=True)
    compressed_indices_mapping = tensor_argument(compressed_indices_mapping, op, "compressed_indices_mapping",
                                                 optional=True)
    include_last_offset = bool_argument(include_last_offset, op, "include_last_offset")
    check_dense(op, None if packed is not None else weight, indices, offsets, per_sample_weights,
                compressed_indices_mapping)

    if bits != 8 and per_sample_weights is not None and dtype_name(per_sample_weights) not in ("float32", "float16"):
        raise _runtime("Expect fp32 or fp16 weights, but found%s instead" % scalar_type_name(per_sample_weights),
                       EMB_ERROR_UNSUPPORTED_DTYPE)
    index_shape = tuple(indices.shape)
    if len(index_shape) not in (1, 2):
        raise _runtime("qembedding/qembedding_bag operator supports 1 or 2d indices, got %d" % len(index_shape))
    name = "embedding_bag_byte" if bits == 8 else "embedding_bag_4bit/embedding_bag_2bit"
    bag_size = 0
    if len(index_shape) == 2:
        if offsets is not None:
            raise _runtime("%s operator: input is 2D, then offsets has to be None, as input is treated is a "
                           "mini-batch of fixed length sequences." % name)
        bag_size = index_shape[1]
        if bag_size == 0:
            raise _runtime("step must be nonzero")
    elif offsets is None:
        raise _runtime("embedding_bag_byte expects offsets to be set for 1D indices." if bits == 8 else
                       "embedding_bag_4bit/embedding_bag_2bit operator expects offsets to be set for 1D indices.")
    index, index_code = _index_array(indices, "indices")
    offset = offset_code = None
    if offsets is not None:
        if dtype_name(offsets) not in ("int32", "int64"):
            raise _runtime("Expect 32 or 64 bit offsets, but found %s instead." % scalar_type_name(offsets),
                           EMB_ERROR_UNSUPPORTED_DTYPE)
    table = _table(weight, bits, op, packed)
    if offsets is not None:
        if len(offsets.shape) != 1:
            raise _check_failed("offsets.dim() == 1")
        offset, offset_code = _index_array(offsets, "offsets")
    mapping = _mapping(pruned_weights, compressed_indices_mapping, op)
    if bits == 8 and per_sample_weights is not None and dtype_name(per_sample_weights) != "float32":
        raise _runtime("expected scalar type Float but found %s" % scalar_type_name(per_sample_weights),
                       EMB_ERROR_UNSUPPORTED_DTYPE)

    if per_sample_weights is not None and mode != EMB_BAG_SUM:
        # F.embedding_bag's refusal (torch's quantized ops ignore mode and always sum).
        raise error(EmbeddingNotSupportedError, EMB_ERROR_NOT_SUPPORTED,
                    "embedding_bag: per_sample_weights was not None. per_sample_weights is only supported for "
                    "mode='sum' (got mode='mean'). Please open a feature request on GitHub.")

    num_indices = index.shape[0]
    bags = emb_bags()
    bags.indices = _kind(index).address(index)
    bags.index_dtype = index_code
    bags.reserved = 0
    bags.padding_idx = EMB_NO_PADDING
    if offset is None:
        # torch's offsets for a 2-D input are arange(0, B*L, L): with include_last_offset the last
        # of the B fixed-size bags is dropped (B - 1 bags), as torch computes it.
        bags.offsets = None
        bags.offsets_dtype = EMB_DTYPE_INT64
        bags.num_offsets = 0
        bags.bag_size = bag_size
        bags.include_last_offset = 0
        if include_last_offset and num_indices:
            num_indices -= bag_size
        num_bags = num_indices // bag_size
    else:
        bags.offsets = _kind(offset).address(offset)
        bags.offsets_dtype = offset_code
        bags.num_offsets = offset.shape[0]
        bags.bag_size = 0
        bags.include_last_offset = 1 if include_last_offset else 0
        num_bags = offset.shape[0] - 1 if include_last_offset else offset.shape[0]
        if include_last_offset and offset.shape[0]:
            # torch reads positions up to the last offset only: later ones are in no bag.
            last = int(offset[offset.shape[0] - 1])
            if 0 <= last <= num_indices:
                num_indices = last
    bags.num_indices = num_indices
    psw = None
    if per_sample_weights is not None:
        psw = _flat_float32(per_sample_weights)
        if psw.shape[0] < num_indices:
            raise _runtime("%s: per_sample_weights has %d elements, the bags use %d positions"
                           % (op, psw.shape[0], num_indices))
        bags.per_sample_weights = _kind(psw).address(psw)
    else:
        bags.per_sample_weights = None
    if num_bags < 0:
        raise _runtime("include_last_offset: number of offset should be at least 1")
    if mapping is not None and mapping.shape[0] == 0:
        # The C ABI reads an empty mapping as "not pruned": every index is out of this one's range.
        if num_indices:
            raise _runtime("Invalid indices data for Sparse Op. (compressed_indices_mapping is empty)",
                           EMB_ERROR_INDEX_OUT_OF_RANGE)
        mapping = None
    out, out_address = _result(table.kind, (num_bags, table.dim))
    if table.dim == 0:
        _check_zero_width_bags(bags, index, num_indices, mapping, table.rows, offset, include_last_offset)
        return out
    status = emb_quantized_embedding_bag(table.address, bits, table.rows, table.dim, byref(bags), mode,
                                         None if mapping is None else _kind(mapping).address(mapping),
                                         0 if mapping is None else mapping.shape[0],
                                         out_address, num_bags * table.dim)
    if status:
        raise _bag_failure(status, mapping is not None, offset, index.shape[0], include_last_offset)
    return out


def _check_index_values(values, limit, pruned):
    """Every value in [0, limit), as the library checks them (for tables it cannot take: D = 0)."""
    bad = np.flatnonzero((values < 0) | (values >= limit))
    if bad.size:
        raise _runtime("%s (index %d at position %d is not below %d)"
                       % ("Invalid indices data for Sparse Op." if pruned else "Invalid indices data",
                          int(values[bad[0]]), int(bad[0]), limit), EMB_ERROR_INDEX_OUT_OF_RANGE)


def _check_zero_width_bags(bags, index, num_indices, mapping, rows, offset, include_last_offset):
    """The checks of a bag call on a table of dimension 0 (torch reads D = 0 from a packed width of 8
    or 4 bytes and returns empty rows): the layout, the indices and mapping entries the bags use."""
    count = c_int64()
    status = emb_embedding_bag_count(byref(bags), byref(count))
    if status:
        raise _bag_failure(status, mapping is not None, offset, index.shape[0], include_last_offset)
    values = _kind(index).to_numpy(index)[:num_indices]
    if mapping is None:
        _check_index_values(values, rows, False)
        return
    _check_index_values(values, mapping.shape[0], True)
    entries = _kind(mapping).to_numpy(mapping)[values]
    if ((entries < -1) | (entries >= rows)).any():
        raise _runtime("compressed_indices_mapping entries must be -1 or rows of the table (0 to %d)" % (rows - 1),
                       EMB_ERROR_INDEX_OUT_OF_RANGE)


def _bag_failure(status, pruned, offset, num_indices, include_last_offset):
    """torch's text where torch refuses the layout too ("Expect the lengths data to be less than
    indices size" for offsets past the indices), else the library's."""
    if status == EMB_ERROR_INDEX_OUT_OF_RANGE:
        return _lookup_failure(status, pruned)
    if offset is not None and offset.shape[0] and int(offset[offset.shape[0] - 1]) > num_indices:
        return _runtime("Expect the lengths data to be less than indices size (%s)" % last_error(), status)
    return native_error(status)


def embedding(bits, weight, indices, pruned_weights=False, op=None):
    """embedding_byte / embedding_4bit (see embedding_native.quantized)."""
    op = op or "embedding_%s" % BIT_NAMES[bits]
    packed = packed_weight_of(weight, op)
    if packed is None:
        weight = tensor_argument(weight, op, "weight")
    indices = tensor_argument(indices, op, "indices")
    pruned_weights = bool_argument(pruned_weights, op, "pruned_weights")
    check_dense(op, None if packed is not None else weight, indices)
    index_shape = tuple(indices.shape)
    if len(index_shape) not in (1, 2):
        raise _runtime("qembedding/qembedding_bag operator supports 1 or 2d indices, got %d" % len(index_shape))
    index, index_code = _index_array(indices, "indices")
    table = _table(weight, bits, op, packed)
    if pruned_weights:
        # torch's op has no compressed_indices_mapping argument to read ("bad optional access").
        raise _runtime("%s: pruned_weights=True needs a compressed_indices_mapping, which this op does not take "
                       "(torch: bad optional access)" % op)
    count = index.shape[0]
    out, out_address = _result(table.kind, index_shape + (table.dim,))
    if count == 0:
        return out
    if table.dim == 0:
        _check_index_values(_kind(index).to_numpy(index), table.rows, False)
        return out
    status = emb_quantized_embedding(table.address, bits, table.rows, table.dim, _kind(index).address(index),
                                     index_code, count, None, 0, out_address, count * table.dim)
    if status:
        raise _lookup_failure(status, False)
    return out
