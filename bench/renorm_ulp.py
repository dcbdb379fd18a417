"""How far embedding_native's max_norm renormalisation is from torch 1.13's, element by element.

    /usr/bin/python3 bench/renorm_ulp.py [--tables N] [--rows R] [--out FILE] [--tiers]

For every norm_type p in {1, 2, 3, 0.5, 1.5, inf} and every dimension D in {1, 5, 16, 64, 300, 768},
N seeded random float32 tables of R rows (default 100 tables of 32 rows, so 600 tables per p) are
renormalised twice from the same bits: by ``torch.embedding_renorm_`` and by
``embedding_native.functional.embedding_renorm_``; the same table also goes through the torch
drop-in (``embedding_native.torch.embedding(..., max_norm=...)``), which must give the functional
path's bits. Tables: rows are standard normal (two tables in three) or uniform in [-1, 1] (one in
three), each row multiplied by a log-uniform factor in [0.1, 10]; max_norm is the 40th percentile
of the exact row norms, so about 60% of the rows exceed it; 1.5·R indices drawn with replacement
(duplicates, and about a fifth of the rows not referenced).

Per p it reports, over rows both sides rescaled:

* rows changed by torch: share of the referenced rows torch rescaled;
* threshold flips: referenced rows only one side rescaled (max_norm lies between torch's float32
  norm and ours; excluded from the columns below);
* elements differing: share of the rescaled rows' elements whose bits differ, and share of
  rescaled rows with at least one;
* worst and median ulp distance among the differing elements (ulp distance: how many float32
  values lie between the two, +1);
* the row scale s = fl32(max_norm / (norm + 1e-7)) each side used: worst relative difference
  and worst distance in ulps of s;
* torch's norm error: worst |torch's float32 norm / exact norm - 1| (the exact norm is the
  float64 one; for p = 1 and 2 the float64 terms are exact and the sum has ~1e-16 error).

The mechanism is checked, not assumed: every rescaled row of each side must equal fl32(x * s)
elementwise, with torch's s computed from ``row.norm(p)`` (float32, converted to double) and
ours from the float64 norm; the count of rows that do not is printed (expected 0).

``--tiers`` also runs our half in one subprocess per packaged tier library
(``EMBEDDING_NATIVE_TIER`` and ``EMBEDDING_NATIVE_LIBRARY`` set to that build) and compares a
SHA-256 of all our renormalised tables: equal digests mean the tier does not change a bit.
``--digest`` is that subprocess: it prints the tier and the digest only (no torch runs).

Output: markdown on stdout, and with ``--out`` also in that file (bench/results/renorm-ulp.md).
torch runs on one thread (torch.set_num_threads(1)), as in the parity suite.
"""

import argparse
import datetime
import glob
import hashlib
import json
import os
import platform
import subprocess
import sys
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "interop", "python"))

import embedding_native as en  # noqa: E402
from embedding_native import functional as ef  # noqa: E402

INF = float("inf")
NORM_TYPES = [1.0, 2.0, 3.0, 0.5, 1.5, INF]
DIMS = [1, 5, 16, 64, 300, 768]


