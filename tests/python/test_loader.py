"""How the library is chosen and loaded. Each case runs in a fresh interpreter, so the library
loaded in this process is never disturbed (a refused tier must never be mapped at all)."""

import json
import os
import subprocess
import sys
import tempfile
import textwrap

import pytest

from conftest import PACKAGE_PARENT

PACKAGE = PACKAGE_PARENT / "embedding_native"
TIERS = ["x86-64-v2", "x86-64-v3", "x86-64-v4"]


def run(code, **env):
    """Runs ``code`` under this interpreter with only the given EMBEDDING_NATIVE_* variables."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith("EMBEDDING_NATIVE_")}
    environment.update(env)
    environment["PYTHONPATH"] = str(PACKAGE_PARENT)
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True,
                          env=environment, timeout=120)


REPORT = """
    import json, embedding_native as en
    info = en.build_info()
    maps = open("/proc/self/maps").read()
    loaded = sorted({line.split()[-1] for line in maps.splitlines() if line.endswith("libembedding_native.so")})
    print(json.dumps({"tier": info["tier"], "selected_by": info["selected_by"], "cpu_tier": info["cpu_tier"],
                      "path": info["library_path"], "loaded": loaded}))
"""

# Imports _cpu and _lib without running the package's __init__ (which would load a library), so a
# test can inject what /proc/cpuinfo says and what the library answers for CPUID + XGETBV. Only
# answers up to what this CPU really runs may be injected: the chosen build is really loaded.
PATCHED_LOAD = """
    import json, os, sys, types
    package = types.ModuleType("embedding_native")
    package.__path__ = [{package!r}]
    sys.modules["embedding_native"] = package
    import embedding_native._cpu as cpu
    cpu.CPUINFO_PATH = {cpuinfo!r}
    answer = {answer!r}
    if answer is not None:
        cpu.ask = lambda dll: cpu.CpuAnswer(answer[0], {{int(k): v for k, v in answer[1].items()}})
    import embedding_native._lib as lib
    from embedding_native.errors import TierNotSupportedError
    try:
        loaded = lib.load()
        result = {{"tier": loaded.tier_name, "selected_by": loaded.selected_by, "cpu_tier": loaded.cpu_tier,
                   "cpuinfo_tier": loaded.cpuinfo_tier}}
    except TierNotSupportedError as e:
        result = {{"refused": str(e)}}
    maps = open("/proc/self/maps").read()
    result["loaded"] = sorted({{l.split()[-1] for l in maps.splitlines() if l.endswith("libembedding_native.so")}})
    print(json.dumps(result))
"""

def report(**env):
    result = run(REPORT, **env)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def patched(cpuinfo_flags, answer=None, **env):
    """Loads with /proc/cpuinfo replaced by one listing ``cpuinfo_flags`` and, if given, the
    library's answer replaced by ``answer`` = (tier, {level: missing})."""
    with tempfile.NamedTemporaryFile("w", suffix=".cpuinfo", delete=False) as f:
        f.write("processor\t: 0\nflags\t\t: %s\n\nprocessor\t: 1\nflags\t\t: %s\n" % (cpuinfo_flags, cpuinfo_flags))
    try:
        result = run(PATCHED_LOAD.format(package=str(PACKAGE), cpuinfo=f.name, answer=answer), **env)
    finally:
        os.unlink(f.name)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def machine_tier():
    """The library's CPUID + XGETBV decision for this machine, measured in a subprocess."""
    return report()["tier"]


def library(tier):
    return str(PACKAGE / "_native/linux-x64" / tier / "libembedding_native.so")


# What /proc/cpuinfo says on a few machines (flags of the x86-64 levels only).
CPUINFO_V2 = "fpu sse sse2 ssse3 cx16 sse4_1 sse4_2 popcnt"
CPUINFO_V3 = CPUINFO_V2 + " avx avx2 fma bmi1 bmi2 movbe f16c abm xsave"
CPUINFO_V4 = CPUINFO_V3 + " avx512f avx512bw avx512cd avx512dq avx512vl"
CPUINFO_ZEN4_GUEST = CPUINFO_V4.replace(" abm", "")   # AMD guests whose kernel leaves out abm

