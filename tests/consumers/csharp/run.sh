#!/usr/bin/env bash
# The C# consumer against the freshly packed NuGet package, outside the repository.
#
#   tests/consumers/csharp/run.sh NUGET_DIR VERSION      (NUGET_DIR holds Embedding.Native.VERSION.nupkg)
#
#   1. checks the package layout (lib + XML docs, analyzer, runtimes/linux-x64/native, no dependency
#      on the generator project)
#   2. copies this folder to a temporary directory, with the package as its local feed ./feed
#   3. dotnet run (JIT), then a trimmed NativeAOT publish for linux-x64 with warnings as errors,
#      and runs the native executable
set -euo pipefail

nuget_dir=$(cd "$1" && pwd)
version=$2
here=$(cd "$(dirname "$0")" && pwd)
package="$nuget_dir/Embedding.Native.$version.nupkg"
test -f "$package" || { echo "no $package" >&2; exit 1; }

echo "-- package layout: $package"
/usr/bin/python3 - "$package" <<'PY'
import sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as z:
    names = set(z.namelist())
    nuspec = z.read(next(n for n in names if n.endswith(".nuspec"))).decode()
for required in ("lib/net10.0/Embedding.Native.dll", "lib/net10.0/Embedding.Native.xml",
                 "analyzers/dotnet/cs/Embedding.Generators.dll",
                 "runtimes/linux-x64/native/libembedding_native.so", "README.md"):
    assert required in names, required + " is missing from the package"
assert "Embedding.Generators" not in nuspec, "the generator must be inside the package, not a dependency"
print("  " + "\n  ".join(sorted(n for n in names if not n.startswith(("_rels/", "package/", "[")))))
PY

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp "$here/Consumer.csproj" "$here/Program.cs" "$here/NuGet.config" "$work/"
mkdir "$work/feed"
cp "$package" "$work/feed/"
cd "$work"

# The version does not change between packs: drop the copy restored earlier from the global
# packages folder, or the test would run against a stale package.
packages=$(dotnet nuget locals global-packages --list | sed -n 's/^global-packages: *//p')
rm -rf "${packages%/}/embedding.native/$version"

export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1
echo "-- dotnet run (JIT) in $work"
dotnet run -c Release -p:EmbeddingNativeVersion="$version" -v quiet -- JIT

echo "-- dotnet publish -r linux-x64 (NativeAOT, trimmed, warnings as errors)"
dotnet publish -c Release -r linux-x64 -p:EmbeddingNativeVersion="$version" -warnaserror \
  -o "$work/publish" -v minimal >publish.log 2>&1 || { cat publish.log; exit 1; }
if grep -Ei ': warning [A-Z]+[0-9]+' publish.log; then
  echo "FAILED: the NativeAOT publish printed warnings" >&2
  exit 1
fi
# A NativeAOT publish has no managed entry assembly.
test ! -e "$work/publish/Consumer.dll" || { echo "FAILED: publish is not NativeAOT" >&2; exit 1; }
"$work/publish/Consumer" NativeAOT
echo "C# consumer: OK"
