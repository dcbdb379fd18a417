"""The element types a table file may hold, and their names in each format.

bfloat16 has no numpy type: its tables travel as the raw 16-bit words (``uint16``), which is what
safetensors' ``BF16`` stores. The .npy format has no name for it, so a bfloat16 table cannot be
saved as .npy at all (numpy would read the words back as integers)."""

import collections

ElementType = collections.namedtuple("ElementType", "name numpy_dtype itemsize npy_descr safetensors_dtype")

FLOAT32 = ElementType("float32", "<f4", 4, "<f4", "F32")
FLOAT64 = ElementType("float64", "<f8", 8, "<f8", "F64")
FLOAT16 = ElementType("float16", "<f2", 2, "<f2", "F16")
BFLOAT16 = ElementType("bfloat16", "<u2", 2, None, "BF16")
UINT8 = ElementType("uint8", "|u1", 1, "|u1", "U8")

ALL = (FLOAT32, FLOAT64, FLOAT16, BFLOAT16, UINT8)

#: .npy descr strings we read; numpy writes ``|u1`` for bytes, ``<u1`` is the same type.
BY_NPY_DESCR = {t.npy_descr: t for t in ALL if t.npy_descr is not None}
BY_NPY_DESCR["<u1"] = UINT8
BY_SAFETENSORS_DTYPE = {t.safetensors_dtype: t for t in ALL}
