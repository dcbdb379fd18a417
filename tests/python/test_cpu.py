"""_cpu.py, loaded by path: the /proc/cpuinfo diagnostics and v2 guard, and the script the
Makefile and the bench ask for the tier (the library's CPUID + XGETBV decision)."""

import ctypes
import importlib.util
import json
import os
import subprocess
import sys

import pytest

from conftest import PACKAGE_PARENT

CPU_PY = PACKAGE_PARENT / "embedding_native" / "_cpu.py"
_spec = importlib.util.spec_from_file_location("embedding_native_cpu_probe", CPU_PY)
cpu = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(cpu)

V2 = "sse4_2 popcnt ssse3 cx16"
V3 = V2 + " avx avx2 fma bmi1 bmi2 movbe f16c abm"
V4 = V3 + " avx512f avx512bw avx512cd avx512dq avx512vl"


@pytest.mark.parametrize("flags,level", [
    ("", 0), ("sse4_2 popcnt ssse3", 0), (V2, 2), (V3, 3), (V4, 4),
    (V3.replace(" abm", ""), 2),            # no LZCNT: not v3
    (V4.replace(" avx2", ""), 2),           # AVX-512 without AVX2 does not skip a level
    (V4.replace(" avx512vl", ""), 3),
    (V2 + " avx512f avx512bw avx512cd avx512dq avx512vl", 2),
])
def test_tier_from_flags(flags, level):
    assert cpu.tier_from_flags(frozenset(flags.split())) == level


def test_cpuinfo_intersects_processors(tmp_path):
    path = tmp_path / "cpuinfo"
    path.write_text("processor\t: 0\nflags\t\t: %s\n\nprocessor\t: 1\nflags\t\t: %s\n\n" % (V4, V3))
    assert cpu.cpuinfo_tier(str(path)) == 3


def test_missing_cpuinfo(tmp_path):
    assert cpu.cpuinfo_flags(str(tmp_path / "absent")) is None
    assert cpu.cpuinfo_tier(str(tmp_path / "absent")) == 0


def test_names():
    assert [cpu.tier_level(cpu.tier_name(level)) for level in (2, 3, 4)] == [2, 3, 4]
    with pytest.raises(ValueError):
        cpu.tier_level("x86-64-v5")


def test_cpuinfo_allows_baseline(tmp_path):
    path = tmp_path / "cpuinfo"
    path.write_text("flags\t\t: %s\n" % V2)
    assert cpu.cpuinfo_allows_baseline(str(path))
    path.write_text("flags\t\t: sse4_1 ssse3 cx16\n")
    assert not cpu.cpuinfo_allows_baseline(str(path))
    assert cpu.cpuinfo_allows_baseline(str(tmp_path / "absent"))  # no file says nothing


def test_standalone_prints_only_the_library_decision():
    result = subprocess.run([sys.executable, str(CPU_PY)], capture_output=True, text=True, check=True)
    assert result.stderr == ""
    probe = cpu.ask(ctypes.CDLL(cpu.baseline_library_path(), mode=os.RTLD_LOCAL))
    assert result.stdout == cpu.tier_name(probe.tier) + "\n"


def test_standalone_explains_and_takes_a_library_path():
    library = cpu.baseline_library_path()
    result = subprocess.run([sys.executable, str(CPU_PY), "--library", library, "--explain"],
                            capture_output=True, text=True, check=True)
    explained = json.loads(result.stdout)
    assert set(explained["missing"]) == {"x86-64-v2", "x86-64-v3", "x86-64-v4"}
    runnable = [t for t, missing in explained["missing"].items() if missing == ""]
    assert explained["tier"] == max(runnable)
    assert explained["cpuinfo_tier"] == cpu.TIER_NAMES.get(cpu.cpuinfo_tier())


def test_standalone_without_the_library_says_what_to_build(tmp_path):
    result = subprocess.run([sys.executable, str(CPU_PY), "--library", str(tmp_path / "absent.so")],
                            capture_output=True, text=True)
    assert result.returncode == 1 and result.stdout == "" and "make native" in result.stderr
