"""The plain calls for torch tensors as a compiled extension (``libembedding_native_torch.so``).

A tiny call through ctypes costs twice torch's time: each argument crosses on its own and the
result is allocated from Python (bench/results/python-call-floor.md). The functions of
``interop/torch/embedding_native_torch.cpp`` (a pybind11 module built against torch, as torch's
own bindings are; torch's dispatcher, tried first, cost 0.9 µs more per call) take the tensors
whole and call the library that ``_bindings`` loaded, so both ways run the same build and give the
same bits. They answer only plain calls and return None for anything else (or when the library
refuses a call, having written nothing); the callers then take their checked path, which raises
torch's error.

They are loaded when the first torch tensor reaches a plain call (torch is imported by then), and
only into the torch they were built for: Debian's torch 1.13, whose headers ``make
python-package`` compiles them against (with /usr/bin/python3's; pybind11 refuses another Python
at import). Elsewhere (another torch, a package without the file,
``EMBEDDING_NATIVE_TORCH_OPERATORS=0``) the ctypes way serves tensors as before;
``build_info()["torch_operators"]`` says which, and why.
"""

import importlib.util
import os
import sys

from . import _bindings
from ._results import FRESH_MAPPING_BYTES

#: Environment variable: "0" keeps tensors on the ctypes way (for comparisons).
OPERATORS_ENV = "EMBEDDING_NATIVE_TORCH_OPERATORS"

#: The torch version the functions are built against (the first two parts must match).
BUILT_FOR_TORCH = "1.13"

_FILE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "_native", "linux-x64", "libembedding_native_torch.so")

#: The extension's functions once bound, or None until loaded / when unavailable.
embedding = None
embedding_bag = None
embedding_backward = None
embedding_sparse_backward = None
sparse_coalesce = None
embedding_renorm = None
embedding_bag_backward = None
quantized_embedding_bag = None
trainable_embedding = None

_NAMES = ("embedding", "embedding_bag", "embedding_backward", "embedding_sparse_backward", "sparse_coalesce",
          "embedding_renorm", "embedding_bag_backward", "quantized_embedding_bag", "trainable_embedding")

#: ``torch.Tensor`` once the extension is in use.
Tensor = None

#: Why the extension is (not) in use: None while torch is not imported, then a sentence.
status = None


def load():
    """Loads and binds the extension once; returns whether it is in use (see ``status``)."""
    global Tensor, status
    if status is not None:
        return Tensor is not None
    torch = sys.modules.get("torch")
    if torch is None:
        return False  # undecided: no tensor can have come yet
    if os.environ.get(OPERATORS_ENV, "1") == "0":
        status = "off: %s=0" % OPERATORS_ENV
    elif ".".join(torch.__version__.split(".")[:2]) != BUILT_FOR_TORCH:
        status = "off: built for torch %s, running torch %s" % (BUILT_FOR_TORCH, torch.__version__)
    elif not os.path.isfile(_FILE):
        status = "off: %s is not built (make python-package builds it)" % _FILE
    else:
        try:
            spec = importlib.util.spec_from_file_location(__package__ + ".libembedding_native_torch", _FILE)
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
            version = module.bind(_bindings.LIBRARY.path, FRESH_MAPPING_BYTES)
        except (ImportError, OSError) as e:
            status = "off: cannot load %s: %s" % (_FILE, e)
        else:
            if version != _bindings.emb_version_number():
                status = "off: %s did not bind to %s" % (_FILE, _bindings.LIBRARY.path)
            else:
                for name in _NAMES:
                    globals()[name] = getattr(module, name)
                Tensor = torch.Tensor
                status = "on: %s" % _FILE
    return Tensor is not None
