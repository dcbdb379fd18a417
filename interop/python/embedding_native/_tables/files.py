"""``save`` and ``load`` of a table as one .npy or .safetensors file."""

import mmap as _mmap
import os
import secrets

import numpy as np

from .._progress import Progress
from . import element_types, npy, read_only, safetensors

_FORMATS = ("npy", "safetensors")
#: Tables are written (and read without mmap) in blocks of about this many bytes, so a
#: non-contiguous or big-endian table never needs a whole second copy in memory, and a progress
#: bar can follow a large one.
_WRITE_BLOCK_BYTES = 16 << 20


def save(path, table, format=None, *, name=safetensors.DEFAULT_NAME, metadata=None):
    """Writes ``table`` to ``path`` as .npy or .safetensors.

    ``table`` is a 2-D numpy array or CPU torch tensor of float32, float64, float16, bfloat16
    (torch only) or uint8 (packed quantized rows). ``format`` is ``"npy"`` or ``"safetensors"``;
    by default it comes from the file's suffix. bfloat16 tables need .safetensors (dtype
    ``BF16``): .npy has no bfloat16 type. For .safetensors, ``name`` names the tensor
    (``"weight"`` by default) and ``metadata`` is an optional dict of strings stored as
    ``__metadata__``.

    The file is written beside ``path`` under a temporary name and renamed over it at the end,
    so a reader never sees half a table and a failed save leaves any earlier file intact.
    """
    path = os.fspath(path)
    format = _format_of(path, format)
    array, element_type = _table_words(table)
    if format == "npy":
        if element_type is element_types.BFLOAT16:
            raise ValueError(f"cannot save a bfloat16 table to {path!r} as .npy: the .npy format has no "
                             "bfloat16 type; use .safetensors (dtype BF16)")
        if metadata is not None:
            raise ValueError(".npy files have no metadata; use .safetensors to store metadata")
        header = npy.encode_header(element_type, array.shape)
    else:
        header = safetensors.encode_header(element_type, array.shape, name, metadata)
    with Progress(f"saving {os.path.basename(path)}", array.nbytes) as progress:
        _write_atomically(path, header, array, progress)


def load(path, mmap=True, writable=False, name=None):
    """Reads the table in a .npy or .safetensors file (a .npy file starts with its magic string).

    With ``mmap=True`` (the default) the result is a ``numpy.memmap`` over the file: nothing is
    read until rows are used, tables larger than memory work, and the mapping is advised
    ``MADV_RANDOM`` (rows are read in no order, so read-ahead only wastes the page cache) and
    ``MADV_HUGEPAGE`` where the platform has them — hints, never requirements. The result is
    read-only unless ``writable=True``; then writes to it reach the file (call its ``flush()`` to
    push them to disk). An empty table is not mapped (there are no bytes to map). With
    ``mmap=False`` the table is read into an ordinary array (``writable`` is then ignored: the
    array is a private copy).

    A float32, float64, float16 or uint8 table loads as a numpy array of that type. A bfloat16
    table (.safetensors ``BF16``) loads as a ``torch.bfloat16`` tensor sharing the array's memory
    when torch can be imported, and otherwise as a ``uint16`` numpy array of the raw bfloat16
    words (the upper halves of float32 values).

    ``name`` chooses a tensor in a .safetensors file; it is required when the file holds several.

    Every problem with the file — wrong magic or version, a header that is truncated, runs past the
    end of the file, is not a plain literal / JSON, or names an unsupported dtype, a shape that is
    not 2-D, Fortran order, data offsets that disagree with the shape, data that is truncated or
    followed by extra bytes, or misaligned — raises ``ValueError`` naming the file and the problem.
    A file that cannot be opened raises ``OSError`` (``FileNotFoundError``, ...) as ``open`` does.
    """
    path = os.fspath(path)

    def describe(problem):
        return ValueError(f"{path!r}: {problem}")

    with open(path, "r+b" if mmap and writable else "rb") as file:
        file_size = os.fstat(file.fileno()).st_size
        # The magic string decides; a file named .npy without it is reported as a bad .npy file.
        if file.read(len(npy.MAGIC)) == npy.MAGIC or path.lower().endswith(".npy"):
            if name is not None:
                raise describe(".npy files hold one unnamed table; name= applies to .safetensors")
            file.seek(0)
            element_type, shape, data_offset = npy.read_header(file, file_size, describe)
            _check_npy_length(element_type, shape, data_offset, file_size, describe)
        else:
            file.seek(0)
            element_type, shape, data_offset, _ = safetensors.read_header(file, file_size, name, describe)
        dtype = np.dtype(element_type.numpy_dtype)
        if mmap and shape[0] * shape[1] > 0:
            array = np.memmap(file, dtype=dtype, mode="r+" if writable else "r", offset=data_offset, shape=shape)
            _advise_random_access(array)
            if not writable:
                read_only.register(array)
        else:
            file.seek(data_offset)
            array = _read_data(file, dtype, shape, f"loading {os.path.basename(path)}")
            if mmap and not writable:
                array.flags.writeable = False
    return _as_bfloat16(array) if element_type is element_types.BFLOAT16 else array


