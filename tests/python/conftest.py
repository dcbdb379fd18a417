"""pytest setup for the Python parity suite (run with /usr/bin/python3, which has torch 1.13).

* Puts ``interop/python`` first on sys.path so ``import embedding_native`` finds the package
  of this checkout (the tier libraries are copied into it by ``make python-package``).
* Pins torch to one intra-op thread: the oracle's orders are the single-thread ones (spec §0).
* When ``EMBEDDING_NATIVE_TIER`` names a tier this CPU cannot run, the loader refuses it; the
  Makefile still runs the suite once per tier, so then only the loader and CPU-probe tests run
  (they check the refusal) and the header says why the parity tests were left out.
"""

import os
import pathlib
import sys

ROOT = pathlib.Path(__file__).resolve().parents[2]
PACKAGE_PARENT = ROOT / "interop" / "python"
sys.path.insert(0, str(PACKAGE_PARENT))

import torch  # noqa: E402

torch.set_num_threads(1)

_REFUSED = None
try:
    import embedding_native  # noqa: E402,F401
except OSError as e:
    # Only a refused tier is a reason to skip; anything else (library missing, bad version)
    # must fail the run.
    if type(e).__name__ != "TierNotSupportedError":
        raise
    _REFUSED = str(e)

# Tests that need the library loaded in this process; the others start subprocesses or load
# _cpu.py by path.
if _REFUSED is not None:
    collect_ignore_glob = [p.name for p in pathlib.Path(__file__).parent.glob("test_*.py")
                           if p.name not in ("test_loader.py", "test_cpu.py")]


def pytest_report_header(config):
    tier = os.environ.get("EMBEDDING_NATIVE_TIER") or "(auto)"
    if _REFUSED is not None:
        return "embedding_native: tier %s refused on this CPU, parity tests not collected: %s" % (tier, _REFUSED)
    info = embedding_native.build_info()
    return "embedding_native: requested tier %s, loaded %s (%s), torch %s" % (
        tier, info["tier"], info["library_path"], torch.__version__)
