"""Table files: tables.save / tables.load round trips in .npy and .safetensors, the memory
mapping (read-only, writable + flush, tables past 2**31 elements), serving lookups from a
loaded table, and bad files refused with ValueError."""

import json
import os
import struct

import numpy as np
import pytest
import torch

import embedding_native.functional as F
import embedding_native.torch as ent
from embedding_native import optim, tables

NUMPY_TYPES = [np.float32, np.float64, np.float16, np.uint8]
TORCH_TYPES = [torch.float32, torch.float64, torch.float16, torch.bfloat16, torch.uint8]
FORMATS = ["npy", "safetensors"]


def _numpy_table(dtype, shape=(7, 5)):
    rng = np.random.default_rng(7)
    if dtype == np.uint8:
        return rng.integers(0, 256, size=shape, dtype=np.uint8)
    return rng.standard_normal(shape).astype(dtype)


def _torch_table(dtype, shape=(7, 5)):
    generator = torch.Generator().manual_seed(7)
    if dtype == torch.uint8:
        return torch.randint(0, 256, shape, dtype=torch.uint8, generator=generator)
    return torch.randn(shape, generator=generator).to(dtype)


def _safetensors_header(path):
    """The JSON header and data start, read by hand."""
    with open(path, "rb") as f:
        (length,) = struct.unpack("<Q", f.read(8))
        return json.loads(f.read(length)), 8 + length


# ---- round trips -----------------------------------------------------------------------------

@pytest.mark.parametrize("format", FORMATS)
@pytest.mark.parametrize("dtype", NUMPY_TYPES, ids=lambda t: t.__name__)
@pytest.mark.parametrize("mmap", [True, False])
def test_numpy_round_trip(tmp_path, format, dtype, mmap):
    table = _numpy_table(dtype)
    path = tmp_path / f"table.{format}"
    tables.save(path, table)
    loaded = tables.load(path, mmap=mmap)
    assert loaded.dtype == table.dtype and loaded.shape == table.shape
    np.testing.assert_array_equal(loaded, table)
    assert isinstance(loaded, np.memmap) == mmap
    assert loaded.flags.writeable != mmap  # a mapping is read-only; a copy is the caller's


@pytest.mark.parametrize("format", FORMATS)
@pytest.mark.parametrize("dtype", TORCH_TYPES, ids=str)
def test_torch_round_trip(tmp_path, format, dtype):
    table = _torch_table(dtype)
    path = tmp_path / f"table.{format}"
    if dtype == torch.bfloat16 and format == "npy":
        with pytest.raises(ValueError, match="safetensors"):
            tables.save(path, table)
        assert not path.exists() and os.listdir(tmp_path) == []
        return
    tables.save(path, table)
    loaded = tables.load(path)
    if dtype == torch.bfloat16:
        assert loaded.dtype == torch.bfloat16
        assert torch.equal(loaded, table)
    else:
        assert torch.equal(torch.from_numpy(np.array(loaded)), table)


@pytest.mark.parametrize("dtype", NUMPY_TYPES, ids=lambda t: t.__name__)
def test_npy_agrees_with_numpy(tmp_path, dtype):
    table = _numpy_table(dtype)
    ours, numpys = tmp_path / "ours.npy", tmp_path / "numpys.npy"
    tables.save(ours, table)
    np.save(numpys, table)
    read = np.load(ours)
    assert read.dtype == table.dtype
    np.testing.assert_array_equal(read, table)
    np.testing.assert_array_equal(tables.load(numpys), table)
    with open(ours, "rb") as f:
        assert f.read(8) == b"\x93NUMPY\x01\x00"
        (header_length,) = struct.unpack("<H", f.read(2))
    assert (10 + header_length) % 64 == 0