def _read_data(file, dtype, shape, label):
    """The table read into a new array a block at a time (the header checks proved the length)."""
    array = np.empty(shape, dtype=dtype)
    data = memoryview(array.reshape(-1).view(np.uint8)) if array.size else memoryview(b"")
    with Progress(label, len(data)) as progress:
        for start in range(0, len(data), _WRITE_BLOCK_BYTES):
            chunk = data[start:start + _WRITE_BLOCK_BYTES]
            if file.readinto(chunk) != len(chunk):
                raise ValueError(f"{file.name!r}: the file ended early while reading the table (was it truncated "
                                 "while being read?)")
            progress.advance(len(chunk))
    return array


def _check_npy_length(element_type, shape, data_offset, file_size, describe):
    if data_offset % element_type.itemsize:
        raise describe(f"the data starts at byte {data_offset}, not aligned to its elements")
    expected = data_offset + shape[0] * shape[1] * element_type.itemsize
    if file_size < expected:
        raise describe(f"the file is truncated: shape {shape} needs {expected} bytes, the file has {file_size}")
    if file_size > expected:
        raise describe(f"the file has {file_size - expected} bytes after the table's data")


def _advise_random_access(array):
    # np.memmap keeps its mmap object in ``_mmap``; without it (another numpy) we skip the hint.
    mapping = getattr(array, "_mmap", None)
    for advice in ("MADV_RANDOM", "MADV_HUGEPAGE"):
        if mapping is not None and hasattr(_mmap, advice):
            try:
                mapping.madvise(getattr(_mmap, advice))
            except OSError:
                pass  # a hint the kernel may decline (e.g. huge pages on a file system without them)


def _as_bfloat16(words):
    try:
        import torch
    except ImportError:
        return words
    import warnings
    with warnings.catch_warnings():
        # A read-only mapping gives a tensor torch calls "not writable"; that is the point of it.
        warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
        return torch.from_numpy(words.view(np.int16)).view(torch.bfloat16)


def _format_of(path, format):
    if format is None:
        suffix = os.path.splitext(path)[1].lower().lstrip(".")
        if suffix not in _FORMATS:
            raise ValueError(f"cannot tell the format of {path!r} from its suffix; name the file "
                             ".npy or .safetensors, or pass format='npy' or format='safetensors'")
        return suffix
    if format not in _FORMATS:
        raise ValueError(f"format must be 'npy' or 'safetensors', got {format!r}")
    return format


def _table_words(table):
    """``(array, element_type)``: a 2-D numpy view of the table's elements (bfloat16 as uint16
    words), without copying."""
    if isinstance(table, np.ndarray):
        array = table
        if array.dtype.kind == "V" or array.dtype.name not in ("float32", "float64", "float16", "uint8"):
            raise TypeError(f"table must be float32, float64, float16 or uint8, got {array.dtype}")
        element_type = getattr(element_types, array.dtype.name.upper())
    elif type(table).__module__.startswith("torch") and hasattr(table, "device"):
        import torch
        if table.device.type != "cpu":
            raise TypeError(f"table must be a CPU tensor, got one on {table.device}")
        if table.layout != torch.strided:
            raise TypeError(f"table must be a dense tensor, got layout {table.layout}")
        table = table.detach()
        types = {torch.float32: element_types.FLOAT32, torch.float64: element_types.FLOAT64,
                 torch.float16: element_types.FLOAT16, torch.bfloat16: element_types.BFLOAT16,
                 torch.uint8: element_types.UINT8}
        if table.dtype not in types:
            raise TypeError(f"table must be float32, float64, float16, bfloat16 or uint8, got {table.dtype}")
        element_type = types[table.dtype]
        if element_type is element_types.BFLOAT16:
            array = table.view(torch.int16).numpy().view(np.uint16)
        else:
            array = table.numpy()
    else:
        raise TypeError(f"table must be a numpy array or a torch tensor, got {type(table).__name__}")
    if array.ndim != 2:
        raise ValueError(f"table must be 2-D (num_embeddings, embedding_dim), got shape {tuple(array.shape)}")
    return array, element_type


def _write_atomically(path, header, array, progress):
    directory = os.path.dirname(os.path.abspath(path))
    temporary = os.path.join(directory, f".{os.path.basename(path)}.{secrets.token_hex(6)}.tmp")
    # os.open with 0o666 gives the file the permissions an ordinary new file gets under the umask.
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(descriptor, "wb") as file:
            file.write(header)
            _write_data(file, array, progress)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        try:
            os.unlink(temporary)
        except OSError:
            pass
        raise


def _write_data(file, array, progress):
    """Writes the elements in C order, little-endian, a block of rows at a time."""
    little_endian = array.dtype.newbyteorder("<")
    if array.flags.c_contiguous and array.dtype == little_endian:
        data = memoryview(array.reshape(-1).view(np.uint8)) if array.size else memoryview(b"")
        for start in range(0, len(data), _WRITE_BLOCK_BYTES):
            file.write(data[start:start + _WRITE_BLOCK_BYTES])
            progress.advance(min(_WRITE_BLOCK_BYTES, len(data) - start))
        return
    row_bytes = max(array.shape[1] * array.dtype.itemsize, 1)
    rows_per_block = max(_WRITE_BLOCK_BYTES // row_bytes, 1)
    for start in range(0, array.shape[0], rows_per_block):
        block = np.ascontiguousarray(array[start:start + rows_per_block], dtype=little_endian)
        file.write(memoryview(block.reshape(-1).view(np.uint8)))
        progress.advance(block.nbytes)
