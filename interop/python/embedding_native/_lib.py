"""Chooses and opens the native library, before anything in it runs.

The package ships one NativeAOT build per x86-64 tier::

    embedding_native/_native/linux-x64/x86-64-v2/libembedding_native.so   (Vector128 kernels)
    embedding_native/_native/linux-x64/x86-64-v3/libembedding_native.so   (Vector256, AVX2/FMA)
    embedding_native/_native/linux-x64/x86-64-v4/libembedding_native.so   (Vector512, AVX-512)

A NativeAOT binary fixes its instruction set when it is compiled and checks it on its first
call: a build the CPU cannot run aborts the whole process there, which Python cannot catch.
So the tier is decided *before* calling into it::

    if EMBEDDING_NATIVE_LIBRARY is set:            # full path, loaded as-is, no checks
        open it
    else:
        if /proc/cpuinfo lacks the v2 flags: refuse  # the v2 build would abort (_cpu.py)
        v2 = open the x86-64-v2 build               # runs on every x86-64-v2 CPU
        cpu_tier, missing = v2.emb_cpu_tier(), v2.emb_cpu_missing(t)   # CPUID + XGETBV
        if EMBEDDING_NATIVE_TIER names t and missing[t]: refuse, naming missing[t]
        tier = EMBEDDING_NATIVE_TIER or cpu_tier
        open tier's build (reuse v2 if it is v2)
    require emb_version_number() // 10000 == EXPECTED_VERSION_MAJOR

CPUID + XGETBV is the test the .NET runtime itself makes when the chosen build starts, so the
answer is exactly "the builds that start here". /proc/cpuinfo is only a guard for the baseline
and a diagnostic (``cpuinfo_tier`` in build_info): some kernels omit flags the CPU has.

When a tier above v2 is chosen the v2 build stays loaded: a NativeAOT library cannot be
unloaded. It holds only its (idle) runtime; no calls other than the CPU questions are made to it.

Libraries are opened by full path with RTLD_LOCAL, so several builds (and other copies of the
library) coexist in one process without their symbols interposing.
"""

import collections
import ctypes
import os
import platform
import sys

from . import _cpu
from .errors import LibraryLoadError, TierNotSupportedError

__all__ = ["EXPECTED_VERSION_MAJOR", "PLATFORM", "LIBRARY_ENV", "TIER_ENV", "LoadedLibrary",
           "library_path", "decide", "load"]

#: EMB_VERSION_MAJOR of the header these bindings were written against.
EXPECTED_VERSION_MAJOR = 0

#: The platform directory under ``_native`` the builds for this machine live in.
PLATFORM = "linux-x64"

#: Environment variable: full path of a library to load instead of a packaged build.
LIBRARY_ENV = "EMBEDDING_NATIVE_LIBRARY"

#: Environment variable: the tier to load (``x86-64-v2``, ``x86-64-v3`` or ``x86-64-v4``).
TIER_ENV = "EMBEDDING_NATIVE_TIER"

_LIBRARY_NAME = "libembedding_native.so"

LoadedLibrary = collections.namedtuple("LoadedLibrary", "dll path tier tier_name cpu_tier cpuinfo_tier selected_by")
LoadedLibrary.__doc__ = """The opened library and how it was chosen.

    dll:         the ctypes.CDLL
    path:        absolute path of the file opened
    tier:        emb_isa_tier() of the loaded build (an emb_isa value: 2, 3, 4, ...)
    tier_name:   "x86-64-v2", ... (from the build itself)
    cpu_tier:    emb_cpu_tier() of the baseline build (CPUID + XGETBV), None under EMBEDDING_NATIVE_LIBRARY
    cpuinfo_tier: the tier /proc/cpuinfo's flags name, a diagnostic only (may be lower: see _cpu.py)
    selected_by: "EMBEDDING_NATIVE_LIBRARY", "EMBEDDING_NATIVE_TIER" or "cpu"
"""


def library_path(tier_name):
    """The packaged library of one tier: ``<package>/_native/linux-x64/<tier>/libembedding_native.so``."""
    return os.path.join(os.path.dirname(os.path.abspath(__file__)), "_native", PLATFORM, tier_name, _LIBRARY_NAME)


