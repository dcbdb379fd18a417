"""How the library is chosen and loaded. Each case runs in a fresh interpreter, so the library
loaded in this process is never disturbed (a refused tier must never be mapped at all)."""

import json
import os
import subprocess
import sys
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

# Imports _cpu and _lib without running the package's __init__ (which would load a library), so
# a test can pretend /proc/cpuinfo says less than it does.
PATCHED_LOAD = """
    import json, os, sys, types
    package = types.ModuleType("embedding_native")
    package.__path__ = [{package!r}]
    sys.modules["embedding_native"] = package
    import embedding_native._cpu as cpu
    cpu.cpuinfo_tier = lambda path="/proc/cpuinfo": {os_tier}
    import embedding_native._lib as lib
    from embedding_native.errors import TierNotSupportedError
    try:
        loaded = lib.load()
        result = {{"tier": loaded.tier_name, "selected_by": loaded.selected_by}}
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


def patched(os_tier, **env):
    result = run(PATCHED_LOAD.format(package=str(PACKAGE), os_tier=os_tier), **env)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def machine_tier():
    """min(/proc/cpuinfo, CPUID) as a level, measured in a subprocess."""
    return report()["tier"]


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


def test_default_is_min_of_cpuinfo_and_cpuid():
    info = report()
    assert info["selected_by"] == "cpu"
    code = """
        import ctypes, sys
        sys.path.insert(0, {package!r})
        import _cpu
        dll = ctypes.CDLL({v2!r})
        print(_cpu.tier_name(min(_cpu.cpuinfo_tier(), dll.emb_cpu_tier())))
    """.format(package=str(PACKAGE), v2=str(PACKAGE / "_native/linux-x64/x86-64-v2/libembedding_native.so"))
    expected = run(code).stdout.strip()
    assert info["tier"] == expected
    expected_loaded = {str(PACKAGE / "_native/linux-x64" / t / "libembedding_native.so") for t in ("x86-64-v2", expected)}
    assert set(info["loaded"]) == expected_loaded  # the v2 probe, reused when v2 is the answer


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


def test_tier_above_cpuinfo_is_refused_without_loading():
    info = patched(2, EMBEDDING_NATIVE_TIER="x86-64-v3")
    assert "refusing" in info["refused"] and info["loaded"] == []
    info = patched(3, EMBEDDING_NATIVE_TIER="x86-64-v4")
    assert "refusing" in info["refused"] and info["loaded"] == []


def test_cpu_below_v2_is_refused():
    info = patched(0)
    assert "x86-64-v2" in info["refused"] and info["loaded"] == []


def test_cpuinfo_v2_needs_no_probe():
    info = patched(2)
    assert info["tier"] == "x86-64-v2" and len(info["loaded"]) == 1


def test_cpuinfo_caps_the_cpuid_answer():
    info = patched(3)
    assert info["tier"] == "x86-64-v3"  # CPUID may say v4; the OS view wins when lower


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
