#!/usr/bin/env bash
# compare_parity.sh REF OTHER...  — each argument is the stem of a parity run (STEM.txt: the
# "case <name> <bytes> <fnv1a>" manifest printed by parity.c; STEM.bin: the raw outputs).
# Every OTHER must match REF case for case and byte for byte; prints the first differences.
set -u
ref=$1; shift
status=0
for other in "$@"; do
  if ! grep -q '^parity: 0 call errors' "$other.txt"; then
    echo "FAIL $other: the run did not finish cleanly:"; grep -E '^(ERROR|parity)' "$other.txt" | head -20
    status=1; continue
  fi
  d=$(diff <(grep '^case ' "$ref.txt") <(grep '^case ' "$other.txt"))
  cases=$(grep -c '^case ' "$other.txt")
  if [ -n "$d" ] || ! cmp -s "$ref.bin" "$other.bin"; then
    echo "FAIL $other differs from $ref ($(printf '%s\n' "$d" | grep -c '^>') of $cases cases):"
    printf '%s\n' "$d" | head -20
    cmp "$ref.bin" "$other.bin" | head -1
    status=1
  else
    echo "PASS $(basename "$other"): $cases cases bit-identical to $(basename "$ref") ($(sed -n 's/^tier //p' "$other.txt"))"
  fi
done
exit $status
