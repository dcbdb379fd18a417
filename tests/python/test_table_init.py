"""Initialising tables in place (no table-sized temporary) and the progress bar of long table work.

* ``reset_parameters`` of the numpy modules gives the values of one ``rng.standard_normal`` call,
  and that of the torch drop-ins the values of ``torch.nn.Embedding`` / ``EmbeddingBag`` for the
  same seed, however the table is cut into blocks (the block size is shrunk here so that small
  tables cross many blocks, with sizes that are and are not multiples of 16 elements).
* A new 95 MiB..381 MiB table raises the process's peak memory by the table's size, not two or
  three times that (measured in a fresh process: its VmHWM).
* The progress bar: drawn on a terminal for large work, never for small work or when
  ``EMBEDDING_NATIVE_PROGRESS=0``, always with ``=1``; it ends with a newline, also on failure.
"""

import io
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch

import embedding_native as en
import embedding_native.torch as ent
from embedding_native import _progress, modules, tables
from embedding_native import torch as ent_module
from embedding_native.quantized import embedding_bag_4bit_prepack, embedding_bag_byte_prepack

from conftest import PACKAGE_PARENT

SHAPES = [(1003, 3), (17, 5), (3, 5), (999, 1), (64, 16), (0, 4), (5, 0)]


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.float16])
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("module", [en.Embedding, en.EmbeddingBag])
def test_numpy_modules_draw_one_calls_values_in_blocks(monkeypatch, module, shape, dtype):
    monkeypatch.setattr(modules, "_INIT_BLOCK_BYTES", 40)
    weight = module(*shape, dtype=dtype, rng=np.random.default_rng(7)).weight
    draw_type = np.float64 if dtype == np.float64 else np.float32
    expected = np.random.default_rng(7).standard_normal(shape, dtype=draw_type).astype(dtype)
    assert weight.dtype == dtype
    np.testing.assert_array_equal(weight, expected)


def test_numpy_reset_parameters_refills_a_shared_strided_table_in_place(monkeypatch):
    monkeypatch.setattr(modules, "_INIT_BLOCK_BYTES", 24)
    storage = np.zeros((40, 6), np.float32)
    view = storage[::2, ::2]                       # not contiguous: drawn through a block buffer
    emb = en.Embedding.from_pretrained(view, padding_idx=3)
    emb._rng = np.random.default_rng(11)
    emb.reset_parameters()
    expected = np.random.default_rng(11).standard_normal((20, 3), dtype=np.float32)
    expected[3] = 0
    assert emb.weight is view
    np.testing.assert_array_equal(storage[::2, ::2], expected)
    assert not storage[1::2].any() and not storage[:, 1::2].any()


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.float16])
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("block_bytes", [64, 100, 16 << 20])
def test_torch_drop_ins_draw_torchs_values_in_blocks(monkeypatch, shape, dtype, block_bytes):
    monkeypatch.setattr(ent_module, "_INIT_BLOCK_BYTES", block_bytes)
    padding = 1 if shape[0] > 1 else None
    torch.manual_seed(3)
    expected = torch.nn.Embedding(*shape, padding_idx=padding, dtype=dtype).weight
    torch.manual_seed(3)
    ours = ent.Embedding(*shape, padding_idx=padding, dtype=dtype).weight
    assert torch.equal(ours, expected)
    torch.manual_seed(4)
    expected = torch.nn.EmbeddingBag(*shape, dtype=dtype).weight
    after_torch = torch.rand(3)
    torch.manual_seed(4)
    assert torch.equal(ent.EmbeddingBag(*shape, dtype=dtype).weight, expected)
    assert torch.equal(torch.rand(3), after_torch)     # the stream goes on where torch's does


def test_torch_reset_parameters_of_a_strided_table_is_init_normal():
    storage = torch.zeros(10, 8)
    emb = ent.Embedding.from_pretrained(storage[:, ::2], freeze=False)
    torch.manual_seed(9)
    emb.reset_parameters()
    torch.manual_seed(9)
    expected = torch.nn.init.normal_(torch.zeros(10, 8)[:, ::2])   # torch draws strided tensors its own way
    assert torch.equal(storage[:, ::2], expected)
    assert not storage[:, 1::2].any()


# The peak is VmHWM, the process's own high-water mark (ru_maxrss would carry the parent's across
# the exec of this child).
PEAK_SCRIPT = textwrap.dedent("""
    import sys
    sys.path.insert(0, {package!r})
    import torch
    torch.set_num_threads(1)
    import embedding_native as en, embedding_native.torch as ent

    def peak():
        with open("/proc/self/status") as status:
            return next(int(line.split()[1]) * 1024 for line in status if line.startswith("VmHWM:"))

    factory = {{"numpy": en.Embedding, "numpy-bag": en.EmbeddingBag, "torch": ent.Embedding}}[sys.argv[1]]
    rows, dtype = int(sys.argv[2]), sys.argv[3]
    before = peak()
    module = factory(rows, 1, dtype=getattr(torch, dtype) if sys.argv[1] == "torch" else dtype)
    print(peak() - before)
""")