def test_npy_version_2_header_for_huge_shapes(tmp_path):
    # The header only needs version 2.0 past 65535 bytes, which no 2-D shape reaches; build the
    # header directly and check numpy reads it.
    from embedding_native._tables import element_types, npy
    header = npy.encode_header(element_types.FLOAT32, (3, 4))
    assert header[6:8] == b"\x01\x00"
    path = tmp_path / "v2.npy"
    text = "{'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }"
    text += " " * (-(12 + len(text) + 1) % 64) + "\n"
    table = np.arange(12, dtype=np.float32).reshape(3, 4)
    path.write_bytes(b"\x93NUMPY\x02\x00" + struct.pack("<I", len(text)) + text.encode() + table.tobytes())
    np.testing.assert_array_equal(np.load(path), table)
    np.testing.assert_array_equal(tables.load(path), table)


@pytest.mark.parametrize("dtype", TORCH_TYPES, ids=str)
def test_safetensors_header_by_hand(tmp_path, dtype):
    table = _torch_table(dtype)
    path = tmp_path / "table.safetensors"
    tables.save(path, table, name="emb.weight", metadata={"format": "pt"})
    header, data_start = _safetensors_header(path)
    names = {torch.float32: "F32", torch.float64: "F64", torch.float16: "F16", torch.bfloat16: "BF16",
             torch.uint8: "U8"}
    nbytes = table.numel() * table.element_size()
    assert header == {"__metadata__": {"format": "pt"},
                      "emb.weight": {"dtype": names[dtype], "shape": [7, 5], "data_offsets": [0, nbytes]}}
    assert data_start % 8 == 0
    raw = path.read_bytes()[data_start:]
    assert len(raw) == nbytes
    words = torch.frombuffer(bytearray(raw), dtype=dtype).reshape(7, 5)
    assert torch.equal(words, table)
    assert torch.equal(torch.as_tensor(np.array(tables.load(path, name="emb.weight")))
                       if dtype != torch.bfloat16 else tables.load(path, name="emb.weight"), table)


def test_non_contiguous_and_big_endian_tables(tmp_path):
    table = _numpy_table(np.float32, (9, 6))
    for source in (table[::2, 1:], table.T, table.astype(">f4")):
        for format in FORMATS:
            path = tmp_path / f"t.{format}"
            tables.save(path, source)
            loaded = tables.load(path)
            assert loaded.dtype == np.dtype("<f4")
            np.testing.assert_array_equal(loaded, source)


def test_empty_tables(tmp_path):
    for shape in [(0, 4), (4, 0), (0, 0)]:
        for format in FORMATS:
            path = tmp_path / f"t.{format}"
            tables.save(path, np.zeros(shape, np.float32))
            loaded = tables.load(path)
            assert loaded.shape == shape and loaded.dtype == np.float32


def test_save_refuses_what_is_not_a_table(tmp_path):
    with pytest.raises(ValueError, match="2-D"):
        tables.save(tmp_path / "t.npy", np.zeros(4, np.float32))
    with pytest.raises(TypeError, match="int64"):
        tables.save(tmp_path / "t.npy", np.zeros((2, 2), np.int64))
    with pytest.raises(TypeError, match="int32"):
        tables.save(tmp_path / "t.safetensors", torch.zeros(2, 2, dtype=torch.int32))
    with pytest.raises(ValueError, match="suffix"):
        tables.save(tmp_path / "t.bin", np.zeros((2, 2), np.float32))
    tables.save(tmp_path / "t.bin", np.zeros((2, 2), np.float32), format="safetensors")
    assert tables.load(tmp_path / "t.bin").shape == (2, 2)
    assert sorted(os.listdir(tmp_path)) == ["t.bin"]


def test_save_replaces_the_file_atomically(tmp_path):
    path = tmp_path / "t.npy"
    tables.save(path, np.ones((3, 3), np.float32))
    old = tables.load(path)  # a mapping of the old file keeps its contents after the rename
    tables.save(path, np.full((3, 3), 2, np.float32))
    np.testing.assert_array_equal(old, np.ones((3, 3)))
    np.testing.assert_array_equal(tables.load(path), np.full((3, 3), 2))
    assert os.listdir(tmp_path) == ["t.npy"]


