"""The .safetensors header: 8 bytes little-endian N, then N bytes of JSON mapping each tensor's
name to ``{"dtype", "shape", "data_offsets": [begin, end]}`` (offsets relative to the byte after
the header) plus an optional ``"__metadata__"`` of string pairs, then the data. We pad the JSON
with spaces so the data starts on an 8-byte boundary, as the safetensors library does.

A file may hold several tensors; its data buffer must be exactly the tensors' bytes, without
holes or overlaps (the safetensors library's own rule)."""

import json
import struct

from . import element_types

DEFAULT_NAME = "weight"
DATA_ALIGNMENT = 8
_LENGTH_BYTES = 8
#: The safetensors library refuses headers past 100 MB; so do we.
_MAX_HEADER_BYTES = 100_000_000


def encode_header(element_type, shape, name=DEFAULT_NAME, metadata=None):
    """The bytes before the data of a file holding one tensor ``name``."""
    nbytes = _element_count(shape) * element_type.itemsize
    fields = {}
    if metadata is not None:
        if not isinstance(metadata, dict) or not all(isinstance(k, str) and isinstance(v, str)
                                                     for k, v in metadata.items()):
            raise TypeError("metadata must be a dict of str to str")
        fields["__metadata__"] = metadata
    if not isinstance(name, str) or name == "__metadata__":
        raise ValueError(f"invalid tensor name {name!r}")
    fields[name] = {"dtype": element_type.safetensors_dtype, "shape": list(shape),
                    "data_offsets": [0, nbytes]}
    text = json.dumps(fields, separators=(",", ":")).encode("utf8")
    text += b" " * (-(_LENGTH_BYTES + len(text)) % DATA_ALIGNMENT)
    return struct.pack("<Q", len(text)) + text


def read_header(file, file_size, name, describe):
    """Reads the header; returns ``(element_type, shape, data_offset, metadata)`` of tensor
    ``name`` (which may be None when the file holds one tensor)."""
    length_bytes = file.read(_LENGTH_BYTES)
    if len(length_bytes) < _LENGTH_BYTES:
        raise describe("not a .safetensors file (shorter than the 8-byte header length)")
    (header_length,) = struct.unpack("<Q", length_bytes)
    if header_length > _MAX_HEADER_BYTES:
        raise describe(f"the header length {header_length} exceeds the {_MAX_HEADER_BYTES}-byte limit")
    buffer_start = _LENGTH_BYTES + header_length
    if buffer_start > file_size:
        raise describe(f"the header length {header_length} runs past the end of the file ({file_size} bytes)")
    raw = file.read(header_length)
    if len(raw) < header_length:
        raise describe("the header is truncated")
    if not raw.startswith(b"{"):
        raise describe("the header is not a JSON object")
    try:
        fields = json.loads(raw.decode("utf8"), object_pairs_hook=_refuse_duplicate_keys)
    except (UnicodeDecodeError, ValueError, RecursionError) as error:
        raise describe(f"the header is not valid JSON ({error})") from None
    if not isinstance(fields, dict):
        raise describe("the header is not a JSON object")
    metadata = fields.pop("__metadata__", None)
    if metadata is not None and not (isinstance(metadata, dict)
                                     and all(isinstance(v, str) for v in metadata.values())):
        raise describe("__metadata__ is not a map of strings")
    tensors = {key: _check_entry(key, entry, describe) for key, entry in fields.items()}
    _check_buffer_layout(tensors, file_size - buffer_start, describe)
    if name is None:
        if len(tensors) != 1:
            raise describe(f"the file holds {len(tensors)} tensors ({', '.join(sorted(tensors))}); "
                           "pass name= to choose one")
        (name,) = tensors
    if name not in tensors:
        raise describe(f"the file holds no tensor named {name!r} (it has {', '.join(sorted(tensors)) or 'none'})")
    element_type, shape, (begin, _) = tensors[name]
    if element_type is None:
        raise describe(f"tensor {name!r} has dtype {fields[name]['dtype']!r}, which is not supported "
                       f"(tables are {', '.join(element_types.BY_SAFETENSORS_DTYPE)})")
    if len(shape) != 2:
        raise describe(f"tensor {name!r} has shape {shape}, not 2-D; a table is (num_embeddings, embedding_dim)")
    data_offset = buffer_start + begin
    if data_offset % element_type.itemsize:
        raise describe(f"tensor {name!r} starts at byte {data_offset}, not aligned to its "
                       f"{element_type.itemsize}-byte elements")
    return element_type, tuple(shape), data_offset, metadata


def _refuse_duplicate_keys(pairs):
    keys = [key for key, _ in pairs]
    if len(set(keys)) != len(keys):
        raise ValueError("duplicate key")
    return dict(pairs)


# Element sizes of dtypes we do not load, so a file holding them (beside a table) is still checked.
_OTHER_ITEMSIZES = {"BOOL": 1, "I8": 1, "F8_E5M2": 1, "F8_E4M3": 1, "I16": 2, "U16": 2, "I32": 4,
                    "U32": 4, "I64": 8, "U64": 8}


def _check_entry(key, entry, describe):
    """``(element_type or None, shape, (begin, end))`` of one tensor entry, validated."""
    if not isinstance(entry, dict) or set(entry) != {"dtype", "shape", "data_offsets"}:
        raise describe(f"tensor {key!r} is not a {{dtype, shape, data_offsets}} object")
    dtype, shape, offsets = entry["dtype"], entry["shape"], entry["data_offsets"]
    element_type = element_types.BY_SAFETENSORS_DTYPE.get(dtype)
    if element_type is not None:
        itemsize = element_type.itemsize
    elif dtype in _OTHER_ITEMSIZES:
        itemsize = _OTHER_ITEMSIZES[dtype]
    else:
        raise describe(f"tensor {key!r} has unknown dtype {dtype!r}")
    if not isinstance(shape, list) or not all(type(n) is int and n >= 0 for n in shape):
        raise describe(f"tensor {key!r} has shape {shape!r}, not a list of non-negative integers")
    if not (isinstance(offsets, list) and len(offsets) == 2
            and all(type(n) is int and n >= 0 for n in offsets)):
        raise describe(f"tensor {key!r} has data_offsets {offsets!r}, not two non-negative integers")
    begin, end = offsets
    if begin > end:
        raise describe(f"tensor {key!r} has data_offsets {offsets} that end before they begin")
    if end - begin != _element_count(shape) * itemsize:
        raise describe(f"tensor {key!r} has data_offsets {offsets} ({end - begin} bytes) but shape "
                       f"{shape} of {dtype} needs {_element_count(shape) * itemsize} bytes")
    return element_type, shape, (begin, end)


def _check_buffer_layout(tensors, buffer_bytes, describe):
    """The tensors tile the data buffer exactly: no overlap, no hole, nothing after the last."""
    position = 0
    for key, (_, _, (begin, end)) in sorted(tensors.items(), key=lambda item: item[1][2]):
        if begin != position:
            problem = "overlaps the tensor before it" if begin < position else f"leaves a hole before byte {begin}"
            raise describe(f"tensor {key!r} at data_offsets {[begin, end]} {problem}")
        position = end
    if position < buffer_bytes:
        raise describe(f"the file has {buffer_bytes - position} bytes after the last tensor's data")
    if position > buffer_bytes:
        raise describe(f"the file is truncated: the data needs {position} bytes, it has {buffer_bytes}")


def _element_count(shape):
    count = 1
    for n in shape:
        count *= n
    return count

