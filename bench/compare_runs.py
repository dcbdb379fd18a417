"""Compares two side_by_side.py logs row by row: our time before/after and ours/torch before/after.

Usage: /usr/bin/python3 bench/compare_runs.py BEFORE.log AFTER.log > comparison.md
(the logs are side_by_side.py's stdout; rows are matched by workload, op and order of appearance)
"""
import re, statistics, collections, sys
U={"ns":1e-3,"µs":1.0,"ms":1e3,"s":1e6}
def rows(path):
    out={}; seen=collections.Counter()
    for line in open(path):
        m=re.match(r"\[\s*\d+/\d+\]\s+(.+?)\s{2,}(\S+)\s+torch\s+([\d.]+)\s*(\S+)\s+ours\s+([\d.]+)\s*(\S+)\s+\((.*?)\)\s+ours/torch\s+([\d.]+)",line)
        if m:
            wl,op,t,tu,o,ou,variant,ratio=m.groups()
            key=(wl.strip(),op); seen[key]+=1
            out[key+(seen[key],)]=(float(o)*U[ou],float(ratio),variant)
    return out
b = rows(sys.argv[1]); a = rows(sys.argv[2])
common=[k for k in a if k in b]
speed=[b[k][0]/a[k][0] for k in common]; rat=[a[k][1]/b[k][1] for k in common]
print(f"{len(common)} rows in both runs. Our time before/after (>1 = faster now): median {statistics.median(speed):.3f}, geometric mean {statistics.geometric_mean(speed):.3f}, range {min(speed):.2f}-{max(speed):.2f}. ours/torch after/before: median {statistics.median(rat):.3f}.")
print()
print("| workload | op | # | variant (after) | ours µs before | ours µs after | before/after | ours/torch before | ours/torch after |")
print("|---|---|---|---|---|---|---|---|---|")
for k in common:
    print(f"| {k[0]} | {k[1]} | {k[2]} | {a[k][2]} | {b[k][0]:.1f} | {a[k][0]:.1f} | {b[k][0]/a[k][0]:.2f} | {b[k][1]:.2f} | {a[k][1]:.2f} |")
