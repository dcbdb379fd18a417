"""Tables the package allocates: shape, zero fill, alignment and the huge-page advice."""

import numpy as np
import pytest

import embedding_native as en
from embedding_native.tables import HUGE_PAGE_BYTES


def _mapping_fields(address):
    """The /proc/self/smaps fields of the mapping that holds ``address``."""
    fields, inside = {}, False
    with open("/proc/self/smaps") as smaps:
        for line in smaps:
            parts = line.split()
            if "-" in parts[0] and len(parts) >= 5:
                low, high = (int(x, 16) for x in parts[0].split("-"))
                inside = low <= address < high
            elif inside and parts[0].endswith(":"):
                fields[parts[0][:-1]] = parts[1]
    return fields


def _thp_mode():
    try:
        with open("/sys/kernel/mm/transparent_hugepage/enabled") as f:
            return f.read().split("[")[1].split("]")[0]
    except (OSError, IndexError):
        return "never"


@pytest.mark.parametrize("shape", [(0, 4), (3, 5), (1000, 64), (40_000, 64)])
def test_empty_table_is_a_zeroed_contiguous_float32_array(shape):
    table = en.empty_table(*shape)
    assert table.shape == shape and table.dtype == np.float32
    assert table.flags.c_contiguous and table.flags.writeable
    assert not table.any()
    if table.size:
        table[-1, -1] = 7.0
        assert en.embedding(np.array([shape[0] - 1]), table)[0, -1] == 7.0


def test_large_tables_start_on_a_huge_page_and_are_advised():
    table = en.empty_table(HUGE_PAGE_BYTES // 4 // 64 * 3, 64)   # 6 MiB
    assert table.ctypes.data % HUGE_PAGE_BYTES == 0
    table[:] = 1.0                                                # touch every page
    fields = _mapping_fields(table.ctypes.data)
    if _thp_mode() in ("always", "madvise") and "THPeligible" in fields:
        assert fields["THPeligible"] == "1"


def test_small_tables_and_explicit_opt_out_are_ordinary_arrays():
    # An ordinary numpy allocation owns its memory (base None); a mapped table views the mapping.
    assert en.empty_table(10, 5).base is None
    assert en.empty_table(HUGE_PAGE_BYTES // 4, 1, huge_pages=False).base is None
    assert en.empty_table(HUGE_PAGE_BYTES // 4, 1).base is not None


def test_modules_allocate_their_weights_with_it():
    layer = en.Embedding(HUGE_PAGE_BYTES // 4 // 16 * 2, 16)     # 4 MiB table
    assert layer.weight.ctypes.data % HUGE_PAGE_BYTES == 0
    assert abs(float(layer.weight.std()) - 1.0) < 0.01
