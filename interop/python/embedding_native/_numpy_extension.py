"""The plain lookup and bag for numpy arrays as a CPython extension (``_numpy_calls.abi3.so``).

Through ctypes a tiny numpy lookup costs 2.5x torch's whole ``F.embedding``: every argument
crosses on its own, every array's address is read in Python and the result is allocated there
(bench/results/python-call-floor.md). The extension of ``interop/numpy/embedding_native_numpy.c``
takes the arrays whole through the buffer protocol and calls the library that ``_bindings``
loaded, so both ways run the same build and give the same bits. It answers only plain calls and
returns None for anything else (or when the library refuses a call, having written nothing); the
callers then take their checked path, which raises torch's error.

It is loaded with the package. ``make python-package`` compiles it against /usr/bin/python3's
headers for CPython's stable ABI of 3.11, so it serves CPython 3.11 and later. Elsewhere (another
Python, a package without the file, ``EMBEDDING_NATIVE_NUMPY_EXTENSION=0``) the ctypes way serves
numpy arrays as before;
``build_info()["numpy_extension"]`` says which, and why.
"""

import importlib.util
import os
import platform
import sys

import numpy as np

from . import _bindings
from ._results import FRESH_MAPPING_BYTES

#: Environment variable: "0" keeps numpy arrays on the ctypes way (for comparisons).
EXTENSION_ENV = "EMBEDDING_NATIVE_NUMPY_EXTENSION"

_FILE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "_native", "linux-x64", "_numpy_calls.abi3.so")

#: The oldest CPython whose stable ABI the extension is built for.
OLDEST_PYTHON = (3, 11)

#: The extension's ``embedding(weight, indices, out)`` and ``embedding_bag(weight, indices, offsets,
#: mode, per_sample_weights)``, or None when it is not in use.
embedding = None
embedding_bag = None

#: Why the extension is (not) in use: a sentence.
status = None


def _load():
    """Loads and binds the extension; returns the sentence for ``status``."""
    global embedding, embedding_bag
    if os.environ.get(EXTENSION_ENV, "1") == "0":
        return "off: %s=0" % EXTENSION_ENV
    if platform.python_implementation() != "CPython" or sys.version_info[:2] < OLDEST_PYTHON:
        return "off: built for CPython %d.%d and later, running %s %s" % (
            OLDEST_PYTHON + (platform.python_implementation(), platform.python_version()))
    if not os.path.isfile(_FILE):
        return "off: %s is not built (make python-package builds it)" % _FILE
    try:
        spec = importlib.util.spec_from_file_location(__package__ + "._numpy_calls", _FILE)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        version = module.bind(_bindings.LIBRARY.path, np, FRESH_MAPPING_BYTES)
    except (ImportError, OSError) as e:
        return "off: cannot load %s: %s" % (_FILE, e)
    if version != _bindings.emb_version_number():
        return "off: %s did not bind to %s" % (_FILE, _bindings.LIBRARY.path)
    embedding, embedding_bag = module.embedding, module.embedding_bag
    return "on: %s" % _FILE


status = _load()