# The library's answers (emb_cpu_tier, emb_cpu_missing) on a few machines.
AVX512_MACHINE = (4, {2: "", 3: "", 4: ""})
AVX2_MACHINE = (3, {2: "", 3: "", 4: "AVX512F, AVX512DQ, AVX512CD, AVX512BW, AVX512VL (CPUID)"})
ZMM_OFF_MACHINE = (3, {2: "", 3: "", 4: "the OS has not enabled the AVX-512 (opmask, ZMM) register state (XCR0 = 0x7, needs bits 0xe6)"})
AVX_OFF_MACHINE = (2, {2: "", 3: "the OS has not enabled the AVX (YMM) register state (XCR0 = 0x3, needs bits 0x6)",
                       4: "the OS has not enabled the AVX-512 (opmask, ZMM) register state (XCR0 = 0x3, needs bits 0xe6)"})


def runs(tier):
    return TIERS.index(tier) <= TIERS.index(machine_tier())


def test_tier_matches_environment_when_set():
    requested = os.environ.get("EMBEDDING_NATIVE_TIER")
    if not requested:
        pytest.skip("EMBEDDING_NATIVE_TIER is not set")
    try:
        import embedding_native as en
    except OSError as e:
        assert type(e).__name__ == "TierNotSupportedError", e
        assert TIERS.index(requested) > TIERS.index(machine_tier())
        return
    assert en.build_info()["tier"] == requested
    assert en.build_info()["selected_by"] == "EMBEDDING_NATIVE_TIER"


def test_default_is_the_cpuid_xgetbv_decision():
    info = report()
    assert info["selected_by"] == "cpu"
    expected = subprocess.run([sys.executable, str(PACKAGE / "_cpu.py")], capture_output=True, text=True,
                              check=True).stdout.strip()
    assert info["tier"] == expected and info["cpu_tier"] == expected
    assert set(info["loaded"]) == {library("x86-64-v2"), library(expected)}  # the v2 probe, reused for v2


@pytest.mark.parametrize("tier", TIERS)
def test_requested_tier_loads_exactly_that_tier_or_is_refused(tier):
    result = run(REPORT, EMBEDDING_NATIVE_TIER=tier)
    if result.returncode != 0:
        assert "TierNotSupportedError" in result.stderr
        assert TIERS.index(tier) > TIERS.index(machine_tier())
        return
    info = json.loads(result.stdout)
    assert info["tier"] == tier and info["selected_by"] == "EMBEDDING_NATIVE_TIER"
    assert info["path"].endswith("/%s/libembedding_native.so" % tier)
    assert not any("/%s/" % other in path for path in info["loaded"] for other in TIERS if other not in (tier, "x86-64-v2"))


def test_requested_v2_loads_only_v2():
    info = report(EMBEDDING_NATIVE_TIER="x86-64-v2")
    assert info["loaded"] == [str(PACKAGE / "_native/linux-x64/x86-64-v2/libembedding_native.so")]


@pytest.mark.parametrize("value", ["x86-64-v5", "avx2", "v3", "X86-64-V3"])
def test_unknown_tier_raises(value):
    result = run(REPORT, EMBEDDING_NATIVE_TIER=value)
    assert result.returncode != 0
    assert "LibraryLoadError" in result.stderr and "unknown tier" in result.stderr
    assert "libembedding_native" not in result.stdout


def test_cpuinfo_never_lowers_the_decision():
    # An AMD Zen 4/5 guest whose kernel omits `abm`, and a kernel that lists only v2 flags:
    # /proc/cpuinfo is a diagnostic, the library's CPUID + XGETBV answer decides.
    for flags in (CPUINFO_ZEN4_GUEST, CPUINFO_V2):
        info = patched(flags)
        assert info["tier"] == machine_tier(), info
        assert info["cpuinfo_tier"] == 2  # both lists lack a v3 flag
    if runs("x86-64-v4"):
        info = patched(CPUINFO_ZEN4_GUEST, EMBEDDING_NATIVE_TIER="x86-64-v4")
        assert info["tier"] == "x86-64-v4" and info["selected_by"] == "EMBEDDING_NATIVE_TIER"


