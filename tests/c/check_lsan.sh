#!/usr/bin/env bash
# Proves that tests/c/lsan.supp hides the NativeAOT runtime's start-up block and no leak made by
# a call into the library: builds tests/c/lsan_probe.c with AddressSanitizer against LIBDIR's
# libembedding_native.so and runs it with the suppressions. LeakSanitizer must report the probe's
# deliberate 4093-byte leak (allocated on a stack through emb_embedding) and must not report the
# runtime's start-up block.
#
#   tests/c/check_lsan.sh LIBDIR OUTDIR       (run by make test-c; CC defaults to gcc)
set -euo pipefail

libdir=$(cd "$1" && pwd)
out=$2
here=$(cd "$(dirname "$0")" && pwd)
supp=$here/lsan.supp
log=$out/lsan_probe.log
fail() {
  echo "FAILED: $*" >&2
  if [ -f "$log" ]; then sed 's/^/  | /' "$log" >&2; fi
  exit 1
}

# The function names come from the debug file named by the stripped library's .gnu_debuglink.
debug=$(readelf --string-dump=.gnu_debuglink "$libdir/libembedding_native.so" | sed -n 's/^ *\[ *0\] *//p')
if [ -z "$debug" ] || [ ! -f "$libdir/$debug" ]; then
  fail "no debug file '$debug' next to $libdir/libembedding_native.so: LeakSanitizer cannot name the" \
       "library's functions, so no suppression can match (make native copies it there)"
fi

mkdir -p "$out"
rm -f "$log"
"${CC:-gcc}" -std=c99 -pthread -g -O1 -fsanitize=address,undefined -fno-omit-frame-pointer \
  -I"$here/../../src/Embedding.Native/include" "$here/lsan_probe.c" \
  -L"$libdir" -lembedding_native -Wl,-rpath,"$libdir" -o "$out/lsan_probe"
status=0
LSAN_OPTIONS="suppressions=$supp:exitcode=23" "$out/lsan_probe" >"$log" 2>&1 || status=$?

grep -q '^lsan_probe: leaked' "$log" || fail "the probe did not make its leak (exit $status)"
[ "$status" -eq 23 ] || fail "LeakSanitizer reported no leak (exit $status): $supp hides a leak made inside the library"
probe_leak=$(awk '/^Direct leak of 4093 byte/ { p = 1 } p && /^$/ { exit } p' "$log")
grep -q 'NativeExports__Embedding' <<<"$probe_leak" \
  || fail "the probe's 4093-byte leak is missing from the report, or its stack does not run through emb_embedding"
if sed '/^Suppressions used:/,$d' "$log" | grep -q 'WaitSubsystem___cctor'; then
  fail "the runtime's start-up block is reported: $supp did not match it"
fi
echo "PASS lsan.supp hides the runtime's start-up block; a leak inside emb_embedding is reported"
