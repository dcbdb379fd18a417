#!/usr/bin/env bash
# Runs a shell block of a Markdown file as written, the way a reader runs it from the repository
# root. The block is the fenced code block that follows the line `<!-- test: NAME -->`.
#
#   tests/docs/run_block.sh FILE NAME [DIR]
#
# The commands run with `bash -e` in DIR (default: a temporary directory, removed afterwards),
# which holds a symbolic link to every top-level entry of the repository: relative paths resolve
# as from the root, and what the commands create stays out of the source tree. Nothing from the
# caller's environment may help them: LD_LIBRARY_PATH, PYTHONPATH, VIRTUAL_ENV and
# PIP_BREAK_SYSTEM_PACKAGES are unset.
set -euo pipefail

file=$1
name=$2
repo=$(cd "$(dirname "$0")/../.." && pwd)
block=$(awk -v marker="<!-- test: $name -->" '
  $0 == marker { after = 1; next }
  after && /^```/ { if (inside) exit; inside = 1; next }
  inside { print }' "$file")
if [ -z "$block" ]; then
  echo "FAILED: $file has no code block after <!-- test: $name -->" >&2
  exit 1
fi

if [ $# -ge 3 ]; then
  dir=$3
  mkdir -p "$dir"
else
  dir=$(mktemp -d)
  trap 'rm -rf "$dir"' EXIT
fi
for entry in "$repo"/*; do
  ln -sfn "$entry" "$dir/$(basename "$entry")"
done

echo "-- $file, block '$name', run in $dir:"
sed 's/^/   $ /' <<<"$block"
(cd "$dir" && env -u LD_LIBRARY_PATH -u PYTHONPATH -u VIRTUAL_ENV -u PIP_BREAK_SYSTEM_PACKAGES \
   bash -euo pipefail -c "$block")
echo "-- block '$name': OK"
