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
        os_tier  = tier from /proc/cpuinfo flags   # what the kernel enabled (_cpu.py)
        ceiling  = EMBEDDING_NATIVE_TIER or os_tier
        if ceiling > os_tier: refuse
        if ceiling > v2:                           # only then is CPUID worth a second library
            v2 = open the x86-64-v2 build          # runs on every x86-64-v2 CPU
            cpu_tier = v2.emb_cpu_tier()           # CPUID, as the emulated CPU sees it
            if EMBEDDING_NATIVE_TIER > cpu_tier: refuse
        tier = EMBEDDING_NATIVE_TIER or min(os_tier, cpu_tier)
        open tier's build (reuse the probe if it is v2)
    require emb_version_number() // 10000 == EXPECTED_VERSION_MAJOR

Both answers are needed: /proc/cpuinfo hides AVX/AVX-512 when the kernel has not enabled their
register state, which CPUID cannot tell; under qemu-user, /proc/cpuinfo shows the *host's*
flags while CPUID shows the emulated CPU.

When a tier above v2 is chosen the v2 probe stays loaded: a NativeAOT library cannot be
unloaded. It holds only its (idle) runtime; no calls other than emb_cpu_tier are made to it.

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
           "library_path", "load"]

#: EMB_VERSION_MAJOR of the header these bindings were written against.
EXPECTED_VERSION_MAJOR = 0

#: The platform directory under ``_native`` the builds for this machine live in.
PLATFORM = "linux-x64"

#: Environment variable: full path of a library to load instead of a packaged build.
LIBRARY_ENV = "EMBEDDING_NATIVE_LIBRARY"

#: Environment variable: the tier to load (``x86-64-v2``, ``x86-64-v3`` or ``x86-64-v4``).
TIER_ENV = "EMBEDDING_NATIVE_TIER"

_LIBRARY_NAME = "libembedding_native.so"

LoadedLibrary = collections.namedtuple("LoadedLibrary", "dll path tier tier_name cpu_tier selected_by")
LoadedLibrary.__doc__ = """The opened library and how it was chosen.

    dll:         the ctypes.CDLL
    path:        absolute path of the file opened
    tier:        emb_isa_tier() of the loaded build (an emb_isa value: 2, 3, 4, ...)
    tier_name:   "x86-64-v2", ... (from the build itself)
    cpu_tier:    min(/proc/cpuinfo tier, CPUID tier) when it was needed to decide, else None
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
    os_tier = _cpu.cpuinfo_tier()
    if os_tier < 2:
        raise TierNotSupportedError(
            "embedding_native: this CPU does not support x86-64-v2 (SSE4.2, POPCNT, SSSE3, CMPXCHG16B) "
            "according to /proc/cpuinfo; no packaged build can run here")
    if requested is not None and requested > os_tier:
        raise TierNotSupportedError(
            "embedding_native: %s=%s, but /proc/cpuinfo allows only up to %s; refusing to load it"
            % (TIER_ENV, requested_name, _cpu.tier_name(os_tier)))

    ceiling = requested if requested is not None else os_tier
    probe_path = library_path(_cpu.tier_name(2))
    probe = None
    cpu_tier = None
    if ceiling > 2:
        # The v2 build runs on every CPU that got this far, so asking it for CPUID is safe.
        probe = _open(probe_path)
        cpuid_tier = _int_function(probe, "emb_cpu_tier")()
        cpu_tier = min(os_tier, cpuid_tier)
        if requested is not None and requested > cpuid_tier:
            raise TierNotSupportedError(
                "embedding_native: %s=%s, but CPUID reports only %s; refusing to load it"
                % (TIER_ENV, requested_name, _cpu.TIER_NAMES.get(cpuid_tier, "no x86-64 tier")))
        if cpuid_tier < 2:
            raise TierNotSupportedError("embedding_native: CPUID reports no x86-64 tier (emb_cpu_tier() = %d)" % cpuid_tier)

    if requested is not None:
        tier, selected_by = requested, TIER_ENV
    else:
        tier, selected_by = (cpu_tier if cpu_tier is not None else 2), "cpu"

    path = library_path(_cpu.tier_name(tier))
    if tier == 2 and probe is not None:
        return probe, probe_path, cpu_tier, selected_by
    return _open(path), path, cpu_tier, selected_by


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
    return LoadedLibrary(dll, path, tier, tier_name, cpu_tier, selected_by)
