#!/usr/bin/env bash
# Installs interop/python the ways a user would, offline and with Debian's tools only, and uses
# each installed copy from outside the repository.
#
#   tests/consumers/python/run.sh [PYTHON]      (default /usr/bin/python3; run `make native` first)
#
#   1. interop/python/README.md's install commands, as written (a venv in a temporary directory
#      that mirrors the repository root: tests/docs/run_block.sh)
#   2. pip install --target DIR          (numpy comes from Debian, hence --no-deps: --target
#                                         ignores what is already installed)
#   3. pip wheel, then the wheel's tag (py3-none-<platform>) and layout (platlib, libraries inside)
#   4. that wheel into a venv with --system-site-packages (numpy from Debian satisfies the dependency)
# Each copy runs `python -m embedding_native` and consumer.py from the temporary directory.
# Afterwards the source tree must have no untracked file it did not have before (build/,
# *.egg-info, ...).
set -euo pipefail

python=${1:-/usr/bin/python3}
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../../.." && pwd)
source_dir=$repo/interop/python
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp "$here/consumer.py" "$work/"
pip_flags=(--no-build-isolation --no-index --disable-pip-version-check --no-cache-dir -q)
# The loader must choose by itself: no override from the calling environment.
unset EMBEDDING_NATIVE_LIBRARY EMBEDDING_NATIVE_TIER PYTHONPATH

untracked() {
  if git -C "$repo" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
    git -C "$repo" status --porcelain --untracked-files=all | sed -n 's/^?? //p' | sort
  fi
}
untracked >"$work/untracked.before"

echo "-- interop/python/README.md's install commands"
PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 \
  "$repo/tests/docs/run_block.sh" "$source_dir/README.md" python-install "$work/readme"
(cd "$work" && "$work/readme/.venv/bin/python" consumer.py "$work/readme/.venv")

echo "-- pip install --target $work/site $source_dir"
PIP_ROOT_USER_ACTION=ignore "$python" -m pip install "${pip_flags[@]}" --no-deps --target "$work/site" "$source_dir"
cd "$work"
PYTHONPATH="$work/site" "$python" -m embedding_native | tee main.out
grep -q "^library:  $work/site/embedding_native/_native/" main.out
PYTHONPATH="$work/site" "$python" consumer.py "$work/site"

echo "-- pip wheel"
PIP_ROOT_USER_ACTION=ignore "$python" -m pip wheel "${pip_flags[@]}" --no-deps -w "$work/wheelhouse" "$source_dir"
wheel=$(ls "$work"/wheelhouse/embedding_native-*.whl)
"$python" - "$wheel" <<'PY'
import sys, zipfile
path = sys.argv[1]
name = path.rsplit("/", 1)[1]
assert name.endswith("-py3-none-linux_x86_64.whl"), "unexpected wheel tag: " + name
with zipfile.ZipFile(path) as z:
    names = z.namelist()
    wheel_meta = next(n for n in names if n.endswith(".dist-info/WHEEL"))
    assert "Root-Is-Purelib: false" in z.read(wheel_meta).decode(), "wheel would install into purelib"
    for tier in ("x86-64-v2", "x86-64-v3", "x86-64-v4"):
        lib = "embedding_native/_native/linux-x64/%s/libembedding_native.so" % tier
        assert lib in names, lib + " missing from the wheel"
    for module in ("embedding_native/quantized.py", "embedding_native/_ops/quantized.py",
                   "embedding_native/torch/__init__.py", "embedding_native/torch/quantized.py",
                   "embedding_native/torch/_library.py", "embedding_native/_tables/files.py",
                   "embedding_native/torch/distributed/__init__.py",
                   "embedding_native/torch/distributed/__main__.py"):
        assert module in names, module + " missing from the wheel"
print("wheel: %s (platlib, 3 tiers)" % name)
PY

echo "-- the wheel in a venv (--system-site-packages)"
"$python" -m venv --system-site-packages "$work/venv"
"$work/venv/bin/python" -m pip install --no-index --disable-pip-version-check -q "$wheel"
"$work/venv/bin/python" -m embedding_native >/dev/null
"$work/venv/bin/python" consumer.py "$work/venv"

untracked >"$work/untracked.after"
if new_files=$(comm -13 "$work/untracked.before" "$work/untracked.after") && [ -n "$new_files" ]; then
  echo "FAILED: installing left new files in the source tree:" >&2
  sed 's/^/  /' <<<"$new_files" >&2
  exit 1
fi
echo "Python consumer: OK"
