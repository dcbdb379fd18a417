"""numpy arrays and CPU torch tensors behind one interface.

Every buffer is passed to the library by pointer. An :class:`ArrayKind` says how one array
library does what the operations need (address, dtype, contiguity, a new result), so the
operations are written once: ``NUMPY`` and ``TORCH`` are its two instances, and
:func:`kind_of` picks one. A :class:`Buffer` is an array as the library sees it.

Copies: read-only float32 inputs that are not C-contiguous are copied once; buffers written in
place (weight, out=) are used as they are and must be C-contiguous. Results are of the kind of
the array they derive from: a numpy array for numpy, a tensor for a tensor.

torch is never imported here: a tensor is recognised through ``sys.modules`` only if the caller
already imported torch.
"""

import sys
from functools import cached_property

import numpy as np

from .._bindings import (
    EMB_DTYPE_BFLOAT16, EMB_DTYPE_FLOAT16, EMB_DTYPE_FLOAT32, EMB_DTYPE_FLOAT64, EMB_DTYPE_INT32, EMB_DTYPE_INT64,
)
from .._results import FRESH_MAPPING_BYTES, new_float32, new_result
from ..errors import (
    EMB_ERROR_BUFFER_TOO_SMALL, EMB_ERROR_INVALID_ARGUMENT, EMB_ERROR_NOT_SUPPORTED, EMB_ERROR_UNSUPPORTED_DTYPE,
    EmbeddingNotSupportedError, EmbeddingRuntimeError,
)
from .arguments import INDEX_DTYPE_MESSAGE, TORCH_TYPE_NAMES, torch_tensor_type
from .failures import error, require_strided
from .._tables import read_only as read_only_mapping

FLOAT32 = np.dtype(np.float32)

#: emb_dtype of each table (float) dtype the library takes, by dtype name. The lookup takes them
#: all (:meth:`ArrayKind.lookup_code`); the other operations float32 only (:meth:`table_code`).
TABLE_DTYPES = {"float32": EMB_DTYPE_FLOAT32, "float64": EMB_DTYPE_FLOAT64, "float16": EMB_DTYPE_FLOAT16,
                "bfloat16": EMB_DTYPE_BFLOAT16}
#: The dtype name of each table emb_dtype.
TABLE_DTYPE_NAMES = {code: name for name, code in TABLE_DTYPES.items()}
#: emb_dtype of each index dtype, by dtype name.
INDEX_DTYPES = {"int32": EMB_DTYPE_INT32, "int64": EMB_DTYPE_INT64}


class ArrayKind:
    """How the library sees the arrays of one array library (numpy, torch)."""

    is_tensor = False

    def unsupported_table(self, x, name, lookup=False):
        """The exception for a table (float) buffer whose dtype the library does not take: the
        operations that take every float table type say so; the others take float32 only, for now."""
        if lookup:
            return error(EmbeddingNotSupportedError, EMB_ERROR_UNSUPPORTED_DTYPE,
                         "embedding_native takes float32, float64, float16 and bfloat16 tables here (numpy: no bfloat16); "
                         "got %s %s" % (name, x.dtype))
        return error(EmbeddingNotSupportedError, EMB_ERROR_UNSUPPORTED_DTYPE,
                     "embedding_native supports %s dtype float32 only in this version (got %s)" % (name, x.dtype))

    def new_float32(self, shape, zeroed=False):
        """A new float32 array of this kind (large ones from ``_results``' pool)."""
        return new_float32(shape, self.is_tensor, zeroed)

    def new_table(self, shape, code, zeroed=False):
        """A new array of table type ``code`` (an emb_dtype) of this kind; float32 ones as
        :meth:`new_float32`."""
        return new_result(shape, TABLE_DTYPE_NAMES[code], self.is_tensor, zeroed)