@pytest.mark.parametrize("answer,expected", [
    (AVX512_MACHINE, "x86-64-v4"), (AVX2_MACHINE, "x86-64-v3"), (ZMM_OFF_MACHINE, "x86-64-v3"),
    (AVX_OFF_MACHINE, "x86-64-v2")])
def test_the_library_answer_decides(answer, expected):
    if not runs(expected):
        pytest.skip("this CPU cannot load the %s build the injected answer asks for" % expected)
    info = patched(CPUINFO_V4, answer)
    assert info["tier"] == expected and info["selected_by"] == "cpu"
    assert info["loaded"] == sorted({library("x86-64-v2"), library(expected)})


@pytest.mark.parametrize("answer,requested,reason", [
    (AVX2_MACHINE, "x86-64-v4", "AVX512F, AVX512DQ, AVX512CD, AVX512BW, AVX512VL (CPUID)"),
    (ZMM_OFF_MACHINE, "x86-64-v4", "the OS has not enabled the AVX-512 (opmask, ZMM) register state"),
    (AVX_OFF_MACHINE, "x86-64-v4", "the OS has not enabled the AVX-512"),
    (AVX_OFF_MACHINE, "x86-64-v3", "the OS has not enabled the AVX (YMM) register state")])
def test_a_tier_the_cpu_cannot_run_is_refused_naming_what_is_missing(answer, requested, reason):
    info = patched(CPUINFO_V4, answer, EMBEDDING_NATIVE_TIER=requested)
    assert requested in info["refused"] and reason in info["refused"] and "Refusing" in info["refused"]
    assert info["loaded"] == [library("x86-64-v2")]  # only the baseline build was asked


def test_cpuinfo_without_v2_is_refused_before_anything_loads():
    info = patched("fpu sse sse2 ssse3 cx16 sse4_1")
    assert "x86-64-v2" in info["refused"] and info["loaded"] == []


def test_library_answer_below_v2_is_refused():
    info = patched(CPUINFO_V4, (0, {2: "SSE4.2, POPCNT (CPUID)", 3: "x", 4: "x"}))
    assert "SSE4.2, POPCNT (CPUID)" in info["refused"]


def test_library_override_is_loaded_as_is():
    path = str(PACKAGE / "_native/linux-x64/x86-64-v2/libembedding_native.so")
    info = report(EMBEDDING_NATIVE_LIBRARY=path, EMBEDDING_NATIVE_TIER="x86-64-v3")
    assert info["path"] == path and info["tier"] == "x86-64-v2"
    assert info["selected_by"] == "EMBEDDING_NATIVE_LIBRARY" and info["loaded"] == [path]


def test_library_override_missing_file():
    result = run(REPORT, EMBEDDING_NATIVE_LIBRARY="/nonexistent/libembedding_native.so")
    assert result.returncode != 0
    assert "LibraryLoadError" in result.stderr and "not found" in result.stderr


def test_import_without_torch():
    code = """
        import sys
        sys.modules["torch"] = None  # makes `import torch` fail
        import numpy as np
        import embedding_native as en
        assert "torch" not in dir(en)
        w = np.arange(6, dtype=np.float32).reshape(3, 2)
        assert en.embedding(np.array([2, 0]), w).tolist() == [[4.0, 5.0], [0.0, 1.0]]
        assert repr(en.Embedding(3, 2)) == "Embedding(3, 2)"
        print("ok")
    """
    result = run(code)
    assert result.returncode == 0 and result.stdout == "ok\n", result.stderr


def test_package_does_not_import_torch():
    result = run("import sys, embedding_native; print('torch' in sys.modules)")
    assert result.stdout == "False\n", result.stderr


def test_main_self_test():
    result = subprocess.run([sys.executable, "-m", "embedding_native"], capture_output=True, text=True,
                            env=dict(os.environ, PYTHONPATH=str(PACKAGE_PARENT)), timeout=120)
    assert result.returncode == 0, result.stderr
    assert "self-test: OK" in result.stdout and "tier:" in result.stdout and "library:" in result.stdout
