"""The Python loader on emulated x86-64 CPUs: it must pick the best tier the CPU can run and
refuse (with a Python exception, not SIGABRT) a tier the CPU cannot run.

Each case starts ``/usr/bin/python3`` under ``qemu-x86_64-static -cpu <model>`` (or natively),
imports embedding_native, makes one lookup through the chosen build and prints build_info() as
JSON. Under qemu-user /proc/cpuinfo still shows the host's flags while CPUID (and XGETBV) show
the model's, so these cases check that the loader follows CPUID + XGETBV, as the .NET runtime in
the chosen build does, and never /proc/cpuinfo.

usage: loader_tiers.py <repo root>      (exit 1 on the first failed expectation)
"""

import json
import os
import signal
import subprocess
import sys
import time

QEMU = "qemu-x86_64-static"
PYTHON = "/usr/bin/python3"
PROBE = ("import embedding_native, json, numpy as np; i = embedding_native.build_info(); "
         "t = np.arange(40, dtype=np.float32).reshape(8, 5); "
         "assert (embedding_native.embedding(np.array([7, 0, 3]), t) == t[[7, 0, 3]]).all(); "
         "print('BUILD_INFO ' + json.dumps({k: i[k] for k in ('tier', 'cpu_tier', 'selected_by', 'library_path', 'vector_width')}))")
# The refusal case: importing the package must raise TierNotSupportedError (importing
# embedding_native.errors alone would import the package, so the class is matched by name).
REFUSE = ("import sys\n"
          "try:\n"
          "    import embedding_native\n"
          "    print('LOADED ' + embedding_native.build_info()['tier']); sys.exit(3)\n"
          "except Exception as e:\n"
          "    if type(e).__name__ != 'TierNotSupportedError' or type(e).__module__ != 'embedding_native.errors': raise\n"
          "    print('REFUSED ' + str(e)); sys.exit(0)\n")


def host_tier(root):
    """The decision the loader takes natively (CPUID + XGETBV, asked of the x86-64-v2 build)."""
    cpu_py = os.path.join(root, "interop", "python", "embedding_native", "_cpu.py")
    return subprocess.run([PYTHON, cpu_py], capture_output=True, text=True, check=True).stdout.strip()


def run(root, cpu, code, tier_env=None):
    env = dict(os.environ)
    env["PYTHONPATH"] = os.path.join(root, "interop", "python")
    env.pop("EMBEDDING_NATIVE_LIBRARY", None)
    env.pop("EMBEDDING_NATIVE_TIER", None)
    if tier_env:
        env["EMBEDDING_NATIVE_TIER"] = tier_env
    cmd = ([QEMU, "-cpu", cpu] if cpu != "host" else []) + [PYTHON, "-c", code]
    start = time.monotonic()
    p = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=300)
    return p, time.monotonic() - start


def describe(p):
    rc = p.returncode
    what = "signal %s" % signal.Signals(-rc).name if rc < 0 else "exit %d" % rc
    if rc == 134 or rc == -6:
        what += " (SIGABRT: a tier the CPU cannot run was called)"
    return "%s\n--- stdout\n%s--- stderr\n%s" % (what, p.stdout, p.stderr[-3000:])


def main():
    root = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else ".")
    failures = 0
    host = host_tier(root)
    # (cpu model, EMBEDDING_NATIVE_TIER, expected tier or None for "refused"). Under qemu-user
    # CPUID is emulated, so the loader takes the emulated CPU's tier whatever the host runs
    # (/proc/cpuinfo, the host's, does not decide).
    cases = [
        ("host", None, host),
        ("max", None, "x86-64-v3"),              # qemu 7.2 TCG: AVX2/FMA/BMI2, no AVX-512
        ("Nehalem", None, "x86-64-v2"),          # SSE4.2/POPCNT, no AVX
        ("max", "x86-64-v4", None),              # CPUID says v3: refused, naming AVX512F
        ("Nehalem", "x86-64-v4", None),
        ("Nehalem", "x86-64-v3", None),
        ("max", "x86-64-v3", "x86-64-v3"),
        ("max", "x86-64-v2", "x86-64-v2"),       # a lower tier on request is fine
    ]
    for cpu, tier_env, expected in cases:
        label = "-cpu %-8s EMBEDDING_NATIVE_TIER=%-9s" % (cpu, tier_env or "-")
        if expected is not None:
            p, secs = run(root, cpu, PROBE, tier_env)
            line = next((l for l in p.stdout.splitlines() if l.startswith("BUILD_INFO ")), None)
            info = json.loads(line[len("BUILD_INFO "):]) if (p.returncode == 0 and line) else None
            if info is not None and info["tier"] == expected and info["library_path"].endswith("/%s/libembedding_native.so" % expected):
                print("PASS %s -> %s (cpu_tier %s, selected_by %s, %d-bit vectors) [%.1f s]"
                      % (label, info["tier"], info["cpu_tier"], info["selected_by"], info["vector_width"], secs))
            else:
                failures += 1
                print("FAIL %s: expected %s, got %s; %s" % (label, expected, info, describe(p)))
        else:
            p, secs = run(root, cpu, REFUSE, tier_env)
            line = next((l for l in p.stdout.splitlines() if l.startswith("REFUSED ")), None)
            if p.returncode == 0 and line:
                print("PASS %s -> refused: %s [%.1f s]" % (label, line[len("REFUSED "):], secs))
            else:
                failures += 1
                print("FAIL %s: expected TierNotSupportedError; %s" % (label, describe(p)))
    print("loader tiers: %d passed, %d failed" % (len(cases) - failures, failures))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
