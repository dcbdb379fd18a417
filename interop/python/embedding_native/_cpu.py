"""Which x86-64 micro-architecture level ("tier") this CPU and operating system can run.

Pure Python, no dependencies, and usable two ways:

* imported by the loader (``embedding_native._lib``) before any native code runs, and
* run as a script, ``/usr/bin/python3 interop/python/embedding_native/_cpu.py``, which prints the
  best tier name (``x86-64-v2``, ``x86-64-v3`` or ``x86-64-v4``) and nothing else; the Makefile
  uses it to pick the library the C programs link against.

It therefore uses absolute imports only.

The tiers are the psABI levels the NativeAOT builds are compiled for (``IlcInstructionSet``).
A level is available when every flag it needs, and every flag of the levels below it, appears
in ``/proc/cpuinfo``::

    v2: sse4_2 popcnt ssse3 cx16
    v3: v2 + avx avx2 fma bmi1 bmi2 movbe f16c abm (abm is how Linux spells LZCNT)
    v4: v3 + avx512f avx512bw avx512cd avx512dq avx512vl

Linux lists a flag there only if the kernel also enabled the register state it needs (AVX and
AVX-512 are hidden when XSAVE is off), which is the part CPUID alone cannot tell. Under qemu-user
the file shows the *host's* flags, though, so the loader also asks CPUID (``emb_cpu_tier``) and
takes the lower of the two answers.
"""

import sys

__all__ = ["TIER_NAMES", "TIER_FLAGS", "cpuinfo_flags", "tier_from_flags", "cpuinfo_tier",
           "tier_name", "tier_level"]

#: Tier level (the ``emb_isa`` value from embedding_native.h) -> name used for directories and
#: the ``EMBEDDING_NATIVE_TIER`` variable.
TIER_NAMES = {2: "x86-64-v2", 3: "x86-64-v3", 4: "x86-64-v4"}

#: The /proc/cpuinfo flags each level adds to the one below it.
TIER_FLAGS = {
    2: frozenset({"sse4_2", "popcnt", "ssse3", "cx16"}),
    3: frozenset({"avx", "avx2", "fma", "bmi1", "bmi2", "movbe", "f16c", "abm"}),
    4: frozenset({"avx512f", "avx512bw", "avx512cd", "avx512dq", "avx512vl"}),
}


def cpuinfo_flags(path="/proc/cpuinfo"):
    """The CPU flags every processor in ``path`` reports, or None if the file has none.

    Takes the intersection over all processors, so a flag missing on any core counts as
    missing (a thread may be scheduled anywhere).
    """
    try:
        with open(path, "r", encoding="ascii", errors="replace") as f:
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


def cpuinfo_tier(path="/proc/cpuinfo"):
    """The tier /proc/cpuinfo allows: 2, 3 or 4, or 0 if no x86-64 tier is available."""
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


def _main():
    level = cpuinfo_tier()
    if level not in TIER_NAMES:
        sys.stderr.write("this CPU does not support x86-64-v2 (SSE4.2, POPCNT, SSSE3, CMPXCHG16B)\n")
        return 1
    print(TIER_NAMES[level])
    return 0


if __name__ == "__main__":
    sys.exit(_main())