def make_table(p, dim, t, rows):
    """The t-th table for (p, dim): weight, indices, max_norm and the exact (float64) row norms."""
    seed = [int(p * 1000) if p != INF else 999999, dim, t]
    rng = np.random.default_rng(seed)
    if t % 3 == 2:
        w = rng.uniform(-1, 1, size=(rows, dim)).astype(np.float32)
    else:
        w = rng.standard_normal((rows, dim), dtype=np.float32)
    w *= np.exp(rng.uniform(np.log(0.1), np.log(10), size=(rows, 1))).astype(np.float32)
    exact = exact_norms(w, p)
    max_norm = float(np.quantile(exact, 0.4))
    idx = rng.integers(0, rows, size=rows + rows // 2).astype(np.int64)
    return w, idx, max_norm, exact


def exact_norms(w, p):
    w = np.abs(w.astype(np.float64))
    if p == INF:
        return w.max(axis=1)
    if p == 1:
        return w.sum(axis=1)
    if p == 2:
        return np.sqrt((w * w).sum(axis=1))
    return ((w ** p).sum(axis=1)) ** (1.0 / p)


def ordered(x):
    """float32 -> int64 whose order is the float order (ulp distance = difference)."""
    i = x.view(np.int32).astype(np.int64)
    return np.where(i < 0, -(i & 0x7FFFFFFF), i)


def ulp_distance(a, b):
    return np.abs(ordered(a) - ordered(b))


def ours_only(tables, rows):
    """Our renormalised tables for every (p, dim, t), as one digest."""
    digest = hashlib.sha256()
    for p in NORM_TYPES:
        for dim in DIMS:
            for t in range(tables):
                w, idx, max_norm, _ = make_table(p, dim, t, rows)
                ef.embedding_renorm_(w, idx, max_norm, p)
                digest.update(w.tobytes())
    return digest.hexdigest()


def measure(tables, rows):
    import torch
    from embedding_native import torch as et

    torch.set_num_threads(1)
    digest = hashlib.sha256()
    per_p, per_pd = {}, {}
    for p in NORM_TYPES:
        acc = dict(referenced=0, torch_rescaled=0, flips=0, rows_both=0, rows_differing=0, elements=0,
                   differing=0, ulps=[], scale_rel=0.0, scale_ulp=0, norm_err=0.0, unexplained_torch=0,
                   unexplained_ours=0, dropin_mismatch=0)
        for dim in DIMS:
            cell = dict(elements=0, differing=0, worst=0)
            for t in range(tables):
                w, idx, max_norm, exact = make_table(p, dim, t, rows)
                theirs = torch.from_numpy(w.copy())
                with torch.no_grad():
                    torch.embedding_renorm_(theirs, torch.from_numpy(idx), max_norm, p)
                theirs = theirs.numpy()
                ours = w.copy()
                ef.embedding_renorm_(ours, idx, max_norm, p)
                digest.update(ours.tobytes())
                dropin = torch.from_numpy(w.copy())
                et.embedding(torch.from_numpy(idx), dropin, max_norm=max_norm, norm_type=p)
                acc["dropin_mismatch"] += int(not np.array_equal(dropin.numpy().view(np.uint32), ours.view(np.uint32)))

                referenced = np.unique(idx)
                changed_t = np.zeros(rows, bool)
                changed_o = np.zeros(rows, bool)
                changed_t[referenced] = ~np.all(theirs[referenced] == w[referenced], axis=1)
                changed_o[referenced] = ~np.all(ours[referenced] == w[referenced], axis=1)
                # A row both leave alone must be untouched bit for bit on both sides.
                untouched = ~changed_t & ~changed_o
                assert np.array_equal(theirs[untouched].view(np.uint32), w[untouched].view(np.uint32))
                assert np.array_equal(ours[untouched].view(np.uint32), w[untouched].view(np.uint32))
                acc["referenced"] += len(referenced)
                acc["torch_rescaled"] += int(changed_t.sum())
                acc["flips"] += int((changed_t != changed_o).sum())
                both = np.flatnonzero(changed_t & changed_o)
                if len(both) == 0:
                    continue
                torch_norm = np.array([torch.from_numpy(w[k]).norm(p).item() for k in both])
                s_t = np.array([np.float32(max_norm / (n + 1e-7)) for n in torch_norm], np.float32)
                s_o = np.array([np.float32(max_norm / (n + 1e-7)) for n in exact[both]], np.float32)
                x = w[both]
                acc["unexplained_torch"] += int((~np.all((x * s_t[:, None]) == theirs[both], axis=1)).sum())
                acc["unexplained_ours"] += int((~np.all((x * s_o[:, None]) == ours[both], axis=1)).sum())
                nz = exact[both] > 0
                if nz.any():
                    acc["norm_err"] = max(acc["norm_err"], float(np.max(np.abs(torch_norm[nz] / exact[both][nz] - 1))))
                acc["scale_rel"] = max(acc["scale_rel"], float(np.max(np.abs(s_o.astype(np.float64) / s_t - 1))))
                acc["scale_ulp"] = max(acc["scale_ulp"], int(np.max(ulp_distance(s_o, s_t))))
                d = ulp_distance(ours[both], theirs[both])
                acc["rows_both"] += len(both)
                acc["rows_differing"] += int(np.any(d > 0, axis=1).sum())
                acc["elements"] += d.size
                acc["differing"] += int((d > 0).sum())
                acc["ulps"].append(d[d > 0])
                cell["elements"] += d.size
                cell["differing"] += int((d > 0).sum())
                cell["worst"] = max(cell["worst"], int(d.max()))
            per_pd[(p, dim)] = cell
        ulps = np.concatenate(acc["ulps"]) if acc["ulps"] else np.zeros(0, np.int64)
        acc["worst_ulp"] = int(ulps.max()) if ulps.size else 0
        acc["median_ulp"] = float(np.median(ulps)) if ulps.size else 0.0
        acc["ulp_histogram"] = np.bincount(ulps)[1:].tolist() if ulps.size else []
        del acc["ulps"]
        per_p[p] = acc
    return per_p, per_pd, digest.hexdigest()


def tier_digests(tables, rows):
    out = []
    for path in sorted(glob.glob(os.path.join(os.path.dirname(en.__file__), "_native", "*", "*",
                                              "libembedding_native.so"))):
        tier = os.path.basename(os.path.dirname(path))
        env = dict(os.environ, EMBEDDING_NATIVE_TIER=tier, EMBEDDING_NATIVE_LIBRARY=path)
        run = subprocess.run([sys.executable, os.path.abspath(__file__), "--digest", "--tables", str(tables),
                              "--rows", str(rows)], env=env, capture_output=True, text=True)
        if run.returncode != 0:
            out.append((tier, None, run.stderr.strip().splitlines()[-1] if run.stderr.strip() else "failed"))
        else:
            info = json.loads(run.stdout)
            out.append((tier, info["digest"], "loaded %s (%s-bit vectors)" % (info["tier"], info["vector_width"])))
    return out


def cpu_name():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.machine()


def fmt_p(p):
    return "inf" if p == INF else ("%g" % p)


def report(args, per_p, per_pd, digest, tiers, seconds):
    info = en.build_info()
    import torch
    lines = [
        "# max_norm renorm: embedding_native vs torch 1.13, per element",
        "",
        "```",
        " ".join(["/usr/bin/python3", "bench/renorm_ulp.py"] + sys.argv[1:]),
        "```",
        "",
        "Date: %s. CPU: %s. torch %s (1 thread, ATEN_CPU_CAPABILITY %s). Library: %s (`%s`, selected by %s)."
        " Run time %d s."
        % (datetime.date.today().isoformat(), cpu_name(), torch.__version__,
           os.environ.get("ATEN_CPU_CAPABILITY", "unset"), info["tier"],
           os.path.relpath(info["library_path"], ROOT), info["selected_by"], seconds),
        "",
        "%d tables of %d rows per (norm_type, D), D in %s: %d tables per norm_type. See the script's"
        " docstring for the tables and the definitions." % (args.tables, args.rows, DIMS, args.tables * len(DIMS)),
        "",
        "| norm_type | rows changed by torch | threshold flips | rescaled rows with a difference | elements"
        " differing | worst ulp | median ulp | worst scale rel. diff | worst scale ulp | worst torch norm"
        " rel. error |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for p, a in per_p.items():
        lines.append("| %s | %.1f%% (%d / %d) | %d | %.1f%% | %.1f%% (%d / %d) | %d | %g | %.2e | %d | %.2e |" % (
            fmt_p(p), 100.0 * a["torch_rescaled"] / a["referenced"], a["torch_rescaled"], a["referenced"],
            a["flips"], 100.0 * a["rows_differing"] / max(a["rows_both"], 1),
            100.0 * a["differing"] / max(a["elements"], 1), a["differing"], a["elements"], a["worst_ulp"],
            a["median_ulp"], a["scale_rel"], a["scale_ulp"], a["norm_err"]))
    lines += ["", "Worst ulp (share of elements differing) per norm_type and D:", "",
              "| norm_type | " + " | ".join("D = %d" % d for d in DIMS) + " |",
              "|---|" + "---|" * len(DIMS)]
    for p in per_p:
        cells = []
        for d in DIMS:
            c = per_pd[(p, d)]
            cells.append("%d (%.0f%%)" % (c["worst"], 100.0 * c["differing"] / max(c["elements"], 1)))
        lines.append("| %s | %s |" % (fmt_p(p), " | ".join(cells)))
    lines += ["", "Differing elements by ulp distance (1, 2, 3, ...):", ""]
    for p, a in per_p.items():
        lines.append("- %s: %s" % (fmt_p(p), a["ulp_histogram"]))
    lines += ["", "Checks:", "",
              "- rescaled rows not equal to fl32(x * s) with s from torch's float32 `row.norm(p)`: %d"
              % sum(a["unexplained_torch"] for a in per_p.values()),
              "- rescaled rows not equal to fl32(x * s) with s from the float64 norm (ours): %d"
              % sum(a["unexplained_ours"] for a in per_p.values()),
              "- tables where the torch drop-in (`embedding_native.torch.embedding`) differs from"
              " `functional.embedding_renorm_`: %d" % sum(a["dropin_mismatch"] for a in per_p.values()),
              "- SHA-256 of all our renormalised tables: `%s`" % digest]
    if tiers is not None:
        lines += ["", "Tier check (our half only, one subprocess per packaged library, EMBEDDING_NATIVE_TIER"
                  " and EMBEDDING_NATIVE_LIBRARY set to it):", "", "| library | loaded | digest | same bits |",
                  "|---|---|---|---|"]
        for tier, d, note in tiers:
            lines.append("| %s | %s | %s | %s |" % (tier, note, "`%s`" % d[:16] if d else "—",
                                                    "yes" if d == digest else "no"))
    return "\n".join(lines) + "\n"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tables", type=int, default=100, help="tables per (norm_type, D); default 100")
    parser.add_argument("--rows", type=int, default=32, help="rows per table; default 32")
    parser.add_argument("--out", help="also write the markdown here")
    parser.add_argument("--tiers", action="store_true", help="compare our bits across the packaged tier libraries")
    parser.add_argument("--digest", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.digest:
        info = en.build_info()
        print(json.dumps(dict(tier=info["tier"], vector_width=info["vector_width"],
                              digest=ours_only(args.tables, args.rows))))
        return
    start = time.time()
    per_p, per_pd, digest = measure(args.tables, args.rows)
    tiers = tier_digests(args.tables, args.rows) if args.tiers else None
    text = report(args, per_p, per_pd, digest, tiers, time.time() - start)
    sys.stdout.write(text)
    if args.out:
        with open(args.out, "w") as f:
            f.write(text)


if __name__ == "__main__":
    main()
