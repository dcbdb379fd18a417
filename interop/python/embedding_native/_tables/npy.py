"""The .npy header (numpy's NEP 1 format): ``\\x93NUMPY``, a major and minor version byte, the
header length (2 bytes little-endian in version 1.0, 4 bytes in 2.0 and 3.0), then a Python dict
literal ``{'descr': ..., 'fortran_order': ..., 'shape': ...}`` padded with spaces and ending in a
newline, so that the data after it starts on a 64-byte boundary.

The header is parsed with :func:`ast.literal_eval` on a dict literal only: a file can name no
code to run."""

import ast
import struct

from . import element_types

MAGIC = b"\x93NUMPY"
DATA_ALIGNMENT = 64
_VERSION_1_MAX_HEADER = 0xFFFF
_PREFIX_BYTES = {1: len(MAGIC) + 2 + 2, 2: len(MAGIC) + 2 + 4, 3: len(MAGIC) + 2 + 4}
#: numpy refuses headers past this size too (a guard against reading a hostile length).
_MAX_HEADER_BYTES = 1 << 20


def encode_header(element_type, shape):
    """The bytes before the data: version 1.0 unless the dict needs more than 65535 bytes."""
    shape_text = "(" + ", ".join(str(n) for n in shape) + ("," if len(shape) == 1 else "") + ")"
    text = f"{{'descr': '{element_type.npy_descr}', 'fortran_order': False, 'shape': {shape_text}, }}"
    for major, length_format in ((1, "<H"), (2, "<I")):
        prefix = _PREFIX_BYTES[major]
        padded = -(prefix + len(text) + 1) % DATA_ALIGNMENT
        header = (text + " " * padded + "\n").encode("latin1")
        if major == 2 or len(header) <= _VERSION_1_MAX_HEADER:
            return MAGIC + bytes((major, 0)) + struct.pack(length_format, len(header)) + header
    raise AssertionError("unreachable")


def read_header(file, file_size, describe):
    """Reads the header at the start of ``file``; returns ``(element_type, shape, data_offset)``.

    ``describe(problem)`` builds the ValueError to raise (it names the file)."""
    prefix = file.read(len(MAGIC) + 2)
    if len(prefix) < len(MAGIC) + 2 or prefix[:len(MAGIC)] != MAGIC:
        raise describe("not a .npy file (the magic string \\x93NUMPY is missing)")
    major, minor = prefix[len(MAGIC)], prefix[len(MAGIC) + 1]
    if major not in _PREFIX_BYTES or minor != 0:
        raise describe(f".npy format version {major}.{minor} is not supported (1.0, 2.0 and 3.0 are)")
    length_format = "<H" if major == 1 else "<I"
    length_bytes = file.read(struct.calcsize(length_format))
    if len(length_bytes) < struct.calcsize(length_format):
        raise describe("the header is truncated")
    (header_length,) = struct.unpack(length_format, length_bytes)
    data_offset = _PREFIX_BYTES[major] + header_length
    if header_length > _MAX_HEADER_BYTES:
        raise describe(f"the header length {header_length} exceeds the {_MAX_HEADER_BYTES}-byte limit")
    if data_offset > file_size:
        raise describe(f"the header length {header_length} runs past the end of the file ({file_size} bytes)")
    raw = file.read(header_length)
    if len(raw) < header_length:
        raise describe("the header is truncated")
    try:
        text = raw.decode("utf8" if major == 3 else "latin1")
    except UnicodeDecodeError:
        raise describe("the header is not text") from None
    if not text.endswith("\n"):
        raise describe("the header does not end with a newline")
    fields = _parse_dict_literal(text, describe)
    if set(fields) != {"descr", "fortran_order", "shape"}:
        raise describe(f"the header has keys {sorted(map(str, fields))}; expected descr, fortran_order, shape")
    descr, fortran_order, shape = fields["descr"], fields["fortran_order"], fields["shape"]
    if not isinstance(descr, str) or descr not in element_types.BY_NPY_DESCR:
        supported = ", ".join(sorted(element_types.BY_NPY_DESCR))
        raise describe(f"element type {descr!r} is not supported (tables are {supported})")
    if fortran_order is not False:
        raise describe("the data is in Fortran (column-major) order; tables must be C order")
    if not isinstance(shape, tuple) or not all(type(n) is int and n >= 0 for n in shape):
        raise describe(f"the shape {shape!r} is not a tuple of non-negative integers")
    if len(shape) != 2:
        raise describe(f"the shape {shape!r} is not 2-D; a table is (num_embeddings, embedding_dim)")
    return element_types.BY_NPY_DESCR[descr], shape, data_offset


def _parse_dict_literal(text, describe):
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except (SyntaxError, ValueError):
        raise describe("the header is not a Python dict literal") from None
    if not isinstance(tree.body, ast.Dict):
        raise describe("the header is not a Python dict literal")
    try:
        return ast.literal_eval(tree)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        raise describe("the header holds something other than literals") from None
