"""Runs the Python parity suite once per x86-64 tier this CPU and OS can run, and records what ran.

    /usr/bin/python3 tests/python/run_tiers.py --report artifacts/build/test-report.txt x86-64-v2 x86-64-v3 x86-64-v4

Which tiers run is the library's own decision (``_cpu.py --explain``: CPUID + XGETBV asked of the
x86-64-v2 build), the same one the package's loader takes. A tier the CPU cannot run is skipped
with the reason (the features it lacks); every other tier must run real parity tests — tests
other than the loader and CPU-probe ones, which also run when a tier is refused — or this script
fails. Each outcome is appended to the report as one line, which `make test` prints at the end.

torch's own results depend on the ATen kernel set it runs (docs/exactness.md#torchs-kernel-sets),
and so do ours, which follow it. The x86-64-v2 run compares with torch's default kernels, what a
CPU without AVX2 runs on both sides; the others with torch's own choice on this CPU (AVX2). On an
AVX-512 CPU the modules whose bits depend on the kernels' vector width also run once more with
torch's AVX-512 kernels (``ATEN_CPU_CAPABILITY=avx512``, which torch 1.13 only takes when asked).
"""

import argparse
import collections
import json
import os
import pathlib
import subprocess
import sys
import xml.etree.ElementTree as ET

ROOT = pathlib.Path(__file__).resolve().parents[2]
CPU_PY = ROOT / "interop" / "python" / "embedding_native" / "_cpu.py"
# Modules that check the loader, the CPU probe and this script, not the library against torch.
LOADER_TESTS = {"test_loader", "test_cpu", "test_run_tiers"}
# torch's kernel set (ATEN_CPU_CAPABILITY) per tier's run; unlisted tiers leave torch its own choice.
TORCH_KERNELS = {"x86-64-v2": "default"}
# The modules run again with torch's AVX-512 kernels: bfloat16 chunks and 2-norm lanes follow its vector width.
AVX512_MODULES = ("test_dtype_models.py", "test_table_types.py", "test_renorm.py")


def decision():
    result = subprocess.run([sys.executable, str(CPU_PY), "--explain"], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        sys.exit("cannot decide this CPU's tier: %s" % result.stderr.strip())
    return json.loads(result.stdout)


def counts(junit_xml):
    """{"parity": Counter(outcome), "loader": Counter(outcome)} from a pytest JUnit XML file."""
    found = {"parity": collections.Counter(), "loader": collections.Counter()}
    for case in ET.parse(junit_xml).getroot().iter("testcase"):
        # classname is "tests.python.test_loader" or "...test_bag_module.TestClass": the module is
        # the first part named test_*.
        module = next((part for part in case.get("classname", "").split(".") if part.startswith("test_")), "")
        group = "loader" if module in LOADER_TESTS else "parity"
        outcome = next((child.tag for child in case if child.tag in ("failure", "error", "skipped")), "passed")
        found[group][outcome] += 1
    return found


def describe(counter):
    return ", ".join("%d %s" % (counter[k], k) for k in ("passed", "failure", "error", "skipped") if counter[k]) or "none"


def verdict(tier, returncode, found):
    """(report line, failure or None) for one tier the CPU runs, from pytest's exit code and
    :func:`counts` (None when pytest wrote no report)."""
    if found is None:
        return "native: python parity %s, no report" % tier, "%s: pytest exited with %d and wrote no report" % (tier, returncode)
    line = "native: python parity %s: parity tests %s; loader tests %s" % (
        tier, describe(found["parity"]), describe(found["loader"]))
    if returncode != 0:
        return line, "%s: pytest exited with %d" % (tier, returncode)
    if found["parity"]["passed"] == 0:
        return line, "%s: the CPU runs this tier but no parity test ran" % tier
    return line, None


def run_tier(tier, missing, report_dir, run_pytest=subprocess.call, torch_kernels=None, modules=None):
    """Runs the suite (or ``modules`` of it) at ``tier`` unless the CPU lacks something for it
    (``missing`` is then the library's words for what), with torch's ``torch_kernels`` (an
    ``ATEN_CPU_CAPABILITY`` value; default: :data:`TORCH_KERNELS`, else torch's choice). Returns
    (report line, failure or None)."""
    if missing is None:
        return None, "%s: not an x86-64 tier" % tier
    if missing:
        print("== Python parity suite, tier %s: skipped (%s) ==" % (tier, missing))
        return "skipped: python parity %s (this CPU cannot run it: %s)" % (tier, missing), None
    kernels = torch_kernels or TORCH_KERNELS.get(tier)
    name = tier + (" with torch's %s kernels" % kernels if kernels else "")
    print("== Python parity suite, tier %s (native) ==" % name, flush=True)
    junit = pathlib.Path(report_dir) / ("pytest-%s%s.xml" % (tier, "-" + kernels if kernels else ""))
    env = dict(os.environ, EMBEDDING_NATIVE_TIER=tier)
    env.pop("EMBEDDING_NATIVE_LIBRARY", None)
    env.pop("ATEN_CPU_CAPABILITY", None)
    if kernels:
        env["ATEN_CPU_CAPABILITY"] = kernels
    paths = [str(ROOT / "tests" / "python" / m) for m in modules] if modules else [str(ROOT / "tests" / "python")]
    rc = run_pytest([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--junitxml", str(junit)] + paths,
                    env=env, cwd=ROOT)
    return verdict(name, rc, counts(junit) if junit.exists() else None)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--report", required=True)
    parser.add_argument("tiers", nargs="+")
    args = parser.parse_args()

    cpu = decision()
    print("This CPU and OS run up to %s (CPUID + XGETBV); /proc/cpuinfo names %s." % (cpu["tier"], cpu["cpuinfo_tier"]))
    failed = []
    lines = []
    runs = [(tier, None, None) for tier in args.tiers]
    if cpu["tier"] == "x86-64-v4" and "x86-64-v4" in args.tiers:
        runs.append(("x86-64-v4", "avx512", AVX512_MODULES))
    for tier, kernels, modules in runs:
        line, failure = run_tier(tier, cpu["missing"].get(tier), pathlib.Path(args.report).parent,
                                 torch_kernels=kernels, modules=modules)
        lines += [line] if line else []
        failed += [failure] if failure else []

    with open(args.report, "a", encoding="utf-8") as report:
        report.writelines(line + "\n" for line in lines)
    if cpu["tier"] not in args.tiers:
        failed.append("the host's best tier %s was not among the tiers asked for" % cpu["tier"])
    for failure in failed:
        print("FAIL python parity " + failure)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
