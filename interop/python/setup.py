"""Builds the embedding_native wheel with the native libraries inside the package.

Metadata is in pyproject.toml; this file only does what setuptools cannot be told declaratively:

1. Copy the NativeAOT libraries into the package, as the loader (``embedding_native._lib``)
   expects them: ``embedding_native/_native/linux-x64/<tier>/libembedding_native.so``.
   For each tier the first of these that exists is taken:

     a. ``$EMBEDDING_NATIVE_ARTIFACTS/<tier>/libembedding_native.so``   (explicit, any layout like b)
     b. ``<repository>/artifacts/native/<tier>/libembedding_native.so`` (what ``make native`` writes)
     c. ``embedding_native/_native/linux-x64/<tier>/libembedding_native.so`` (already in the
        package: ``make python-package``, or an unpacked source distribution)

   The baseline tier x86-64-v2 is required (the loader asks it for CPUID before choosing a
   faster one), the others are optional; a build without the baseline fails here rather than
   installing a package that cannot import. Any other platform directories already under
   ``_native/`` (e.g. an ARM64 build) are shipped as they are.

2. Tag the wheel ``py3-none-<platform>`` and install it into platlib: the libraries are loaded
   with ctypes, so the wheel depends on the platform but not on the Python version or ABI.

Build artifacts (``build/``, ``*.egg-info``) go under ``<repository>/artifacts/python-build``
when this runs inside the repository, keeping the source tree clean.
"""

import os
import shutil

from setuptools import Distribution, setup
from setuptools.command.build_py import build_py as _build_py

try:  # setuptools >= 70.1 has its own; Debian 12 has setuptools 66 + wheel 0.38
    from setuptools.command.bdist_wheel import bdist_wheel as _bdist_wheel
except ImportError:
    from wheel.bdist_wheel import bdist_wheel as _bdist_wheel

HERE = os.path.dirname(os.path.abspath(__file__))
PACKAGE = "embedding_native"
PLATFORM = "linux-x64"
LIBRARY = "libembedding_native.so"
# The fast ways in for tensors and numpy arrays (make python-package builds them; without them the
# package serves both through ctypes, with the same results).
TORCH_OPERATORS = "libembedding_native_torch.so"
NUMPY_EXTENSION = "_numpy_calls.abi3.so"
BASELINE_TIER = "x86-64-v2"
TIERS = (BASELINE_TIER, "x86-64-v3", "x86-64-v4")
ARTIFACTS_ENV = "EMBEDDING_NATIVE_ARTIFACTS"

REPOSITORY = os.path.normpath(os.path.join(HERE, "..", ".."))
REPO_NATIVE = os.path.join(REPOSITORY, "artifacts", "native")
IN_REPOSITORY = os.path.isfile(os.path.join(REPOSITORY, "src", "Embedding.Native", "include", "embedding_native.h"))


def find_library(tier):
    """The library file for ``tier`` (see the module docstring), or None."""
    candidates = []
    if os.environ.get(ARTIFACTS_ENV):
        candidates.append(os.path.join(os.environ[ARTIFACTS_ENV], tier, LIBRARY))
    if IN_REPOSITORY:
        candidates.append(os.path.join(REPO_NATIVE, tier, LIBRARY))
    candidates.append(os.path.join(HERE, PACKAGE, "_native", PLATFORM, tier, LIBRARY))
    for path in candidates:
        if os.path.isfile(path):
            return path
    return None


class build_py(_build_py):
    """The pure-Python files as usual, then the native libraries next to them."""

    def run(self):
        # Start from nothing, so a file removed from the sources is not shipped from a stale build.
        package_out = os.path.join(self.build_lib, PACKAGE)
        if os.path.isdir(package_out):
            shutil.rmtree(package_out)
        super().run()
        native_out = os.path.join(package_out, "_native")

        native_src = os.path.join(HERE, PACKAGE, "_native")
        if os.path.isdir(native_src):
            for name in sorted(os.listdir(native_src)):
                if name != PLATFORM and os.path.isdir(os.path.join(native_src, name)):
                    shutil.copytree(os.path.join(native_src, name), os.path.join(native_out, name))

        for tier in TIERS:
            source = find_library(tier)
            if source is None:
                if tier == BASELINE_TIER:
                    raise SystemExit(
                        "embedding_native: no %s for %s (looked in $%s, %s and the package's _native "
                        "directory); run `make native` first" % (LIBRARY, tier, ARTIFACTS_ENV, REPO_NATIVE))
                self.announce("embedding_native: no %s build, the package will not have it" % tier, level=3)
                continue
            target_dir = os.path.join(native_out, PLATFORM, tier)
            os.makedirs(target_dir, exist_ok=True)
            self.copy_file(source, os.path.join(target_dir, LIBRARY), preserve_mode=True)

        # The torch operators (built against Debian's torch 1.13 and used only under it) and the
        # numpy extension (CPython's stable ABI, 3.11 on).
        for name in (TORCH_OPERATORS, NUMPY_EXTENSION):
            source = os.path.join(native_src, PLATFORM, name)
            if os.path.isfile(source):
                self.copy_file(source, os.path.join(native_out, PLATFORM, name), preserve_mode=True)


class bdist_wheel(_bdist_wheel):
    """A platform wheel that works with any Python 3: ``py3-none-<platform>``."""

    def finalize_options(self):
        super().finalize_options()
        self.root_is_pure = False

    def get_tag(self):
        _, _, platform_tag = super().get_tag()
        return "py3", "none", platform_tag


class BinaryDistribution(Distribution):
    """Installs into platlib (the package holds binaries) although it has no extension modules."""

    def has_ext_modules(self):
        return True


def _build_options():
    if not IN_REPOSITORY:
        return {}
    base = os.path.join(REPOSITORY, "artifacts", "python-build")
    os.makedirs(base, exist_ok=True)
    return {"build": {"build_base": os.path.join(base, "build")}, "egg_info": {"egg_base": base}}


setup(
    cmdclass={"build_py": build_py, "bdist_wheel": bdist_wheel},
    distclass=BinaryDistribution,
    options=_build_options(),
)