class _NumpyKind(ArrayKind):
    is_tensor = False
    array_type = np.ndarray
    contiguous_word = "C-contiguous"
    _index_codes = {np.dtype(np.int32): EMB_DTYPE_INT32, np.dtype(np.int64): EMB_DTYPE_INT64}
    # numpy has no bfloat16: bfloat16 tables come as torch tensors.
    _table_codes = {np.dtype(np.float32): EMB_DTYPE_FLOAT32, np.dtype(np.float64): EMB_DTYPE_FLOAT64,
                    np.dtype(np.float16): EMB_DTYPE_FLOAT16}

    @staticmethod
    def address(x):
        return x.ctypes.data

    @staticmethod
    def dtype_name(x):
        return x.dtype.name

    @staticmethod
    def table_code(x):
        return EMB_DTYPE_FLOAT32 if x.dtype == FLOAT32 else None

    def lookup_code(self, x):
        """emb_dtype of a (native-order) table of any type the lookup takes, else None."""
        return self._table_codes.get(x.dtype)

    def index_code(self, x):
        """emb_dtype of an int32/int64 (native-order) index array, else None."""
        return self._index_codes.get(x.dtype)

    @staticmethod
    def is_contiguous(x):
        return x.flags.c_contiguous

    @staticmethod
    def contiguous(x):
        return x if x.flags.c_contiguous else np.ascontiguousarray(x)

    @staticmethod
    def check_device(x, name):
        pass

    @staticmethod
    def check_writable(x, name):
        if not x.flags.writeable:
            raise error(EmbeddingRuntimeError, EMB_ERROR_INVALID_ARGUMENT, "%s is read-only" % name)

    @staticmethod
    def empty(shape, dtype_name):
        return np.empty(shape, dtype=dtype_name)

    @staticmethod
    def result(shape, count, code=EMB_DTYPE_FLOAT32):
        """A new uninitialised result of ``count`` elements of table type ``code``, and its address
        (large float32 ones from ``_results``' pool)."""
        if code != EMB_DTYPE_FLOAT32:
            array = new_result(shape, TABLE_DTYPE_NAMES[code], False)
        else:
            array = np.empty(shape, dtype=FLOAT32) if count * 4 < FRESH_MAPPING_BYTES else new_float32(shape, False)
        return array, array.ctypes.data

    def plain_table(self, weight):
        """``(address, num_embeddings, embedding_dim, emb_dtype)`` of a C-contiguous, non-empty 2-D
        float32 table, else None (the checked path handles, and reports, everything else)."""
        if (type(weight) is not np.ndarray or weight.dtype is not FLOAT32 or weight.ndim != 2
                or not weight.flags.c_contiguous):
            return None
        rows, dim = weight.shape
        if rows == 0 or dim == 0:
            return None
        return weight.ctypes.data, rows, dim, EMB_DTYPE_FLOAT32

    def plain_indices(self, indices):
        """``(address, emb_dtype, count)`` of C-contiguous int32/int64 indices, else None."""
        code = self._index_codes.get(indices.dtype)
        if code is None or not indices.flags.c_contiguous:
            return None
        return indices.ctypes.data, code, indices.size

    def plain_lookup(self, indices, weight):
        """:meth:`plain_table` and :meth:`plain_indices` in one (one call less on the tiny-call
        path): their two tuples as one, or None."""
        code = self._index_codes.get(indices.dtype)
        if code is None or type(weight) is not np.ndarray or weight.ndim != 2:
            return None
        table = self._table_codes.get(weight.dtype)
        if table is None or not (indices.flags.c_contiguous and weight.flags.c_contiguous):
            return None
        rows, dim = weight.shape
        if rows == 0 or dim == 0:
            return None
        return weight.ctypes.data, rows, dim, table, indices.ctypes.data, code, indices.size

    @staticmethod
    def plain_weights(weights, weight, count):
        """The address of C-contiguous 1-D per-sample weights of ``weight``'s type, ``count`` of
        them, else None."""
        if weights.ndim != 1 or weights.shape[0] != count or weights.dtype != weight.dtype \
                or not weights.flags.c_contiguous:
            return None
        return weights.ctypes.data

    def indices(self, x, op, argument):
        """(contiguous int32/int64 array, emb_dtype) for a numpy index array or scalar; ``op`` and
        ``argument`` name the torch op and argument position in the dtype error, as torch does."""
        if not isinstance(x, np.ndarray):
            x = np.asarray(x)
        code = self._index_codes.get(x.dtype)
        if code is None:
            native = x.dtype.newbyteorder("=") if x.dtype.byteorder not in ("=", "|") else None
            code = self._index_codes.get(native)
            if code is None:
                name = x.dtype.name
                raise error(EmbeddingRuntimeError, EMB_ERROR_UNSUPPORTED_DTYPE,
                            INDEX_DTYPE_MESSAGE % (argument, TORCH_TYPE_NAMES.get(name, "numpy." + name), op))
            # Byte-swapped integers: the native side reads native-order values.
            x = x.astype(native)
        if not x.flags.c_contiguous:
            x = np.ascontiguousarray(x)
        return x, code

    @staticmethod
    def all_below(x, n):
        """Whether every element of the integer array ``x`` lies in [0, n)."""
        return x.size == 0 or (int(x.min()) >= 0 and int(x.max()) < n)

    @staticmethod
    def flat(x, dtype_name=None):
        """``x`` flattened, C-contiguous and (optionally) converted; no copy if it already is."""
        if dtype_name is not None and x.dtype != np.dtype(dtype_name):
            x = x.astype(dtype_name)
        elif x.dtype.byteorder not in ("=", "|"):
            x = x.astype(x.dtype.newbyteorder("="))
        return np.ascontiguousarray(x).reshape(-1)

    @staticmethod
    def out_problem(out, shape, dtype="float32"):
        """What is wrong with ``out`` as a ``dtype`` result of ``shape``, or None."""
        if out.dtype != np.dtype(dtype):
            return "out must be %s, got %s" % (dtype, out.dtype)
        if out.shape != shape:
            return "out has shape %s, the result has shape %s" % (out.shape, shape)
        if not out.flags.c_contiguous:
            return "out must be C-contiguous"
        if not out.flags.writeable:
            return "out is read-only"
        return None

    @staticmethod
    def to_numpy(x):
        return x