def test_large_table_is_written_in_blocks(tmp_path, monkeypatch):
    from embedding_native._tables import files
    monkeypatch.setattr(files, "_WRITE_BLOCK_BYTES", 64)
    table = _numpy_table(np.float32, (50, 7))
    for source in (table, table[:, ::-1]):
        tables.save(tmp_path / "t.npy", source)
        np.testing.assert_array_equal(np.load(tmp_path / "t.npy"), source)


# ---- memory mapping ---------------------------------------------------------------------------

@pytest.mark.parametrize("format", FORMATS)
def test_mapping_is_read_only_and_backed_by_the_file(tmp_path, format):
    table = np.arange(20, dtype=np.float32).reshape(4, 5)
    path = tmp_path / f"t.{format}"
    tables.save(path, table)
    loaded = tables.load(path)
    with pytest.raises(ValueError, match="read-only"):
        loaded[0, 0] = 1
    offset = os.path.getsize(path) - table.nbytes
    with open(path, "r+b") as f:  # another handle changes row 2 on disk
        f.seek(offset + 2 * 5 * 4)
        f.write(np.full(5, 42, np.float32).tobytes())
    np.testing.assert_array_equal(loaded[2], np.full(5, 42))


@pytest.mark.parametrize("format", FORMATS)
def test_writable_mapping_persists_after_flush(tmp_path, format):
    path = tmp_path / f"t.{format}"
    tables.save(path, np.zeros((4, 3), np.float32))
    loaded = tables.load(path, writable=True)
    loaded[1] = [1, 2, 3]
    loaded.flush()
    with open(path, "rb") as f:
        f.seek(os.path.getsize(path) - 4 * 3 * 4 + 3 * 4)
        assert np.frombuffer(f.read(12), np.float32).tolist() == [1, 2, 3]
    np.testing.assert_array_equal(tables.load(path, mmap=False)[1], [1, 2, 3])


@pytest.mark.parametrize("format", FORMATS)
@pytest.mark.parametrize("step", ["sgd", "adagrad"])
def test_optimizer_steps_reach_a_writable_mapping(tmp_path, format, step):
    """The fused sparse optimizer steps update a writable mapping in place: after flush the file
    holds exactly what the same steps give in memory; a read-only mapping is refused untouched."""
    path = tmp_path / f"t.{format}"
    initial = np.random.default_rng(5).standard_normal((100, 16)).astype(np.float32)
    tables.save(path, initial)
    rows = np.array([3, 7, 9, 99], dtype=np.int64)
    gradient = np.random.default_rng(6).standard_normal((4, 16)).astype(np.float32)

    def run(weight, state):
        for _ in range(3):
            if step == "sgd":
                optim.sgd_step(weight, rows, gradient, 0.1)
            else:
                optim.adagrad_step(weight, state, rows, gradient, 0.1)

    expected = initial.copy()
    run(expected, np.zeros_like(initial))
    mapped = tables.load(path, writable=True)
    run(mapped, np.zeros_like(initial))
    mapped.flush()
    del mapped
    np.testing.assert_array_equal(tables.load(path, mmap=False), expected)

    read_only = tables.load(path)
    with pytest.raises(RuntimeError, match="read-only"):
        optim.sgd_step(read_only, rows, gradient, 0.1)
    np.testing.assert_array_equal(read_only, expected)


def test_writable_bfloat16_tensor_writes_through(tmp_path):
    path = tmp_path / "t.safetensors"
    tables.save(path, torch.zeros(3, 2, dtype=torch.bfloat16))
    loaded = tables.load(path, writable=True)
    loaded[2] = 1.5
    del loaded
    assert tables.load(path)[2].tolist() == [1.5, 1.5]


