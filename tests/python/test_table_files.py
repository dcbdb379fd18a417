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
from embedding_native import tables

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


def test_table_past_two_to_the_31_elements(tmp_path):
    rows, dim = 2**31 + 5, 1
    path = tmp_path / "huge.npy"
    from embedding_native._tables import element_types, npy
    header = npy.encode_header(element_types.FLOAT32, (rows, dim))
    with open(path, "wb") as f:
        f.write(header)
        try:
            f.truncate(len(header) + rows * dim * 4)
        except OSError as error:
            pytest.skip(f"the file system cannot make an 8 GiB sparse file: {error}")
    if os.stat(path).st_blocks * 512 > 1 << 20:
        pytest.skip("the file system does not make sparse files")
    loaded = tables.load(path)
    assert loaded.shape == (rows, dim)
    loaded_large = np.asarray(loaded)
    indices = np.array([0, 2**31 - 1, 2**31, rows - 1], dtype=np.int64)
    looked_up = F.embedding(indices, loaded_large)
    np.testing.assert_array_equal(looked_up, np.zeros((4, 1), np.float32))
    with open(path, "r+b") as f:  # the last row, written through another handle, is served
        f.seek(len(header) + (rows - 1) * 4)
        f.write(np.float32(3.5).tobytes())
    assert F.embedding(indices, loaded_large)[-1, 0] == 3.5


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