class _TorchKind(ArrayKind):
    is_tensor = True
    contiguous_word = "contiguous"

    # torch's objects, looked up on first use (torch is never imported here) and then kept:
    # cached_property stores each in the instance, so later reads cost an attribute lookup.
    @cached_property
    def _torch(self):
        return sys.modules["torch"]

    @cached_property
    def _tensor_type(self):
        return self._torch.Tensor

    @cached_property
    def _float32(self):
        return self._torch.float32

    @cached_property
    def _index_codes(self):
        return {self._torch.int32: EMB_DTYPE_INT32, self._torch.int64: EMB_DTYPE_INT64}

    @cached_property
    def _table_codes(self):
        torch = self._torch
        return {torch.float32: EMB_DTYPE_FLOAT32, torch.float64: EMB_DTYPE_FLOAT64, torch.float16: EMB_DTYPE_FLOAT16,
                torch.bfloat16: EMB_DTYPE_BFLOAT16}

    @staticmethod
    def address(x):
        return x.data_ptr()

    @staticmethod
    def dtype_name(x):
        return str(x.dtype)[len("torch."):]

    @staticmethod
    def table_code(x):
        return EMB_DTYPE_FLOAT32 if str(x.dtype) == "torch.float32" else None

    def lookup_code(self, x):
        return self._table_codes.get(x.dtype)

    def index_code(self, x):
        return self._index_codes.get(x.dtype)

    @staticmethod
    def is_contiguous(x):
        return x.is_contiguous()

    @staticmethod
    def contiguous(x):
        return x if x.is_contiguous() else x.contiguous()

    @staticmethod
    def check_device(x, name):
        if x.device.type != "cpu":
            raise error(EmbeddingNotSupportedError, EMB_ERROR_NOT_SUPPORTED,
                        "embedding_native runs on the CPU only; got %s on %s" % (name, x.device))

    @staticmethod
    def check_writable(x, name):
        # A tensor has no read-only flag; one over a read-only table mapping would crash the
        # process at the first write (see _tables.read_only).
        if read_only_mapping.overlaps(x.data_ptr(), x.numel() * x.element_size()):
            raise error(EmbeddingRuntimeError, EMB_ERROR_INVALID_ARGUMENT,
                        "%s is read-only (a read-only table mapping; load it with writable=True to change it)" % name)

    def empty(self, shape, dtype_name):
        torch = self._torch
        return torch.empty(shape, dtype=getattr(torch, dtype_name))

    def result(self, shape, count, code=EMB_DTYPE_FLOAT32):
        torch = self._torch
        if code != EMB_DTYPE_FLOAT32:
            tensor = new_result(shape, TABLE_DTYPE_NAMES[code], True)
        else:
            tensor = torch.empty(shape, dtype=self._float32) if count * 4 < FRESH_MAPPING_BYTES else new_float32(shape, True)
        return tensor, tensor.data_ptr()

    def plain_table(self, weight):
        if (not isinstance(weight, self._tensor_type) or weight.dtype is not self._float32 or weight.dim() != 2
                or not weight.is_cpu):
            return None
        try:
            if not weight.is_contiguous():
                return None
            address = weight.data_ptr()
        except RuntimeError:
            return None  # a sparse tensor: no strides or no storage (the checked path hands it to torch)
        rows, dim = weight.shape
        if rows == 0 or dim == 0:
            return None
        return address, rows, dim, EMB_DTYPE_FLOAT32

    def plain_indices(self, indices):
        code = self._index_codes.get(indices.dtype)
        if code is None or not indices.is_cpu:
            return None
        try:
            if not indices.is_contiguous():
                return None
            return indices.data_ptr(), code, indices.numel()
        except RuntimeError:
            return None  # a sparse tensor: no strides or no storage

    def plain_lookup(self, indices, weight):
        code = self._index_codes.get(indices.dtype)
        if code is None or not isinstance(weight, self._tensor_type):
            return None
        table = self._table_codes.get(weight.dtype)
        if table is None or weight.dim() != 2 or not (indices.is_cpu and weight.is_cpu):
            return None
        try:
            if not (indices.is_contiguous() and weight.is_contiguous()):
                return None
            weight_address = weight.data_ptr()
            index_address = indices.data_ptr()
        except RuntimeError:
            return None  # a sparse tensor: no strides or no storage (the checked path hands it to torch)
        rows, dim = weight.shape
        if rows == 0 or dim == 0:
            return None
        return weight_address, rows, dim, table, index_address, code, indices.numel()

    @staticmethod
    def plain_weights(weights, weight, count):
        if weights.dtype != weight.dtype or weights.dim() != 1 or weights.shape[0] != count or not weights.is_cpu:
            return None
        try:
            return weights.data_ptr() if weights.is_contiguous() else None
        except RuntimeError:
            return None  # a sparse tensor: no strides or no storage

    def indices(self, x, op, argument):
        """(contiguous int32/int64 CPU tensor, emb_dtype) for a torch index tensor."""
        dtype_name = str(x.dtype)
        code = INDEX_DTYPES.get(dtype_name[len("torch."):]) if dtype_name.startswith("torch.") else None
        if code is None:
            type_name = TORCH_TYPE_NAMES.get(dtype_name[len("torch."):], dtype_name)
            raise error(EmbeddingRuntimeError, EMB_ERROR_UNSUPPORTED_DTYPE, INDEX_DTYPE_MESSAGE % (argument, type_name, op))
        if x.device.type != "cpu":
            raise error(EmbeddingNotSupportedError, EMB_ERROR_NOT_SUPPORTED,
                        "embedding_native runs on the CPU only; got indices on %s" % x.device)
        try:
            if not x.is_contiguous():
                x = x.contiguous()
        except RuntimeError:  # a sparse CSR tensor has no strides
            require_strided(x, "indices")
            raise
        return x, code

    def all_below(self, x, n):
        if x.numel() == 0:
            return True
        low, high = self._torch.aminmax(x)
        return int(low) >= 0 and int(high) < n

    def flat(self, x, dtype_name=None):
        if x.device.type != "cpu":
            raise error(EmbeddingNotSupportedError, EMB_ERROR_NOT_SUPPORTED,
                        "embedding_native runs on the CPU only; got a tensor on %s" % x.device)
        x = x.detach()
        if dtype_name is not None and self.dtype_name(x) != dtype_name:
            x = x.to(getattr(self._torch, dtype_name))
        x = x.reshape(-1)
        return x if x.is_contiguous() else x.contiguous()

    @staticmethod
    def out_problem(out, shape, dtype="float32"):
        if str(out.dtype) != "torch." + dtype:
            return "out must be %s, got %s" % (dtype, out.dtype)
        if out.device.type != "cpu":
            return "out must be a CPU tensor, got one on %s" % out.device
        if tuple(out.shape) != shape:
            return "out has shape %s, the result has shape %s" % (tuple(out.shape), shape)
        if not out.is_contiguous():
            return "out must be contiguous"
        if out.requires_grad:
            return "out must not require grad: writing it bypasses autograd"
        return None

    @staticmethod
    def to_numpy(x):
        return x.numpy()


