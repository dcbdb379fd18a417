"""What was loaded, and the thread count."""

import json
import operator

from .. import _bindings, _numpy_extension, _torch_operators
from .._cpu import TIER_NAMES
from .failures import native_error


def build_info():
    """What was loaded: the library's ``emb_build_info()`` JSON as a dict, plus

    * ``library_path``: the file opened,
    * ``tier``: the tier name of the loaded build (``x86-64-v2`` / ``-v3`` / ``-v4``),
    * ``cpu_tier``: the best tier this CPU and OS run (CPUID + XGETBV, asked of the baseline
      build), or None when ``EMBEDDING_NATIVE_LIBRARY`` chose the library,
    * ``cpuinfo_tier``: the tier /proc/cpuinfo's flags name, a diagnostic only (some kernels
      omit flags the CPU has, so it may be lower than ``cpu_tier``; it never decides),
    * ``selected_by``: ``"cpu"``, ``"EMBEDDING_NATIVE_TIER"`` or ``"EMBEDDING_NATIVE_LIBRARY"``,
    * ``torch_operators``: whether torch tensors take the compiled torch extension
      (``_torch_operators``): "on: <file>", "off: <why>", or undecided while torch is not imported,
    * ``numpy_extension``: whether numpy arrays take the CPython extension (``_numpy_extension``):
      "on: <file>" or "off: <why>".
    """
    loaded = _bindings.LIBRARY
    info = json.loads(_bindings.emb_build_info().decode("utf-8"))
    info["library_path"] = loaded.path
    info["tier"] = loaded.tier_name
    info["cpu_tier"] = None if loaded.cpu_tier is None else TIER_NAMES.get(loaded.cpu_tier, str(loaded.cpu_tier))
    info["cpuinfo_tier"] = TIER_NAMES.get(loaded.cpuinfo_tier)
    info["selected_by"] = loaded.selected_by
    _torch_operators.load()
    info["torch_operators"] = _torch_operators.status or "undecided: torch is not imported"
    info["numpy_extension"] = _numpy_extension.status
    return info


def set_num_threads(num_threads):
    """Sets how many threads one library call may use, process-wide (``emb_set_num_threads``).

    1, the default, runs every call on the calling thread. With ``n > 1`` the library starts
    ``n - 1`` persistent worker threads (they block when idle) and splits large calls over them
    and the caller; results are bit-identical for every ``n``, and small calls stay on the calling
    thread. Like ``torch.set_num_threads``; ``n`` must be an integer in [1, 1024], else
    ``ValueError``.
    """
    n = operator.index(num_threads)
    if not 1 <= n <= 1024:
        raise ValueError(f"num_threads must be in [1, 1024], got {n}")
    status = _bindings.emb_set_num_threads(n)
    if status:
        raise native_error(status)


def get_num_threads():
    """The thread count set by :func:`set_num_threads` (1 until it is called)."""
    return int(_bindings.emb_get_num_threads())
