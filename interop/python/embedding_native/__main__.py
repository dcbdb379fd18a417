"""``python3 -m embedding_native``: what was loaded, and a tiny self-test.

Prints the package and library versions, the library path, the tier and how it was chosen,
then looks up rows of a small table and compares them bit for bit with numpy's ``take``.
Exits 1 if the self-test fails.
"""

import sys

import numpy as np

import embedding_native as en


def _cpuinfo_gaps(cpu_tier):
    """The /proc/cpuinfo flags of the tiers up to ``cpu_tier`` that the file leaves out."""
    from embedding_native import _cpu
    flags = _cpu.cpuinfo_flags() or frozenset()
    wanted = set().union(*(_cpu.TIER_FLAGS[level] for level in _cpu.TIER_FLAGS if level <= _cpu.tier_level(cpu_tier)))
    return sorted(wanted - flags)


def main():
    info = en.build_info()
    print("embedding_native %s (library %s)" % (en.__version__, info["version"]))
    print("library:  %s" % info["library_path"])
    how = "CPUID + XGETBV" if info["selected_by"] == "cpu" else info["selected_by"]
    print("tier:     %s (vector width %s bits, selected by %s)" % (info["tier"], info["vector_width"], how))
    if info["cpu_tier"] is not None:
        print("cpu:      runs up to %s (CPUID + XGETBV)" % info["cpu_tier"])
    if info["cpuinfo_tier"] != info["cpu_tier"] and info["cpu_tier"] is not None:
        print("note:     /proc/cpuinfo names only %s (flags missing there: %s); it does not decide"
              % (info["cpuinfo_tier"], ", ".join(_cpuinfo_gaps(info["cpu_tier"])) or "none"))

    table = np.random.default_rng(0).standard_normal((10, 5), dtype=np.float32)
    indices = np.array([[1, 2, 4, 5], [4, 3, 2, 9]], dtype=np.int64)
    result = en.embedding(indices, table)
    expected = table.take(indices, axis=0)
    ok = result.shape == expected.shape and np.array_equal(result.view(np.uint32), expected.view(np.uint32))
    try:
        en.embedding(np.array([10]), table)
        raised = False
    except IndexError:
        raised = True
    ok = ok and raised
    print("self-test: %s" % ("OK" if ok else "FAILED"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