NUMPY = _NumpyKind()
TORCH = _TorchKind()


def kind_of(x):
    """TORCH for a torch tensor, NUMPY for a numpy array, else None."""
    tensor_type = torch_tensor_type()
    if tensor_type is not None and isinstance(x, tensor_type):
        return TORCH
    if isinstance(x, np.ndarray):
        return NUMPY
    return None


def is_tensor(x):
    tensor_type = torch_tensor_type()
    return tensor_type is not None and isinstance(x, tensor_type)


class Buffer:
    """An array as the library sees it: the object, its address, shape and kind, and for a table
    (float) buffer its emb_dtype ``code`` (None for index and row buffers)."""

    __slots__ = ("array", "address", "shape", "kind", "is_tensor", "code")

    def __init__(self, array, kind, code=None):
        self.array = array
        self.kind = kind
        self.is_tensor = kind.is_tensor
        self.address = kind.address(array)
        self.shape = tuple(array.shape)
        self.code = code

    @property
    def dtype_name(self):
        """The table type's name ("float32", "bfloat16", ...)."""
        return TABLE_DTYPE_NAMES[self.code]

    def empty(self, shape, dtype="float32"):
        """A new uninitialised array of this buffer's kind."""
        return self.kind.empty(shape, dtype)

    def like(self, shape, zeroed=False):
        """A new array of this table buffer's kind and type (float32 ones from ``_results``' pool when large)."""
        return self.kind.new_table(shape, self.code, zeroed)

    def zeros(self, shape):
        """A new array of zeros of this table buffer's kind and type."""
        return self.like(shape, zeroed=True)


