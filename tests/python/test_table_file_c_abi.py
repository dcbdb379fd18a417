"""Table files through the C ABI: what ``embedding_native.tables.save`` writes opens through
``emb_table_open`` with the shape, dtype and bytes ``tables.load`` gives, and every crafted bad file
of test_table_files.py that the Python reader refuses, the C ABI refuses too
(EMB_ERROR_INVALID_FILE, naming the same problem)."""

import ctypes
from ctypes import POINTER, Structure, c_char_p, c_int32, c_int64, c_void_p

import numpy as np
import pytest
import torch

from embedding_native import _bindings, tables
from embedding_native.errors import EMB_ERROR_INVALID_FILE, EMB_ERROR_IO, EMB_OK
from test_table_files import BAD_NPY, BAD_SAFETENSORS, EXPECTED_PROBLEM, FORMATS, TORCH_TYPES, _torch_table

EMB_DTYPE = {torch.float32: 1, torch.float64: 2, torch.float16: 3, torch.bfloat16: 4, torch.uint8: 7}


class EmbTableInfo(Structure):
    """emb_table_info from embedding_native.h."""
    _fields_ = [("data", c_void_p), ("num_embeddings", c_int64), ("embedding_dim", c_int64),
                ("dtype", c_int32), ("writable", c_int32), ("data_offset", c_int64)]


def _function(name, *argtypes):
    # Indexing gives a fresh function object: the package's own bindings keep theirs.
    fn = _bindings.LIBRARY.dll[name]
    fn.argtypes = list(argtypes)
    fn.restype = c_int32
    return fn


# EMB_API int32_t emb_table_open(const char* path, int32_t writable, const char* name, emb_table** table);
emb_table_open = _function("emb_table_open", c_char_p, c_int32, c_char_p, POINTER(c_void_p))
# EMB_API int32_t emb_table_get_info(const emb_table* table, emb_table_info* info);
emb_table_get_info = _function("emb_table_get_info", c_void_p, POINTER(EmbTableInfo))
# EMB_API int32_t emb_table_close(emb_table* table);
emb_table_close = _function("emb_table_close", c_void_p)


def _open(path, name=None):
    """(status, info or None, last error)."""
    handle = c_void_p()
    status = emb_table_open(str(path).encode(), 0, None if name is None else name.encode(), ctypes.byref(handle))
    if status != EMB_OK:
        return status, None, _bindings.emb_last_error().decode()
    info = EmbTableInfo()
    try:
        assert emb_table_get_info(handle, ctypes.byref(info)) == EMB_OK
        data = ctypes.string_at(info.data, info.num_embeddings * info.embedding_dim * _itemsize(info.dtype)) if info.data else b""
    finally:
        assert emb_table_close(handle) == EMB_OK
    return status, (info.num_embeddings, info.embedding_dim, info.dtype, info.writable, data), ""


def _itemsize(dtype):
    return {1: 4, 2: 8, 3: 2, 4: 2, 7: 1}[dtype]


@pytest.mark.parametrize("format, dtype", [(f, t) for f in FORMATS for t in TORCH_TYPES
                                           if not (f == "npy" and t == torch.bfloat16)],  # .npy has no bfloat16
                         ids=str)
def test_saved_table_opens_through_the_c_abi(tmp_path, format, dtype):
    table = _torch_table(dtype, (7, 5))
    path = tmp_path / f"table.{format}"
    tables.save(path, table)
    status, info, message = _open(path)
    assert status == EMB_OK, message
    rows, cols, emb_dtype, writable, data = info
    assert (rows, cols, emb_dtype, writable) == (7, 5, EMB_DTYPE[dtype], 0)
    loaded = tables.load(path)
    expected = loaded.view(torch.int16).numpy() if dtype == torch.bfloat16 else np.asarray(loaded)
    assert data == expected.tobytes()


def test_named_tensor_and_empty_table(tmp_path):
    path = tmp_path / "named.safetensors"
    tables.save(path, np.arange(12, dtype=np.float32).reshape(3, 4), name="emb.weight", metadata={"format": "pt"})
    status, info, _ = _open(path, name="emb.weight")
    assert status == EMB_OK and info[:3] == (3, 4, 1)
    assert np.frombuffer(info[4], np.float32).tolist() == list(range(12))
    status, _, message = _open(path, name="other")
    assert status == EMB_ERROR_INVALID_FILE and "no tensor named 'other'" in message
    tables.save(tmp_path / "empty.npy", np.zeros((0, 4), np.float32))
    status, info, _ = _open(tmp_path / "empty.npy")
    assert status == EMB_OK and info[:3] == (0, 4, 1) and info[4] == b""


#: Where the C ABI's wording differs from the Python reader's (the Python keyword is name=).
_C_ABI_WORDING = {"several tensors without name": "pass name"}


@pytest.mark.parametrize("format, case", [("npy", case) for case in BAD_NPY]
                         + [("safetensors", case) for case in BAD_SAFETENSORS])
def test_bad_files_are_refused_as_python_refuses_them(tmp_path, format, case):
    path = tmp_path / f"bad.{format}"
    path.write_bytes((BAD_NPY if format == "npy" else BAD_SAFETENSORS)[case])
    with pytest.raises(ValueError):
        tables.load(path)
    status, _, message = _open(path)
    assert status == EMB_ERROR_INVALID_FILE, message
    assert f"'{path}': " in message
    assert _C_ABI_WORDING.get(case, EXPECTED_PROBLEM[case]) in message


def test_missing_file_is_an_io_error(tmp_path):
    status, _, message = _open(tmp_path / "missing.npy")
    assert status == EMB_ERROR_IO and "missing.npy" in message