def test_copy_when_not_mapped(tmp_path):
    path = tmp_path / "t.npy"
    tables.save(path, np.zeros((2, 2), np.float32))
    loaded = tables.load(path, mmap=False)
    assert loaded.flags.writeable and not isinstance(loaded, np.memmap)
    loaded[0, 0] = 5
    assert tables.load(path)[0, 0] == 0


def test_mapping_is_advised_random(tmp_path):
    path = tmp_path / "t.npy"
    tables.save(path, np.zeros((1024, 64), np.float32))
    loaded = tables.load(path)
    address = loaded._mmap and np.frombuffer(loaded._mmap, np.uint8).ctypes.data
    with open("/proc/self/smaps") as smaps:
        lines = smaps.read().splitlines()
    for i, line in enumerate(lines):
        parts = line.split()
        if "-" in parts[0] and len(parts) >= 5:
            low, high = (int(x, 16) for x in parts[0].split("-"))
            if low <= address < high:
                flags = next(l for l in lines[i + 1:] if l.startswith("VmFlags:"))
                assert " rr" in flags  # VM_RAND_READ: MADV_RANDOM took
                return
    pytest.fail("mapping not found in /proc/self/smaps")


def _memory_total():
    with open("/proc/meminfo") as meminfo:
        for line in meminfo:
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) * 1024
    pytest.skip("no MemTotal in /proc/meminfo")