def float_buffer(x, name, writable=False, any_type=False):
    """A float32 (or, with ``any_type``, any table type's) numpy array or CPU tensor as a Buffer; a
    read-only one is made C-contiguous (copy) if needed, a writable one must already be, and must
    be writable."""
    kind = kind_of(x)
    if kind is None:
        raise TypeError("argument '%s' must be a numpy.ndarray or torch.Tensor, not %s" % (name, type(x).__name__))
    code = kind.lookup_code(x) if any_type else kind.table_code(x)
    if code is None:
        raise kind.unsupported_table(x, name, lookup=any_type)
    kind.check_device(x, name)
    try:
        if not kind.is_contiguous(x):
            if writable:
                raise error(EmbeddingRuntimeError, EMB_ERROR_INVALID_ARGUMENT, "%s must be %s" % (name, kind.contiguous_word))
            x = kind.contiguous(x)
        if writable:
            kind.check_writable(x, name)
        return Buffer(x, kind, code)
    except RuntimeError:  # a sparse tensor: no strides or no storage
        if kind.is_tensor:
            require_strided(x, name)
        raise


def index_buffer(x, op="embedding", argument=1):
    """int32/int64 indices (numpy, numpy scalar or CPU tensor) as (Buffer, emb_dtype), contiguous."""
    if is_tensor(x):
        kind = TORCH
    elif isinstance(x, (np.ndarray, np.generic)):
        kind = NUMPY
    else:
        raise TypeError("argument 'indices' must be a numpy.ndarray or torch.Tensor, not %s" % type(x).__name__)
    x, code = kind.indices(x, op, argument)
    try:
        return Buffer(x, kind), code
    except RuntimeError:  # a sparse COO tensor has no storage
        require_strided(x, "indices")
        raise


