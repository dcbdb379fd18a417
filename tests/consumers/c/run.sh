#!/usr/bin/env bash
# Builds consumer.c OUTSIDE the source tree against an installed embedding_native, the two ways
# users do: pkg-config and CMake's find_package. Runs each build and checks a lookup.
#
#   tests/consumers/c/run.sh PREFIX [HOST_TIER]
#
# PREFIX is a `make install PREFIX=...` tree. HOST_TIER (x86-64-v2|v3|v4, the best this CPU runs)
# decides which of the installed faster builds are also run.
set -euo pipefail

prefix=$(cd "$1" && pwd)
host_tier=${2:-x86-64-v2}
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp "$here/consumer.c" "$here/CMakeLists.txt" "$work/"
cd "$work"

level() {
  case "$1" in
    x86-64-v2) echo 2 ;;
    x86-64-v3) echo 3 ;;
    x86-64-v4) echo 4 ;;
    *) echo "unknown tier $1" >&2; return 1 ;;
  esac
}
host_level=$(level "$host_tier")

# The library has no SONAME: the program must record the bare file name, not a build path.
check_needed() {
  local needed
  needed=$(readelf -d "$1" | sed -n 's/.*(NEEDED).*\[\(libembedding_native[^]]*\)\].*/\1/p')
  if [ "$needed" != "libembedding_native.so" ]; then
    echo "FAILED: $1 records '$needed' as its embedding_native dependency" >&2
    return 1
  fi
}

echo "-- C consumer via pkg-config (copied to $work)"
export PKG_CONFIG_PATH="$prefix/lib/pkgconfig"
pkg-config --exists --print-errors 'embedding_native >= 0.1'
libdir=$(pkg-config --variable=libdir embedding_native)
# shellcheck disable=SC2046  # word splitting of the flags is intended
cc -std=c99 -Wall -Wextra -Werror $(pkg-config --cflags embedding_native) consumer.c \
   $(pkg-config --libs embedding_native) -Wl,-rpath,"$libdir" -o consumer-pkgconfig
check_needed consumer-pkgconfig
./consumer-pkgconfig 2

# The faster builds this CPU can run, swapped in at run time through the loader's search path.
tierdir=$(pkg-config --variable=tierdir embedding_native)
for t in $(pkg-config --variable=tiers embedding_native); do
  if [ "$(level "$t")" -le "$host_level" ]; then
    echo "-- same program, LD_LIBRARY_PATH=$tierdir/$t"
    LD_LIBRARY_PATH="$tierdir/$t" ./consumer-pkgconfig "$(level "$t")"
  else
    echo "-- skipping $t: this CPU runs up to $host_tier"
  fi
done

echo "-- C consumer via CMake find_package(EmbeddingNative)"
cmake -S . -B build-cmake -DCMAKE_PREFIX_PATH="$prefix" >cmake.log 2>&1 || { cat cmake.log; exit 1; }
cmake --build build-cmake >>cmake.log 2>&1 || { cat cmake.log; exit 1; }
check_needed build-cmake/consumer
./build-cmake/consumer 2

if [ "$host_level" -gt 2 ]; then
  echo "-- C consumer via CMake, EmbeddingNative_TIER=$host_tier"
  cmake -S . -B build-tier -DCMAKE_PREFIX_PATH="$prefix" -DEmbeddingNative_TIER="$host_tier" >cmake.log 2>&1 || { cat cmake.log; exit 1; }
  cmake --build build-tier >>cmake.log 2>&1 || { cat cmake.log; exit 1; }
  check_needed build-tier/consumer
  ./build-tier/consumer "$host_level"
fi

# A request for the next major version must not find this one.
mkdir -p major && cat >major/CMakeLists.txt <<'CMAKE'
cmake_minimum_required(VERSION 3.13)
project(major_check LANGUAGES NONE)
find_package(EmbeddingNative 99.0 QUIET)
if(EmbeddingNative_FOUND)
  message(FATAL_ERROR "find_package(EmbeddingNative 99.0) accepted version ${EmbeddingNative_VERSION}")
endif()
CMAKE
cmake -S major -B build-major -DCMAKE_PREFIX_PATH="$prefix" >cmake.log 2>&1 || { cat cmake.log; exit 1; }
echo "-- find_package(EmbeddingNative 99.0) correctly not found"
echo "C consumer: OK"
