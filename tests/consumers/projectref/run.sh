#!/usr/bin/env bash
# Embedding.Native through a ProjectReference, from a copy of this folder outside the repository.
#
#   tests/consumers/projectref/run.sh
#
#   1. the obvious form, a single ProjectReference to Embedding.Native.csproj and no generator: the
#      build must stop with EMB0100 and say what to add ([EmbeddingKernels] would otherwise compile
#      and generate nothing)
#   2. the documented form (ProjectRefConsumer.csproj as it is, the generator referenced with
#      OutputItemType="Analyzer"): builds, and at run time the consumer's D=48 kernel set is the one
#      registered for D=48
# Embedding.Native and the generator build into the repository's artifacts/ as usual; the
# consumer's bin/ and obj/ stay in the temporary directory.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../../.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1

mkdir "$work/obvious" "$work/documented"
cp "$here/Program.cs" "$here/ProjectRefConsumer.csproj" "$work/documented/"
cp "$here/Program.cs" "$work/obvious/"
sed '/<!-- GENERATOR -->/,/<!-- \/GENERATOR -->/d' "$here/ProjectRefConsumer.csproj" >"$work/obvious/ProjectRefConsumer.csproj"
if grep -q 'Embedding.Generators' "$work/obvious/ProjectRefConsumer.csproj"; then
  echo "FAILED: could not remove the generator reference for the obvious form" >&2
  exit 1
fi

build() {  # build DIR LOG
  dotnet build "$1/ProjectRefConsumer.csproj" -c Release --nologo -v quiet -p:EmbeddingNativeRoot="$repo/" >"$2" 2>&1
}

echo "-- ProjectReference without the generator: the build must stop with EMB0100"
if build "$work/obvious" "$work/obvious.log"; then
  echo "FAILED: it built, so [EmbeddingKernels] would silently generate nothing; running it:" >&2
  dotnet "$work/obvious/bin/Release/net10.0/ProjectRefConsumer.dll" >&2 || true
  exit 1
fi
if ! grep -q 'error EMB0100:.*OutputItemType="Analyzer"' "$work/obvious.log"; then
  echo "FAILED: the build failed, but not with EMB0100 naming the generator reference:" >&2
  cat "$work/obvious.log" >&2
  exit 1
fi
grep -m1 'error EMB0100' "$work/obvious.log" | sed "s|$work/||g; s|^ *|  |"

echo "-- ProjectReference with the generator as an analyzer"
build "$work/documented" "$work/documented.log" || { cat "$work/documented.log" >&2; exit 1; }
dotnet "$work/documented/bin/Release/net10.0/ProjectRefConsumer.dll"
echo "ProjectReference consumer: OK"