def rows_buffer(rows):
    """Row numbers (a sparse gradient's, max_indices) as a contiguous int64 Buffer (other integer
    types are converted, a copy of the rows only)."""
    if is_tensor(rows):
        if rows.dtype.is_floating_point or rows.dtype.is_complex or str(rows.dtype) == "torch.bool":
            raise error(EmbeddingRuntimeError, EMB_ERROR_UNSUPPORTED_DTYPE, "rows must be an integer tensor, got %s" % rows.dtype)
        if rows.device.type != "cpu":
            raise error(EmbeddingNotSupportedError, EMB_ERROR_NOT_SUPPORTED,
                        "embedding_native runs on the CPU only; got rows on %s" % rows.device)
        rows = rows.to(sys.modules["torch"].int64)
        try:
            return Buffer(rows.contiguous(), TORCH)
        except RuntimeError:  # a sparse tensor: no strides or no storage
            require_strided(rows, "rows")
            raise
    rows = np.asarray(rows)
    if rows.dtype.kind not in "iu":
        raise error(EmbeddingRuntimeError, EMB_ERROR_UNSUPPORTED_DTYPE, "rows must be integers, got %s" % rows.dtype)
    return Buffer(np.ascontiguousarray(rows, dtype=np.int64), NUMPY)


def flat_buffer(x, dtype_name=None):
    """``x`` (numpy array or tensor) flattened, C-contiguous and optionally converted, as a Buffer."""
    kind = TORCH if is_tensor(x) else NUMPY
    return Buffer(kind.flat(x, dtype_name), kind)


def dtype_name(x):
    """numpy-style dtype name of a numpy array or torch tensor ("int64", "float32", "bfloat16", ...)."""
    name = str(x.dtype)
    return name[len("torch."):] if name.startswith("torch.") else np.dtype(x.dtype).name


def as_array(x, what, op="embedding_bag"):
    """A numpy array or tensor as it is; a numpy scalar as a 0-d array; anything else a TypeError."""
    if is_tensor(x) or isinstance(x, np.ndarray):
        return x
    if isinstance(x, np.generic):
        return np.asarray(x)
    raise TypeError("%s(): argument '%s' must be a numpy.ndarray or torch.Tensor, not %s" % (op, what, type(x).__name__))


def check_out(out, shape, dtype="float32"):
    """Validates a caller's ``out=`` buffer for a ``dtype`` result of ``shape``; returns its address."""
    kind = kind_of(out)
    if kind is None:
        raise TypeError("embedding(): argument 'out' must be a numpy.ndarray or torch.Tensor, not %s"
                        % type(out).__name__)
    problem = kind.out_problem(out, shape, dtype)
    if problem is not None:
        status = EMB_ERROR_BUFFER_TOO_SMALL if problem.startswith("out has shape") else EMB_ERROR_INVALID_ARGUMENT
        raise error(EmbeddingRuntimeError, status, problem)
    return kind.address(out)