@pytest.mark.parametrize("kind, rows, dtype", [
    ("numpy", 100_000_000, "float32"),       # 381 MiB; the float64 draw alone would be 763 MiB
    ("numpy-bag", 50_000_000, "float16"),    # 95 MiB; a float32 draw would be 191 MiB
    ("torch", 100_000_000, "float32"),
])
def test_a_new_table_costs_its_own_size_in_peak_memory(kind, rows, dtype):
    info = en.build_info()
    if info["tier"] != info["cpu_tier"]:
        # Python-only allocation, the same at every tier: measured once, at the best tier (9 s a run).
        pytest.skip("measured at the CPU's best tier (%s) only" % info["cpu_tier"])
    script = PEAK_SCRIPT.format(package=str(PACKAGE_PARENT))
    result = subprocess.run([sys.executable, "-c", script, kind, str(rows), dtype], capture_output=True, text=True,
                            check=True)
    growth = int(result.stdout.strip())
    table = rows * np.dtype(dtype).itemsize
    # The table, plus one 16 MiB block and what the allocator keeps: never a second table.
    assert table * 0.9 <= growth <= table + (48 << 20), (growth, table)


class _Terminal(io.StringIO):
    def isatty(self):
        return True


def test_progress_draws_on_a_terminal_for_large_work_only(monkeypatch):
    monkeypatch.delenv("EMBEDDING_NATIVE_PROGRESS", raising=False)
    small = _Terminal()
    with _progress.Progress("small", _progress.MIN_BYTES - 1, stream=small) as progress:
        progress.advance(_progress.MIN_BYTES - 1)
    assert small.getvalue() == ""
    large = _Terminal()
    with _progress.Progress("large", 2 * _progress.MIN_BYTES, stream=large) as progress:
        progress.advance(_progress.MIN_BYTES)
        progress.advance(_progress.MIN_BYTES)
    text = large.getvalue()
    assert text.startswith("\rlarge: [") and text.endswith("\n")
    assert "100.0% 2.00/2.00 GiB" in text.splitlines()[-1]
    not_a_terminal = io.StringIO()
    with _progress.Progress("large", 2 * _progress.MIN_BYTES, stream=not_a_terminal) as progress:
        progress.advance(2 * _progress.MIN_BYTES)
    assert not_a_terminal.getvalue() == ""


def test_progress_setting(monkeypatch):
    monkeypatch.setenv("EMBEDDING_NATIVE_PROGRESS", "0")
    off = _Terminal()
    with _progress.Progress("x", 4 * _progress.MIN_BYTES, stream=off) as progress:
        progress.advance(1)
    assert off.getvalue() == ""
    monkeypatch.setenv("EMBEDDING_NATIVE_PROGRESS", "1")
    forced = io.StringIO()
    with pytest.raises(KeyError):
        with _progress.Progress("x", 10, stream=forced) as progress:
            progress.advance(5)
            raise KeyError("stopped half way")
    assert " 50.0% " in forced.getvalue() and forced.getvalue().endswith(" (stopped)\n")
    monkeypatch.setenv("EMBEDDING_NATIVE_PROGRESS", "sometimes")
    with pytest.raises(ValueError, match="EMBEDDING_NATIVE_PROGRESS must be 0, 1 or auto"):
        _progress.Progress("x", 1)


@pytest.mark.parametrize("total, block, expected", [
    (0, 16, []), (10, 16, [(0, 10)]), (32, 16, [(0, 16), (16, 32)]), (40, 16, [(0, 16), (16, 40)]),
    (48, 16, [(0, 16), (16, 32), (32, 48)]), (33, 32, [(0, 33)]),
])
def test_blocks_never_leave_a_last_block_under_16(total, block, expected):
    assert list(_progress.blocks(total, block)) == expected


def test_the_long_operations_report_progress(monkeypatch, capsys, tmp_path):
    monkeypatch.setenv("EMBEDDING_NATIVE_PROGRESS", "1")
    table = np.arange(64, dtype=np.float32).reshape(8, 8)
    tables.save(tmp_path / "t.npy", table)
    np.testing.assert_array_equal(tables.load(tmp_path / "t.npy", mmap=False), table)
    embedding_bag_byte_prepack(table)
    embedding_bag_4bit_prepack(table)
    en.Embedding(4, 4)
    ent.EmbeddingBag(4, 4)
    lines = capsys.readouterr().err.split("\n")
    finals = [line.rsplit("\r", 1)[-1].split(":")[0] for line in lines if line]
    assert finals == ["saving t.npy", "loading t.npy", "quantizing to 8 bits", "quantizing to 4 bits",
                      "initialising Embedding(4, 4)", "initialising EmbeddingBag(4, 4)"]
    assert all("100.0%" in line for line in lines if line)


def test_blocked_prepack_and_load_give_the_same_bytes(monkeypatch, tmp_path):
    from embedding_native._ops import quantized as quantized_ops
    from embedding_native._tables import files
    table = np.random.default_rng(5).standard_normal((37, 8), dtype=np.float32)
    whole = [embedding_bag_byte_prepack(table), embedding_bag_4bit_prepack(table)]
    monkeypatch.setattr(quantized_ops, "_PREPACK_BLOCK_BYTES", 3 * 8 * 4)
    monkeypatch.setattr(files, "_WRITE_BLOCK_BYTES", 100)
    np.testing.assert_array_equal(embedding_bag_byte_prepack(table), whole[0])
    np.testing.assert_array_equal(embedding_bag_4bit_prepack(table), whole[1])
    tables.save(tmp_path / "t.safetensors", table)
    np.testing.assert_array_equal(tables.load(tmp_path / "t.safetensors", mmap=False), table)
