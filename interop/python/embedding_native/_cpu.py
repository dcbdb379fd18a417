"""Which x86-64 micro-architecture level ("tier") this CPU and operating system can run.

The decision is the library's own: ``emb_cpu_tier()`` and ``emb_cpu_missing(tier)`` of the
baseline x86-64-v2 build, which read CPUID and, for AVX and AVX-512, XCR0 (XGETBV: the register
state the OS saves). That is the test the .NET runtime makes when a NativeAOT build starts, so a
tier it allows is a tier whose build starts. Under qemu-user CPUID is emulated and the answer is
the emulated CPU's, which is again what the build will see.

/proc/cpuinfo is *not* used to decide: some kernels leave out flags the CPU has (``abm``, how
Linux spells LZCNT, is missing on some AMD guests). It is read for two things only:

* a guard before the baseline build is loaded: that build aborts the process on a CPU without
  x86-64-v2, so the loader first checks the v2 flags (``sse4_2 popcnt ssse3 cx16``), which need
  no OS state and which every Linux kernel lists when the CPU has them;
* a diagnostic: ``cpuinfo_tier`` is reported next to the decision so a difference is visible.

Pure Python plus ctypes, usable two ways:

* imported by the loader (``embedding_native._lib``) before any other native code runs, and
* run as a script by path, ``/usr/bin/python3 interop/python/embedding_native/_cpu.py
  [--library PATH] [--explain]``: prints the best tier name (``x86-64-v2`` … ``x86-64-v4``), or
  with ``--explain`` a JSON object with each tier's missing features and the /proc/cpuinfo view.
  The Makefile, the package tests and the bench use it, so every part of the project takes the
  same decision.

It therefore uses absolute imports only.
"""

import collections
import ctypes
import json
import os
import sys

__all__ = ["TIER_NAMES", "TIER_FLAGS", "CPUINFO_PATH", "CpuAnswer", "ask", "baseline_library_path", "cpuinfo_flags",
           "cpuinfo_allows_baseline", "tier_from_flags", "cpuinfo_tier", "tier_name", "tier_level"]

#: Tier level (the ``emb_isa`` value from embedding_native.h) -> name used for directories and
#: the ``EMBEDDING_NATIVE_TIER`` variable.
TIER_NAMES = {2: "x86-64-v2", 3: "x86-64-v3", 4: "x86-64-v4"}

#: The /proc/cpuinfo flags each level adds to the one below it (diagnostics and the v2 guard only).
TIER_FLAGS = {
    2: frozenset({"sse4_2", "popcnt", "ssse3", "cx16"}),
    3: frozenset({"avx", "avx2", "fma", "bmi1", "bmi2", "movbe", "f16c", "abm"}),
    4: frozenset({"avx512f", "avx512bw", "avx512cd", "avx512dq", "avx512vl"}),
}

#: Where the CPU flags are read from (a diagnostic and the v2 guard); tests point it elsewhere.
CPUINFO_PATH = "/proc/cpuinfo"

CpuAnswer = collections.namedtuple("CpuAnswer", "tier missing")
CpuAnswer.__doc__ = """The library's answer for the running CPU and OS.

    tier:    emb_cpu_tier(): 4, 3, 2, or 0 when not even x86-64-v2 can run
    missing: {level: emb_cpu_missing(level)} for 2, 3 and 4: "" where the tier can run, else
             what it lacks, e.g. "AVX512F, AVX512BW (CPUID)"
"""


def ask(dll):
    """Asks a loaded library (any tier; the loader uses the baseline build) for the decision."""
    tier = dll.emb_cpu_tier
    tier.argtypes, tier.restype = [], ctypes.c_int32
    missing = dll.emb_cpu_missing
    missing.argtypes, missing.restype = [ctypes.c_int32], ctypes.c_char_p
    return CpuAnswer(tier(), {level: missing(level).decode("utf-8") for level in TIER_NAMES})


def baseline_library_path():
    """The packaged x86-64-v2 build, next to this file."""
    here = os.path.dirname(os.path.abspath(__file__))
    return os.path.join(here, "_native", "linux-x64", TIER_NAMES[2], "libembedding_native.so")


def cpuinfo_flags(path=None):
    """The CPU flags every processor in ``path`` reports, or None if the file has none.

    Takes the intersection over all processors, so a flag missing on any core counts as
    missing (a thread may be scheduled anywhere).
    """
    try:
        with open(path or CPUINFO_PATH, "r", encoding="ascii", errors="replace") as f:
            text = f.read()
    except OSError:
        return None
    common = None
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip() == "flags":
            flags = frozenset(value.split())
            common = flags if common is None else common & flags
    return common


def cpuinfo_allows_baseline(path=None):
    """False only when ``path`` lists flags and the x86-64-v2 ones are not all among them.

    An unreadable or flag-less file says nothing, so it does not stop the loader.
    """
    flags = cpuinfo_flags(path)
    return flags is None or TIER_FLAGS[2] <= flags


def tier_from_flags(flags):
    """The highest level whose flags (and those of every lower level) are all in ``flags``.

    Returns 0 (``EMB_ISA_GENERIC``) when even x86-64-v2 is incomplete.
    """
    level = 0
    for candidate in sorted(TIER_FLAGS):
        if not TIER_FLAGS[candidate] <= flags:
            break
        level = candidate
    return level


def cpuinfo_tier(path=None):
    """The tier /proc/cpuinfo's flags name (a diagnostic): 2, 3 or 4, or 0 if none."""
    flags = cpuinfo_flags(path)
    return 0 if flags is None else tier_from_flags(flags)


def tier_name(level):
    """``2 -> "x86-64-v2"`` and so on; raises KeyError for levels without a build."""
    return TIER_NAMES[level]


def tier_level(name):
    """``"x86-64-v2" -> 2`` and so on; raises ValueError for unknown names."""
    for level, known in TIER_NAMES.items():
        if known == name:
            return level
    raise ValueError("unknown tier %r: expected one of %s" % (name, ", ".join(TIER_NAMES.values())))


def _main(argv):
    library, explain = baseline_library_path(), False
    args = list(argv)
    while args:
        arg = args.pop(0)
        if arg == "--library" and args:
            library = args.pop(0)
        elif arg == "--explain":
            explain = True
        else:
            sys.stderr.write("usage: _cpu.py [--library PATH-TO-x86-64-v2-libembedding_native.so] [--explain]\n")
            return 2
    if not cpuinfo_allows_baseline():
        sys.stderr.write("this CPU does not support x86-64-v2 (SSE4.2, POPCNT, SSSE3, CMPXCHG16B)\n")
        return 1
    if not os.path.isfile(library):
        sys.stderr.write("%s not found: build it first (make native)\n" % library)
        return 1
    answer = ask(ctypes.CDLL(os.path.abspath(library), mode=os.RTLD_LOCAL))
    if answer.tier not in TIER_NAMES:
        sys.stderr.write("this CPU cannot run x86-64-v2: %s\n" % answer.missing[2])
        return 1
    if explain:
        print(json.dumps({"tier": TIER_NAMES[answer.tier],
                          "missing": {TIER_NAMES[level]: text for level, text in answer.missing.items()},
                          "cpuinfo_tier": TIER_NAMES.get(cpuinfo_tier())}))
    else:
        print(TIER_NAMES[answer.tier])
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
