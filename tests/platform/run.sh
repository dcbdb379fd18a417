#!/usr/bin/env bash
# run.sh LABEL LOG [--expect-abort] -- COMMAND...
#   Runs COMMAND with its output in LOG and prints one line: "PASS LABEL: <last line> [time]".
#   On failure prints the end of LOG and exits non-zero.
#   --expect-abort: COMMAND must die of SIGABRT after NativeAOT's "The required instruction sets
#   are not supported by the current CPU." (proves the emulated CPU really lacks the tier's ISA).
set -u
label=$1 log=$2; shift 2
expect_abort=0
if [ "${1:-}" = "--expect-abort" ]; then expect_abort=1; shift; fi
[ "${1:-}" = "--" ] && shift
start=$EPOCHREALTIME
{ "$@" >"$log" 2>&1; } 2>>"$log"   # the shell's own "Aborted" notice goes to the log too
rc=$?
secs=$(awk -v a="$start" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }')
if [ $expect_abort = 1 ]; then
  if [ $rc = 134 ] && grep -q 'required instruction sets are not supported' "$log"; then
    echo "PASS $label: refused by the runtime as expected (SIGABRT, \"$(grep -m1 'required instruction sets' "$log")\") [${secs} s]"
    exit 0
  fi
  echo "FAIL $label: expected the NativeAOT ISA check to abort (rc 134), got rc $rc"; tail -20 "$log"; exit 1
fi
if [ $rc != 0 ]; then
  echo "FAIL $label (rc $rc), log $log:"; grep -E '^(FAIL|ERROR)' "$log" | head -20; tail -5 "$log"; exit 1
fi
echo "PASS $label: $(tail -1 "$log") [${secs} s]"