def _open(path):
    """Opens ``path`` with RTLD_LOCAL; a missing or unloadable file is a LibraryLoadError."""
    if not os.path.isfile(path):
        raise LibraryLoadError(
            "embedding_native: library not found: %s (build it with `make python-package`, "
            "or set %s to a libembedding_native.so)" % (path, LIBRARY_ENV))
    try:
        return ctypes.CDLL(path, mode=os.RTLD_LOCAL)
    except OSError as e:
        raise LibraryLoadError("embedding_native: cannot open %s: %s" % (path, e)) from e


def _int_function(dll, name):
    """A no-argument ``int32_t`` function of ``dll`` (used before the full bindings exist)."""
    fn = getattr(dll, name)
    fn.argtypes = []
    fn.restype = ctypes.c_int32
    return fn


def _check_platform():
    machine = platform.machine().lower()
    if not sys.platform.startswith("linux") or machine not in ("x86_64", "amd64"):
        raise LibraryLoadError(
            "embedding_native ships builds for %s only (this is %s/%s); set %s to a library built "
            "for this platform" % (PLATFORM, sys.platform, machine, LIBRARY_ENV))


def decide(requested, answer):
    """The tier to load and why: ``(level, selected_by)``.

    ``requested`` is the level ``EMBEDDING_NATIVE_TIER`` names, or None; ``answer`` is a
    :class:`_cpu.CpuAnswer`. Raises TierNotSupportedError, naming what is missing, when the CPU
    cannot run the requested tier or not even x86-64-v2. Pure, so tests can inject answers.
    """
    if answer.tier < 2:
        raise TierNotSupportedError("embedding_native: this CPU cannot run x86-64-v2: %s" % answer.missing.get(2, "?"))
    if requested is None:
        return answer.tier, "cpu"
    if answer.missing[requested]:
        raise TierNotSupportedError(
            "embedding_native: %s=%s, but this CPU cannot run it: %s; it runs up to %s. Refusing to load it"
            % (TIER_ENV, _cpu.tier_name(requested), answer.missing[requested], _cpu.tier_name(answer.tier)))
    return requested, TIER_ENV


def _choose_and_open():
    """Returns (dll, path, cpu_tier, selected_by); see the module docstring."""
    override = os.environ.get(LIBRARY_ENV)
    if override:
        path = os.path.abspath(override)
        return _open(path), path, None, LIBRARY_ENV

    requested_name = os.environ.get(TIER_ENV) or None
    requested = None
    if requested_name is not None:
        try:
            requested = _cpu.tier_level(requested_name)
        except ValueError as e:
            raise LibraryLoadError("embedding_native: %s=%r: %s" % (TIER_ENV, requested_name, e)) from None

    _check_platform()
    if not _cpu.cpuinfo_allows_baseline():
        raise TierNotSupportedError(
            "embedding_native: this CPU does not support x86-64-v2 (SSE4.2, POPCNT, SSSE3, CMPXCHG16B) "
            "according to /proc/cpuinfo; no packaged build can run here")

    # The v2 build runs on every CPU that got this far, so asking it is safe.
    probe_path = library_path(_cpu.tier_name(2))
    probe = _open(probe_path)
    answer = _cpu.ask(probe)
    tier, selected_by = decide(requested, answer)
    if tier == 2:
        return probe, probe_path, answer.tier, selected_by
    path = library_path(_cpu.tier_name(tier))
    return _open(path), path, answer.tier, selected_by


def load():
    """Chooses, opens and checks the library; returns a :data:`LoadedLibrary`.

    Raises LibraryLoadError (or TierNotSupportedError) without calling into a build the CPU
    cannot run. Called once, when ``embedding_native._bindings`` is first imported.
    """
    dll, path, cpu_tier, selected_by = _choose_and_open()

    version = _int_function(dll, "emb_version_number")()
    if version // 10000 != EXPECTED_VERSION_MAJOR:
        raise LibraryLoadError(
            "embedding_native: %s is version %d.%d.%d; these bindings need major version %d"
            % (path, version // 10000, version // 100 % 100, version % 100, EXPECTED_VERSION_MAJOR))

    tier = _int_function(dll, "emb_isa_tier")()
    tier_name = _cpu.TIER_NAMES.get(tier, "generic" if tier == 0 else "isa-%d" % tier)
    if selected_by != LIBRARY_ENV and tier_name != os.path.basename(os.path.dirname(path)):
        # A build copied into the wrong directory would silently test the wrong kernels.
        raise LibraryLoadError("embedding_native: %s reports tier %s, not the tier of its directory" % (path, tier_name))
    return LoadedLibrary(dll, path, tier, tier_name, cpu_tier, _cpu.cpuinfo_tier(), selected_by)