def test_table_larger_than_memory_and_past_two_to_the_31_elements(tmp_path):
    """A sparse file (no disk or memory cost) of more bytes than the machine has memory and more
    than 2**31 rows serves lookups and bags: rows past 2**31 and 2**32 are addressed correctly."""
    dim = 1
    rows = max(2**31 + 5, _memory_total() * 5 // 4 // (4 * dim))
    path = tmp_path / "huge.npy"
    from embedding_native._tables import element_types, npy
    header = npy.encode_header(element_types.FLOAT32, (rows, dim))
    with open(path, "wb") as f:
        f.write(header)
        try:
            f.truncate(len(header) + rows * dim * 4)
        except OSError as error:
            pytest.skip(f"the file system cannot make a {rows * 4 >> 30} GiB sparse file: {error}")
    if os.stat(path).st_blocks * 512 > 1 << 20:
        pytest.skip("the file system does not make sparse files")
    assert os.path.getsize(path) > _memory_total()
    loaded = tables.load(path)
    assert loaded.shape == (rows, dim)
    loaded_large = np.asarray(loaded)
    indices = np.array([0, 2**31 - 1, 2**31, 2**32 + 7, rows - 1], dtype=np.int64)
    indices = indices[indices < rows]
    np.testing.assert_array_equal(F.embedding(indices, loaded_large), np.zeros((len(indices), 1), np.float32))
    with open(path, "r+b") as f:  # rows written through another handle are served
        for value, row in enumerate(indices, start=1):
            f.seek(len(header) + int(row) * 4)
            f.write(np.float32(value + 0.5).tobytes())
    expected = np.arange(1, len(indices) + 1, dtype=np.float32)[:, None] + np.float32(0.5)
    np.testing.assert_array_equal(F.embedding(indices, loaded_large), expected)
    offsets = np.array([0, 2], np.int64)
    np.testing.assert_array_equal(F.embedding_bag(indices, loaded_large, offsets, mode="sum"),
                                  np.stack([expected[:2].sum(0), expected[2:].sum(0)]))
    np.testing.assert_array_equal(F.embedding_bag(indices, loaded_large, offsets, mode="max"),
                                  np.stack([expected[:2].max(0), expected[2:].max(0)]))


# ---- serving lookups from a loaded table ------------------------------------------------------

@pytest.mark.parametrize("format", FORMATS)
def test_loaded_table_serves_our_ops(tmp_path, format):
    table = _numpy_table(np.float32, (50, 16))
    path = tmp_path / f"t.{format}"
    tables.save(path, table)
    loaded = tables.load(path)
    indices = np.array([[3, 7, 49], [0, 0, 12]], dtype=np.int64)
    np.testing.assert_array_equal(F.embedding(indices, loaded), F.embedding(indices, table))
    flat, offsets = np.array([1, 2, 3, 40, 41], np.int64), np.array([0, 2], np.int64)
    for mode in ("sum", "mean", "max"):
        np.testing.assert_array_equal(F.embedding_bag(flat, loaded, offsets, mode=mode),
                                      F.embedding_bag(flat, table, offsets, mode=mode))
    module = ent.Embedding.from_pretrained(torch.from_numpy(np.asarray(loaded)), freeze=True)
    reference = ent.Embedding.from_pretrained(torch.from_numpy(table), freeze=True)
    with torch.no_grad():
        assert torch.equal(module(torch.from_numpy(indices)), reference(torch.from_numpy(indices)))
    bag = ent.EmbeddingBag.from_pretrained(torch.from_numpy(np.asarray(loaded)), freeze=True, mode="sum")
    assert torch.equal(bag(torch.from_numpy(flat), torch.from_numpy(offsets)),
                       torch.nn.functional.embedding_bag(torch.from_numpy(flat), torch.from_numpy(table),
                                                         torch.from_numpy(offsets), mode="sum"))
    np.testing.assert_array_equal(np.asarray(loaded), table)  # read-only: nothing changed


def test_loaded_bfloat16_table_serves_torch_module(tmp_path):
    table = _torch_table(torch.bfloat16, (20, 8))
    tables.save(tmp_path / "t.safetensors", table)
    module = ent.Embedding.from_pretrained(tables.load(tmp_path / "t.safetensors"), freeze=True)
    indices = torch.tensor([0, 19, 5])
    with torch.no_grad():
        assert torch.equal(module(indices), torch.nn.functional.embedding(indices, table))


# ---- bad files ----------------------------------------------------------------------------------

def _npy_bytes(header_text, data=b"", version=b"\x01\x00"):
    text = header_text + " " * (-(10 + len(header_text) + 1) % 64) + "\n"
    return b"\x93NUMPY" + version + struct.pack("<H", len(text)) + text.encode("latin1") + data


def _good_npy(shape=(2, 3)):
    return _npy_bytes(f"{{'descr': '<f4', 'fortran_order': False, 'shape': {shape}, }}",
                      bytes(4 * shape[0] * shape[1]))


def _safetensors_bytes(fields, data, aligned=True):
    return _safetensors_text(json.dumps(fields), data, aligned)


def _safetensors_text(text, data, aligned=True):
    text = text.encode()
    if aligned:
        text += b" " * (-(8 + len(text)) % 8)
    elif (8 + len(text)) % 4 == 0:
        text += b" "
    return struct.pack("<Q", len(text)) + text + data


def _good_safetensors_fields(dtype="F32", shape=(2, 3), offsets=(0, 24)):
    return {"weight": {"dtype": dtype, "shape": list(shape), "data_offsets": list(offsets)}}


BAD_NPY = {
    "empty file": b"",
    "bad magic": b"\x93NUMPX" + _good_npy()[6:],
    "wrong version": _good_npy()[:6] + b"\x04\x00" + _good_npy()[8:],
    "truncated header": _good_npy()[:40],
    "truncated length": _good_npy()[:9],
    "header length past EOF": _good_npy()[:8] + struct.pack("<H", 5000) + _good_npy()[10:],
    "truncated data": _good_npy()[:-1],
    "trailing bytes": _good_npy() + b"\x00",
    "function call": _npy_bytes("__import__('os').system('false')", bytes(24)),
    "call inside dict": _npy_bytes("{'descr': str('<f4'), 'fortran_order': False, 'shape': (2, 3), }", bytes(24)),
    "not a dict": _npy_bytes("[1, 2, 3]", bytes(24)),
    "syntax error": _npy_bytes("{'descr': '<f4', ", bytes(24)),
    "missing key": _npy_bytes("{'descr': '<f4', 'shape': (2, 3), }", bytes(24)),
    "extra key": _npy_bytes("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), 'x': 1}", bytes(24)),
    "int64 dtype": _npy_bytes("{'descr': '<i8', 'fortran_order': False, 'shape': (2, 3), }", bytes(48)),
    "big-endian dtype": _npy_bytes("{'descr': '>f4', 'fortran_order': False, 'shape': (2, 3), }", bytes(24)),
    "structured dtype": _npy_bytes("{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (2, 3), }", bytes(24)),
    "fortran order": _npy_bytes("{'descr': '<f4', 'fortran_order': True, 'shape': (2, 3), }", bytes(24)),
    "1-D shape": _npy_bytes("{'descr': '<f4', 'fortran_order': False, 'shape': (6,), }", bytes(24)),
    "3-D shape": _npy_bytes("{'descr': '<f4', 'fortran_order': False, 'shape': (1, 2, 3), }", bytes(24)),
    "negative shape": _npy_bytes("{'descr': '<f4', 'fortran_order': False, 'shape': (-2, 3), }", bytes(24)),
    "float shape": _npy_bytes("{'descr': '<f4', 'fortran_order': False, 'shape': (2.0, 3), }", bytes(24)),
    "bool shape": _npy_bytes("{'descr': '<f4', 'fortran_order': False, 'shape': (True, 3), }", bytes(24)),
    "list shape": _npy_bytes("{'descr': '<f4', 'fortran_order': False, 'shape': [2, 3], }", bytes(24)),
    "no newline": _good_npy().replace(b"\n", b" "),
}

BAD_SAFETENSORS = {
    "shorter than length": b"\x10\x00\x00",
    "header length past EOF": struct.pack("<Q", 1 << 20) + b"{}",
    "huge header length": struct.pack("<Q", 1 << 62) + b"{}",
    "truncated header": _safetensors_bytes(_good_safetensors_fields(), bytes(24))[:30],
    "not json": struct.pack("<Q", 5) + b"{abc}",
    "json array": struct.pack("<Q", 2) + b"[]",
    "duplicate keys": _safetensors_text(
        '{"weight": %s, "weight": %s}' % ((json.dumps(_good_safetensors_fields()["weight"]),) * 2), bytes(24)),
    "truncated data": _safetensors_bytes(_good_safetensors_fields(), bytes(23)),
    "trailing bytes": _safetensors_bytes(_good_safetensors_fields(), bytes(25)),
    "unknown dtype": _safetensors_bytes(_good_safetensors_fields(dtype="F33"), bytes(24)),
    "unsupported dtype": _safetensors_bytes(_good_safetensors_fields(dtype="I32"), bytes(24)),
    "1-D shape": _safetensors_bytes(_good_safetensors_fields(shape=(6,)), bytes(24)),
    "3-D shape": _safetensors_bytes(_good_safetensors_fields(shape=(1, 2, 3)), bytes(24)),
    "negative shape": _safetensors_bytes(_good_safetensors_fields(shape=(-2, -3)), bytes(24)),
    "offsets reversed": _safetensors_bytes(_good_safetensors_fields(offsets=(24, 0)), bytes(24)),
    "offsets disagree with shape": _safetensors_bytes(_good_safetensors_fields(offsets=(0, 20)), bytes(20)),
    "hole before the data": _safetensors_bytes(_good_safetensors_fields(offsets=(4, 28)), bytes(28)),
    "misaligned data": _safetensors_bytes(_good_safetensors_fields(), bytes(24), aligned=False),
    "missing field": _safetensors_bytes({"weight": {"dtype": "F32", "shape": [2, 3]}}, bytes(24)),
    "bad metadata": _safetensors_bytes({"__metadata__": {"a": 1}, **_good_safetensors_fields()}, bytes(24)),
    "several tensors without name": _safetensors_bytes(
        {"a": {"dtype": "F32", "shape": [2, 3], "data_offsets": [0, 24]},
         "b": {"dtype": "F32", "shape": [2, 3], "data_offsets": [24, 48]}}, bytes(48)),
    "overlapping tensors": _safetensors_bytes(
        {"a": {"dtype": "F32", "shape": [2, 3], "data_offsets": [0, 24]},
         "b": {"dtype": "F32", "shape": [1, 2], "data_offsets": [16, 24]}}, bytes(24)),
}


#: What each bad file's message says: the problem it was built to have, not another one.
EXPECTED_PROBLEM = {
    "empty file": "magic", "bad magic": "magic", "wrong version": "version 4.0",
    "truncated header": "runs past the end", "truncated length": "header is truncated",
    "header length past EOF": "runs past the end", "truncated data": "truncated", "trailing bytes": "after",
    "function call": "dict literal", "call inside dict": "other than literals", "not a dict": "dict literal",
    "syntax error": "dict literal", "missing key": "expected descr", "extra key": "expected descr",
    "int64 dtype": "'<i8' is not supported", "big-endian dtype": "'>f4' is not supported",
    "structured dtype": "is not supported", "fortran order": "Fortran", "1-D shape": "not 2-D",
    "3-D shape": "not 2-D", "negative shape": "non-negative", "float shape": "non-negative",
    "bool shape": "non-negative", "list shape": "non-negative", "no newline": "newline",
    "shorter than length": "shorter", "huge header length": "limit", "not json": "not valid JSON",
    "json array": "not a JSON object", "duplicate keys": "duplicate key", "unknown dtype": "unknown dtype",
    "unsupported dtype": "not supported", "offsets reversed": "end before they begin",
    "offsets disagree with shape": "needs 24 bytes", "hole before the data": "hole",
    "misaligned data": "not aligned", "missing field": "not a {dtype", "bad metadata": "__metadata__",
    "several tensors without name": "pass name=", "overlapping tensors": "overlaps",
}


@pytest.mark.parametrize("case", BAD_NPY)
def test_bad_npy_files_raise_value_error(tmp_path, case):
    path = tmp_path / "bad.npy"
    path.write_bytes(BAD_NPY[case])
    for mmap in (True, False):
        with pytest.raises(ValueError, match="bad.npy") as error:
            tables.load(path, mmap=mmap)
        assert EXPECTED_PROBLEM[case] in str(error.value)


@pytest.mark.parametrize("case", BAD_SAFETENSORS)
def test_bad_safetensors_files_raise_value_error(tmp_path, case):
    path = tmp_path / "bad.safetensors"
    path.write_bytes(BAD_SAFETENSORS[case])
    for mmap in (True, False):
        with pytest.raises(ValueError, match="bad.safetensors") as error:
            tables.load(path, mmap=mmap)
        assert EXPECTED_PROBLEM[case] in str(error.value)


def test_bad_file_fixtures_differ_from_good_ones_only_in_the_flaw(tmp_path):
    # The crafted files are built by the same helpers as these, which load.
    (tmp_path / "good.npy").write_bytes(_good_npy())
    assert tables.load(tmp_path / "good.npy").shape == (2, 3)
    padded = {"weight": {"dtype": "F32", "shape": [2, 3], "data_offsets": [0, 24]}, "__metadata__": {"a": "b"}}
    (tmp_path / "good.safetensors").write_bytes(_safetensors_bytes(padded, bytes(24)))
    assert tables.load(tmp_path / "good.safetensors").shape == (2, 3)


def test_the_malicious_header_runs_nothing(tmp_path, monkeypatch):
    called = []
    monkeypatch.setattr(os, "system", lambda *a: called.append(a))
    path = tmp_path / "bad.npy"
    path.write_bytes(BAD_NPY["function call"])
    with pytest.raises(ValueError, match="dict literal"):
        tables.load(path)
    assert called == []


def test_name_chooses_among_several_tensors(tmp_path):
    data = np.arange(6, dtype=np.float32).tobytes() + np.arange(6, 10, dtype=np.float32).tobytes()
    fields = {"a": {"dtype": "F32", "shape": [2, 3], "data_offsets": [0, 24]},
              "b": {"dtype": "F32", "shape": [2, 2], "data_offsets": [24, 40]}}
    text = json.dumps(fields).encode()
    text += b" " * (-(8 + len(text)) % 8)
    path = tmp_path / "two.safetensors"
    path.write_bytes(struct.pack("<Q", len(text)) + text + data)
    np.testing.assert_array_equal(tables.load(path, name="b"), [[6, 7], [8, 9]])
    np.testing.assert_array_equal(tables.load(path, name="a"), np.arange(6).reshape(2, 3))
    with pytest.raises(ValueError, match="pass name="):
        tables.load(path)
    with pytest.raises(ValueError, match="no tensor named 'c'"):
        tables.load(path, name="c")


def test_bfloat16_without_torch_loads_the_raw_words(tmp_path, monkeypatch):
    table = _torch_table(torch.bfloat16)
    tables.save(tmp_path / "t.safetensors", table)
    monkeypatch.setitem(__import__("sys").modules, "torch", None)  # import torch now fails
    words = tables.load(tmp_path / "t.safetensors")
    assert isinstance(words, np.ndarray) and words.dtype == np.uint16
    np.testing.assert_array_equal(words, table.view(torch.int16).numpy().view(np.uint16))


@pytest.mark.parametrize("format", FORMATS)
def test_loaded_packed_table_serves_quantized_bags(tmp_path, format):
    import embedding_native.quantized as enq
    weight = _numpy_table(np.float32, (30, 8))
    indices, offsets = np.array([1, 2, 29, 0, 7], np.int64), np.array([0, 3], np.int64)
    for prepack, bags in ((enq.embedding_bag_byte_prepack, enq.embedding_bag_byte_rowwise_offsets),
                          (enq.embedding_bag_4bit_prepack, enq.embedding_bag_4bit_rowwise_offsets)):
        packed = np.asarray(prepack(weight))
        tables.save(tmp_path / f"packed.{format}", packed)
        loaded = tables.load(tmp_path / f"packed.{format}")
        assert loaded.dtype == np.uint8
        np.testing.assert_array_equal(np.asarray(bags(loaded, indices, offsets)),
                                      np.asarray(bags(packed, indices, offsets)))


def test_torch_parameter_and_strided_tensor(tmp_path):
    table = torch.nn.Parameter(_torch_table(torch.float32, (6, 4)))
    tables.save(tmp_path / "p.safetensors", table)
    assert torch.equal(torch.from_numpy(np.array(tables.load(tmp_path / "p.safetensors"))), table.detach())
    strided = _torch_table(torch.bfloat16, (6, 8))[:, ::3]
    tables.save(tmp_path / "s.safetensors", strided)
    assert torch.equal(tables.load(tmp_path / "s.safetensors"), strided)
    with pytest.raises(TypeError, match="dense"):
        tables.save(tmp_path / "x.safetensors", torch.eye(3).to_sparse())


def test_failed_save_leaves_the_old_file_and_no_temporary(tmp_path, monkeypatch):
    from embedding_native._tables import files
    path = tmp_path / "t.npy"
    tables.save(path, np.ones((2, 2), np.float32))

    def fail(file, array, progress):
        file.write(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(files, "_write_data", fail)
    with pytest.raises(OSError, match="disk full"):
        tables.save(path, np.zeros((2, 2), np.float32))
    assert os.listdir(tmp_path) == ["t.npy"]
    np.testing.assert_array_equal(tables.load(path), np.ones((2, 2)))
