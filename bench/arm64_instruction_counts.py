#!/usr/bin/env python3
"""Static arm64 instruction counts of the embedding kernels' inner loops, before and after a change.

Timing under qemu says nothing about an arm64 core, so this counts instructions instead. Given the
symbol files of two linux-arm64 NativeAOT builds (artifacts/native/arm64/Embedding.Native.so.dbg), it
disassembles every kernel that runs on arm64:

  * the generated kernels (DefaultEmbeddingKernels, DefaultQuantizedKernels) at the V128 (NEON) and
    Scalar widths, every operation and dimension (V256/V512 are software fallbacks on arm64: skipped);
  * the generic kernels (GenericGather, GenericBag, GenericScatterAdd, GenericQuantizedBag,
    GenericBagBackward) at 128 bits and scalar;
  * the renorm row code (RenormRunner, RowNorms, RowScaling, StridedRowsRenorm, *Renorm).

Loops. For each function it builds the control-flow graph from the disassembly and finds the natural
loops (a back edge is a branch to a block that dominates it). "A branch to a lower address" alone is
not enough: the JIT lays loops out with the entry in the middle, and an outer loop's back edge often
falls through into the inner loop's code, so address ranges overlap and nest wrongly.

A loop's trip count is constant when the compare that decides whether it goes round again tests a
register stepped by a constant (`add r, r, #step`) against a constant (or a register set to one
before the loop). Some inner loops are folded into the loop around them, their path multiplied by
their trip count:
  * a loop of constant trip count whose own inner loops fold too (a column loop inside a row loop),
    when every inner loop of that parent folds;
  * an empty loop: one block that only counts (`add; cmp; b.lt`, perhaps reloading its bound). The
    JIT leaves one where a prefetch over a row's cache lines compiled away. Its trips multiply when
    constant; otherwise it is counted once and the loop around it is marked "≥".
The loops counted are those whose inner loops all fold and that do not fold into their own parent:
the row loop of a gather or scatter-add (column loops folded in), the position loop of each pass of
a bag kernel (the generic bags' too), the column loop of a generic gather, scatter-add or backward.
Each is reported as

  path   the longest path once round the loop: the most instructions one iteration executes,
         folded loops included ("[26 ×16]": a folded loop of path 26, 16 trips; "empty": an empty
         one; "×?": trips known only at runtime).
         Calls are followed: a `bl` adds the callee's longest path (recursively). "≥" marks a loop
         with a call of unknown cost (through a register, to a PLT stub, or to a callee with a loop
         of its own, whose body is then counted once), or an empty loop of runtime trip count.
         Where a branch in the loop tests the enclosing loop's counter against zero (a first-pass-
         only test), the path is given for the first pass and for the later ones: "50/44".
  (size) the loop body's own instruction count where it differs from the path, and its calls.
  ×N     iterations per row, where the code's constants fix it: a column loop with a constant bound
         that could not be folded (×24 per row), or a row loop inside a block loop of constant trip
         count (×4 passes).
  ×P     a row loop run once per pass of a column loop whose count is only known at runtime (the
         generic bags, where P = ceil(dimension / lanes)).

"per row" sums over the counted loops path × N, first pass once and later passes N - 1 times. With
runtime passes it is written base+slope(P-1). For a bag kernel it is the instructions executed per
bag position over all passes, for a gather the instructions per copied row. Where the column loop
runs a count known only at runtime inside the row loop (generic gather, scatter-add, backward),
only the column loop is counted: the number is per vector, and the row loop's own instructions are
left out. Loops that are not per row (skipping leading padding rows, widening a bag's arg-max
indices) are summed in once: the number compares two builds, it is not an absolute cost. Functions
holding several variants (e.g. the weighted bags' fused and padded paths, the scatter-add's plain
and frequency-scaled loops) sum all of them. "total" is the function's reachable instructions
(literal pools after the return left out).

verdict: "same" (identical code up to addresses), "same per row" (the code differs, the count per
row does not), "fewer", "MORE", or with runtime passes "MORE at P>=k" where the two lines cross.

The report also counts prefetch instructions (prfm) in the compared functions, and loads into the
zero register inside their counted loops: a load the JIT keeps only because it may fault, such as
that of a prefetch address whose prefetch compiled away.

The .dbg file holds symbols but no code (its code sections are NOBITS); the code is read from the
stripped library next to it (libembedding_native.so), after checking that the build IDs match.

Usage:
  python3 bench/arm64_instruction_counts.py BEFORE.so.dbg AFTER.so.dbg [--out FILE] [--only REGEX] [--sample REGEX]
  python3 bench/arm64_instruction_counts.py --dump SYMBOL_PART FILE.so.dbg   (one function's loops)

Needs aarch64-linux-gnu-nm, -objdump and -readelf (binutils-aarch64-linux-gnu). Standard library only.
"""

import argparse
import bisect
import collections
import os
import re
import subprocess
import sys

NM = "aarch64-linux-gnu-nm"
OBJDUMP = "aarch64-linux-gnu-objdump"
READELF = "aarch64-linux-gnu-readelf"
PREFIX = "Embedding_Native_Embedding_Native_"

GENERATED = re.compile(r"^(?P<family>DefaultEmbeddingKernels|DefaultQuantizedKernels)__(?P<op>\w+?)_D(?P<dim>\d+)_(?P<width>V128|Scalar)$")
GENERIC = re.compile(r"^Generic(Gather|Bag|ScatterAdd|QuantizedBag|BagBackward)\w*[<_]")
RENORM = re.compile(r"^(RenormRunner|RowNorms_3|RowScaling|StridedRowsRenorm_3|(Float16|Float32|Float64|BFloat16)Renorm)")
WIDE = re.compile(r"(Width|Vector|Elementwise|QuantizedCodes)(256|512)")
SKIP = re.compile(r"__cctor|__get_|__At$|__Find$")

CONDITIONAL = re.compile(r"^(b\.\w+|cbz|cbnz|tbz|tbnz)$")
STOPS = ("ret", "br", "brk", "udf")
LINE = re.compile(r"^\s*([0-9a-f]+):\s+(\S+)\s*(.*)$")
TARGET = re.compile(r"\b([0-9a-f]+)(?:\s+<[^>]*>)?\s*(?://.*)?$")
CALL_DEPTH = 4


def run(args):
    return subprocess.run(args, check=True, stdout=subprocess.PIPE, universal_newlines=True).stdout


def short(name):
    return name.replace(PREFIX, "").replace("S_P_CoreLib_System_", "")


def branch_target(mnemonic, operands):
    if mnemonic in ("b", "bl") or CONDITIONAL.match(mnemonic):
        match = TARGET.search(operands)
        return int(match.group(1), 16) if match else None
    return None


def operands_of(text):
    return [o.strip() for o in re.sub(r"//.*", "", text).split(",")]


def immediate(ops):
    """The value of an immediate operand list tail: ['#0x10'] or ['#0x1', 'lsl #12']; None if not an immediate."""
    if not ops or not ops[0].startswith("#"):
        return None
    value = int(ops[0].lstrip("#").split()[0], 0)
    if len(ops) > 1 and re.match(r"lsl #(\d+)", ops[1]):
        value <<= int(re.match(r"lsl #(\d+)", ops[1]).group(1))
    return value


class Binary:
    """One build: its symbols, its code, and the disassembly of the functions asked for."""

    def __init__(self, dbg):
        self.dbg = dbg
        self.code = self._code_file()
        self.symbols = []  # (address, size, name), sorted
        for line in run([NM, "-S", dbg]).splitlines():
            parts = line.split(None, 3)
            if len(parts) == 4 and parts[2] in "tT" and not parts[3].startswith("_lsda"):
                self.symbols.append((int(parts[0], 16), int(parts[1], 16), parts[3]))
        self.symbols.sort()
        self.starts = [s[0] for s in self.symbols]
        self.instructions = {}
        self.costs = {}

    def _code_file(self):
        headers = run([OBJDUMP, "-h", self.dbg])
        match = re.search(r"__managedcode.*\n\s*(.*)", headers)
        if match and "CONTENTS" in match.group(1):
            return self.dbg
        library = os.path.join(os.path.dirname(os.path.abspath(self.dbg)), "libembedding_native.so")
        if not os.path.exists(library):
            sys.exit(f"{self.dbg} holds no code and {library} does not exist")
        ids = [re.search(r"Build ID:\s*([0-9a-f]+)", run([READELF, "-n", p])) for p in (library, self.dbg)]
        if not all(ids) or ids[0].group(1) != ids[1].group(1):
            sys.exit(f"{library} is not the library of {self.dbg} (build IDs differ)")
        return library

    def kernels(self, only=None):
        """{short name: (address, size)} of the functions this compares."""
        chosen = {}
        for address, size, name in self.symbols:
            if not name.startswith(PREFIX):
                continue
            s = short(name)
            if WIDE.search(s) or SKIP.search(s) or not (GENERATED.match(s) or GENERIC.match(s) or RENORM.match(s)):
                continue
            if only and not re.search(only, s):
                continue
            key, n = s, 2
            while key in chosen:
                key, n = f"{s}#{n}", n + 1
            chosen[key] = (address, size)
        return chosen

    def load(self, ranges):
        """Disassembles the (address, size) ranges not yet loaded: one objdump run over their span."""
        ranges = [r for r in ranges if r[0] not in self.instructions]
        if not ranges:
            return
        start, stop = min(a for a, _ in ranges), max(a + s for a, s in ranges)
        by_address = {}
        for line in run([OBJDUMP, "-d", "--no-show-raw-insn", f"--start-address={start:#x}", f"--stop-address={stop:#x}", self.code]).splitlines():
            match = LINE.match(line)
            if match:
                by_address[int(match.group(1), 16)] = (match.group(2), match.group(3).strip())
        for address, size in ranges:
            self.instructions[address] = [(a, *by_address[a]) for a in range(address, address + size, 4) if a in by_address]

    def symbol_at(self, address):
        i = bisect.bisect_right(self.starts, address) - 1
        if i >= 0 and self.symbols[i][0] == address:
            return self.symbols[i]
        return None

    def call_cost(self, target, depth=0):
        """(instructions on the callee's longest path, exact?) for a call to target; (0, False) when unknown."""
        if target in self.costs:
            return self.costs[target]
        symbol = self.symbol_at(target)
        if symbol is None or depth > CALL_DEPTH:
            return (0, False)
        self.costs[target] = (0, False)  # recursion guard
        self.load([(symbol[0], symbol[1])])
        f = Function(self.instructions[symbol[0]], self, depth + 1)
        self.costs[target] = f.longest_path(), f.exact and not f.loops
        return self.costs[target]


class Function:
    """Basic blocks (weighted by instructions, callees included), dominators and natural loops of one function."""

    def __init__(self, instructions, binary, depth=0):
        self.instructions = instructions
        self.blocks, self.loops, self.succ, self.pred = [], [], [], []
        self.exact, self.irreducible, self.reachable = True, 0, set()
        if not instructions:
            self.total = 0
            return
        first, end = instructions[0][0], instructions[-1][0] + 4
        inside = lambda t: t is not None and first <= t < end
        leaders = {first}
        for address, mnemonic, operands in instructions:
            target = branch_target(mnemonic, operands) if mnemonic != "bl" else None
            if inside(target):
                leaders.add(target)
            if target is not None or mnemonic in STOPS:
                leaders.add(address + 4)
        starts = sorted(a for a in leaders if first <= a < end)
        index = {a: n for n, a in enumerate(starts)}
        position = 0
        for n, start in enumerate(starts):
            stop = starts[n + 1] if n + 1 < len(starts) else end
            body = []
            while position < len(instructions) and instructions[position][0] < stop:
                if instructions[position][0] >= start:
                    body.append(instructions[position])
                position += 1
            self.blocks.append(body)
        # Block weights: instructions plus the callees' longest paths. inexact: a call of unknown cost
        # (through a register, to a PLT stub, or to a callee with a loop).
        self.weight, self.calls, self.inexact = [], [], []
        for body in self.blocks:
            weight, calls, inexact = len(body), 0, False
            for _, mnemonic, operands in body:
                if mnemonic == "bl":
                    cost, exact = binary.call_cost(branch_target(mnemonic, operands), depth)
                    weight, calls, inexact = weight + cost, calls + 1, inexact or not exact
                elif mnemonic == "blr":
                    calls, inexact = calls + 1, True
            self.weight.append(weight)
            self.calls.append(calls)
            self.inexact.append(inexact)
        for n, body in enumerate(self.blocks):
            out = []
            if body:
                _, mnemonic, operands = body[-1]
                target = branch_target(mnemonic, operands) if mnemonic != "bl" else None
                if inside(target):
                    out.append(index[target])
                if mnemonic not in ("b",) + STOPS and n + 1 < len(self.blocks):
                    out.append(n + 1)
            self.succ.append(out)
        self.pred = [[] for _ in self.blocks]
        for n, out in enumerate(self.succ):
            for m in out:
                self.pred[m].append(n)
        self._dominators()
        self._loops()
        self.total = sum(len(self.blocks[b]) for b in self.reachable)
        self.exact = not any(self.inexact[b] for b in self.reachable)

    def _dominators(self):
        order, seen, stack = [], {0}, [(0, iter(self.succ[0]))]
        while stack:
            node, successors = stack[-1]
            for m in successors:
                if m not in seen:
                    seen.add(m)
                    stack.append((m, iter(self.succ[m])))
                    break
            else:
                order.append(node)
                stack.pop()
        self.reachable = seen
        rpo = list(reversed(order))
        self.rpo_index = {n: i for i, n in enumerate(rpo)}
        self.dom = {n: set(seen) for n in seen}
        self.dom[0] = {0}
        changed = True
        while changed:
            changed = False
            for n in rpo[1:]:
                preds = [p for p in self.pred[n] if p in seen]
                new = set.intersection(*(self.dom[p] for p in preds)) | {n}
                if new != self.dom[n]:
                    self.dom[n], changed = new, True

    def _loops(self):
        bodies = collections.OrderedDict()
        for u in sorted(self.reachable):
            for h in self.succ[u]:
                if h in self.dom[u]:
                    body = bodies.setdefault(h, {h})
                    stack = [u]
                    while stack:
                        x = stack.pop()
                        if x not in body:
                            body.add(x)
                            stack.extend(p for p in self.pred[x] if p in self.reachable)
                elif self.rpo_index[h] <= self.rpo_index[u]:
                    self.irreducible += 1
        self.loops = [Loop(self, h, body) for h, body in bodies.items()]
        for loop in self.loops:
            enclosing = [o for o in self.loops if o is not loop and loop.body < o.body]
            loop.parent = min(enclosing, key=lambda o: len(o.body)) if enclosing else None
            loop.innermost = not any(o is not loop and o.body < loop.body for o in self.loops)

    def size(self, blocks):
        return sum(len(self.blocks[b]) for b in blocks)

    def longest_path(self):
        """Weighted longest path from the entry to an exit, retreating edges left out (loop bodies counted once)."""
        best = {0: self.weight[0]}
        longest = 0
        for b in sorted(self.reachable, key=self.rpo_index.get):
            if b not in best:
                continue
            if not self.succ[b]:
                longest = max(longest, best[b])
            for s in self.succ[b]:
                if self.rpo_index[s] > self.rpo_index[b]:
                    best[s] = max(best.get(s, 0), best[b] + self.weight[s])
        return longest


class Loop:
    def __init__(self, function, header, body):
        self.f, self.header, self.body = function, header, frozenset(body)
        self.address = function.blocks[header][0][0]
        self.parent, self.innermost = None, True

    def own_blocks(self):
        inner = set()
        for o in self.f.loops:
            if o is not self and o.body < self.body:
                inner |= o.body
        return self.body - inner

    def _preheader_chain(self):
        """Blocks leading into the header from outside, nearest first (single-predecessor chains, a few deep)."""
        chain, seen = [], set()
        for p in self.f.pred[self.header]:
            b = p
            for _ in range(4):
                if b in self.body or b in seen or b not in self.f.reachable:
                    break
                seen.add(b)
                chain.append(b)
                preds = [q for q in self.f.pred[b] if q in self.f.reachable]
                if len(preds) != 1:
                    break
                b = preds[0]
        return chain

    def _constant(self, register, blocks):
        """The constant last moved into register in blocks (searched backwards), else None."""
        for b in blocks:
            for _, mnemonic, operands in reversed(self.f.blocks[b]):
                ops = operands_of(operands)
                if ops and ops[0] == register and mnemonic not in ("cmp", "cmn", "tst", "str", "stp", "stur", "strh", "strb"):
                    if mnemonic == "mov" and ops[1] in ("xzr", "wzr"):
                        return 0
                    if mnemonic == "mov":
                        return immediate(ops[1:])
                    return None
        return None

    def _exit_compares(self):
        """The operands of each `cmp` that sets the flags of a conditional branch leaving the loop or
        going back to its header (the loop's own tests, not those of an `if` inside it)."""
        found = []
        for b in sorted(self.own_blocks()):
            body = self.f.blocks[b]
            if not body or not CONDITIONAL.match(body[-1][1]) or body[-1][1] in ("cbz", "cbnz", "tbz", "tbnz"):
                continue
            if not any(s not in self.body or s == self.header for s in self.f.succ[b]):
                continue
            for _, mnemonic, operands in reversed(body[:-1]):
                if mnemonic in ("cmp", "cmn", "tst", "subs", "adds", "ands", "ccmp", "fcmp"):
                    if mnemonic == "cmp":
                        found.append(operands_of(operands))
                    break
        return found

    def counter(self):
        """(register, step, bound, start) of `add r, r, #step` ... `cmp r, bound` where that compare decides
        whether the loop goes round again; None where the loop has none."""
        adds = {}
        for b in self.own_blocks():
            for _, mnemonic, operands in self.f.blocks[b]:
                ops = operands_of(operands)
                if mnemonic == "add" and len(ops) >= 3 and ops[0] == ops[1]:
                    adds[ops[0]] = immediate(ops[2:])
        for ops in self._exit_compares():
            if len(ops) < 2:
                continue
            if ops[0] in adds:
                register, bound = ops[0], ops[1:]
            elif ops[1] in adds:
                register, bound = ops[1], [ops[0]]
            else:
                continue
            value = immediate(bound)
            if value is None and re.match(r"^[xw]\d+$", bound[0]):
                value = self._constant(bound[0], sorted(self.own_blocks()) + self._preheader_chain())
            return register, adds[register], value, self._constant(register, self._preheader_chain())
        return None

    def empty(self):
        """A loop that only counts: one block of `add`s to its counter, reloads of its bound, its compare
        and its branch (a loop over a row's cache lines whose prefetch compiled away)."""
        if len(self.body) != 1 or self.f.calls[self.header]:
            return False
        c = self.counter()
        if not c:
            return False
        allowed = {c[0]}
        body = self.f.blocks[self.header]
        for _, mnemonic, operands in body:
            ops = operands_of(operands)
            if mnemonic == "cmp" and len(ops) >= 2 and re.match(r"^[xw]\d+$", ops[1]):
                allowed.add(ops[1])
        for _, mnemonic, operands in body:
            ops = operands_of(operands)
            if CONDITIONAL.match(mnemonic) or mnemonic == "cmp":
                continue
            if mnemonic in ("add", "sub", "ldr", "ldur") and ops[0] in allowed and not re.search(r"!|\],", operands):
                continue
            return False
        return True

    def trips(self):
        """The constant trip count, or None."""
        c = self.counter()
        if not c or None in c[1:] or c[1] <= 0:
            return None
        return max(1, -(-(c[2] - c[3]) // c[1]))

    def path(self, zero=None, extra=None):
        """The longest path once round the loop; zero = (register, is_zero) decides cbz/cbnz on that register;
        extra: {block: instructions added to its weight} (the further trips of a folded inner loop)."""
        f = self.f
        extra = extra or {}
        weight = lambda b: f.weight[b] + extra.get(b, 0)
        best = {self.header: weight(self.header)}
        longest = 0
        for b in sorted(self.body, key=f.rpo_index.get):
            if b not in best:
                continue
            out = list(f.succ[b])
            last = f.blocks[b][-1] if f.blocks[b] else None
            if zero and last and last[1] in ("cbz", "cbnz") and operands_of(last[2])[0] == zero[0]:
                taken = (last[1] == "cbz") == zero[1]
                target = branch_target(last[1], last[2])
                out = [s for s in out if (f.blocks[s][0][0] == target) == taken]
            for s in out:
                if s == self.header:
                    longest = max(longest, best[b])
                elif s in self.body and f.rpo_index[s] > f.rpo_index[b]:
                    best[s] = max(best.get(s, 0), best[b] + weight(s))
        return longest

    def pass_test(self):
        """The enclosing loop's counter when a cbz/cbnz inside this loop tests it (a first-pass-only branch)."""
        if not self.parent:
            return None
        c = self.parent.counter()
        if not c or c[3] != 0:
            return None
        for b in self.body:
            for _, mnemonic, operands in self.f.blocks[b]:
                if mnemonic in ("cbz", "cbnz") and operands_of(operands)[0] == c[0]:
                    return c[0]
        return None


def analyse(instructions, binary):
    """Total instructions, the counted loops, and the per-row count (base, slope) of one function."""
    f = Function(instructions, binary)
    kids = {id(l): [o for o in f.loops if o.parent is l] for l in f.loops}
    memo = {}

    def foldable(l):
        # A loop that can be counted inside its parent: one that only counts, or one of constant trip
        # count whose own inner loops fold too (a column loop inside a row loop).
        if id(l) not in memo:
            memo[id(l)] = l.empty() or (l.trips() is not None and all(foldable(k) for k in kids[id(l)]))
        return memo[id(l)]

    def expanded(l, zero):
        """(path once round l with its inner loops' trips multiplied in, extra weights, exact?, inner loops' text)."""
        extra, exact, inner = {}, True, []
        for k in sorted(kids[id(l)], key=lambda o: o.address):
            path, more, k_exact, k_inner = expanded(k, zero)
            extra.update(more)
            trips = k.trips()
            if trips is None:
                trips, exact = 1, False
            extra[k.header] = extra.get(k.header, 0) + (trips - 1) * path
            exact = exact and k_exact
            text = f"{path} ×{k.trips() if k.trips() is not None else '?'}" + (" empty" if k.empty() else "")
            inner.append(text + (" [" + "; ".join(k_inner) + "]" if k_inner else ""))
        return l.path(zero, extra), extra, exact, inner

    loops = []
    counted = []
    for loop in sorted(f.loops, key=lambda l: l.address):
        # Counted: the loops whose inner loops all fold into them, unless they fold into their parent.
        if not all(foldable(k) for k in kids[id(loop)]):
            continue
        if loop.parent is not None and foldable(loop) and all(foldable(k) for k in kids[id(loop.parent)]):
            continue
        counted.append(loop)
        register = loop.pass_test()
        first, _, exact, inner = expanded(loop, (register, True) if register else None)
        later = expanded(loop, (register, False))[0] if register else first
        # Iterations per row: a runtime-count counted loop is the row loop itself (one iteration a row);
        # constant-count loops from there outward multiply (column loops, block passes) up to the first
        # runtime-count loop (the position or bag loop).
        times, outer = 1, (loop.parent if loop.trips() is None else loop)
        while outer is not None and outer.trips() is not None:
            times *= outer.trips()
            outer = outer.parent
        # Passes counted at runtime: a first-pass test of a runtime-count enclosing loop, or a row loop
        # inside a runtime-count loop that is itself nested (the generic kernels' column loop).
        runtime = loop.parent is not None and loop.parent.trips() is None and (
            register is not None or (loop.trips() is None and loop.parent.parent is not None))
        calls = sum(f.calls[b] for b in loop.body)
        loops.append({"size": f.size(loop.body), "first": first, "later": later, "times": times, "inner": inner,
                      "runtime": runtime, "calls": calls, "calls_exact": not any(f.inexact[b] for b in loop.body),
                      "exact": exact and not any(f.inexact[b] for b in loop.body)})
    base = sum(l["first"] + (0 if l["runtime"] else (l["times"] - 1) * l["later"]) for l in loops)
    slope = sum(l["later"] for l in loops if l["runtime"])
    # The code as text without addresses: branch and call targets, and the low 12 bits an `add` puts
    # on an `adrp` page, differ between builds of the same code.
    text, page = [], None
    for _, m, o in instructions:
        o = re.sub(r"\b[0-9a-f]{4,}\b(\s+<[^>]*>)?", "@", o)
        ops = operands_of(o)
        if m == "add" and page and ops[:2] == [page, page]:
            o = f"{page}, {page}, @"
        page = ops[0] if m == "adrp" else None
        text.append((m, o))
    # Prefetch instructions anywhere, and loads into the zero register (a load kept only because it may
    # fault, e.g. of a prefetch address whose prefetch compiled away) inside the counted loops.
    inner = set().union(*[l.body for l in counted]) if counted else set()
    prefetches = sum(1 for _, m, _ in instructions if m.startswith("prfm") or m.startswith("prfum"))
    dead_loads = sum(1 for b in inner for _, m, o in f.blocks[b] if m.startswith("ldr") and re.match(r"^[xw]zr,", o))
    return {"total": f.total, "loops": loops, "per_row": (base, slope), "irreducible": f.irreducible,
            "exact": all(l["exact"] for l in loops), "text": text, "prefetches": prefetches, "dead_loads": dead_loads}


def describe(result):
    if result is None:
        return "–"
    parts = []
    for l in result["loops"]:
        path = str(l["first"]) if l["first"] == l["later"] else f"{l['first']}/{l['later']}"
        extra = []
        if l["size"] != l["first"]:
            extra.append(str(l["size"]))
        if l["calls"]:
            extra.append(f"{l['calls']} call{'s' if l['calls'] > 1 else ''}" + ("" if l["calls_exact"] else ", cost unknown"))
        text = ("" if l["exact"] else "≥") + path + (f" ({', '.join(extra)})" if extra else "")
        if l["inner"]:
            text += " [" + "; ".join(l["inner"]) + "]"
        if l["runtime"]:
            text += " ×P"
        elif l["times"] > 1:
            text += f" ×{l['times']}"
        parts.append(text)
    return "; ".join(parts) if parts else "no loop"


def per_row_text(result):
    base, slope = result["per_row"]
    text = str(base) if not slope else f"{base}+{slope}(P-1)"
    return text if result["exact"] else "≥" + text


def verdict(before, after):
    if before is None or after is None:
        return "only " + ("after" if before is None else "before")
    if before["text"] == after["text"]:
        return "same"
    (b0, bs), (a0, as_) = before["per_row"], after["per_row"]
    if (a0, as_) == (b0, bs):
        return "same per row"
    if a0 <= b0 and as_ <= bs:
        return "fewer"
    if a0 >= b0 and as_ >= bs:
        return "MORE"
    # The lines cross: the first pass count at which after and before change order.
    p = 1
    while (a0 + as_ * (p - 1) > b0 + bs * (p - 1)) == (a0 > b0):
        p += 1
    return f"MORE at P>={p}" if as_ > bs else f"MORE at P<{p}"


def sort_key(name):
    match = GENERATED.match(name)
    if match:
        return (0, match.group("family"), match.group("op"), int(match.group("dim")), match.group("width"))
    return (1, name, 0, 0, "")


def table(rows):
    out = ["| function | before: loops | before: per row / total | after: loops | after: per row / total | verdict |",
           "|---|---|---|---|---|---|"]
    for name, b, a in rows:
        cell = lambda r: "–" if r is None else f"{per_row_text(r)} / {r['total']}"
        out.append(f"| `{name}` | {describe(b)} | {cell(b)} | {describe(a)} | {cell(a)} | {verdict(b, a)} |")
    return "\n".join(out)


def measure(dbg, only=None):
    binary = Binary(dbg)
    kernels = binary.kernels(only)
    binary.load(list(kernels.values()))
    return {name: analyse(binary.instructions[address], binary) for name, (address, _) in kernels.items()}


def family(name):
    """The row of the by-family summary a function counts in."""
    match = GENERATED.match(name)
    if match:
        op = re.sub(r"_(F32|I32|I64)", "", match.group("op"))
        op = re.sub(r"_(16|32|64)Bit$", "", op)
        return f"{match.group('family')} {op} {match.group('width')}"
    return re.sub(r"_\d*$", "", re.split(r"[<]|__", name)[0])


def report(before, after, everything=False, sample=None):
    names = sorted(set(before) | set(after), key=sort_key)
    rows = [(n, before.get(n), after.get(n)) for n in names]
    looped = [r for r in rows if everything or any(x and x["loops"] for x in r[1:])]
    counts = collections.Counter(verdict(b, a).split(" at ")[0] for _, b, a in looped)
    changed = [r for r in looped if verdict(r[1], r[2]) != "same"]
    lines = [f"Functions compared: {len(looped)}" + ("." if everything else f" with loops ({len(rows) - len(looped)} without a loop not listed)."),
             "", "| verdict | functions |", "|---|---|"]
    lines += [f"| {k} | {counts[k]} |" for k in ("same", "same per row", "fewer", "MORE", "only before", "only after") if counts[k]]
    for key, what in (("prefetches", "prefetch instructions (prfm) in the compared functions"),
                      ("dead_loads", "loads into xzr/wzr (kept for their possible fault) in their counted loops")):
        count = lambda side: sum(r[side][key] for r in rows if r[side])
        functions = lambda side: sum(1 for r in rows if r[side] and r[side][key])
        lines.append(f"\n{what[0].upper() + what[1:]}: before {count(1)} in {functions(1)} functions, after {count(2)} in {functions(2)}.")
    irreducible = [n for n, b, a in looped if (b and b["irreducible"]) or (a and a["irreducible"])]
    if irreducible:
        lines += ["", "Irreducible control flow (loops may be missed): " + ", ".join(f"`{n}`" for n in irreducible)]
    families = collections.OrderedDict()
    for n, b, a in looped:
        families.setdefault(family(n), collections.Counter())[verdict(b, a).split(" at ")[0]] += 1
    kinds = [k for k in ("same", "same per row", "fewer", "MORE", "only before", "only after") if counts[k]]
    lines += ["", "### By family", "", "| family | " + " | ".join(kinds) + " |", "|---|" + "---|" * len(kinds)]
    lines += [f"| {name} | " + " | ".join(str(c[k] or "") for k in kinds) + " |" for name, c in families.items()]
    lines += ["", f"### Changed ({len(changed)})", "", table(changed), ""]
    if sample:
        shown = [r for r in looped if re.search(sample, r[0]) and verdict(r[1], r[2]) == "same"]
        lines += [f"### Unchanged, a sample: the functions matching `{sample}` not listed above ({len(shown)})", "", table(shown), ""]
    else:
        lines += [f"### All ({len(looped)})", "", table(looped), ""]
    return "\n".join(lines)


def dump(dbg, part):
    binary = Binary(dbg)
    kernels = {n: v for n, v in binary.kernels().items() if part in n}
    binary.load(list(kernels.values()))
    for name, (address, _) in kernels.items():
        instructions = binary.instructions[address]
        f = Function(instructions, binary)
        print(f"== {name}: {f.total} instructions, {len(f.loops)} loops, {f.irreducible} irreducible edges")
        for loop in sorted(f.loops, key=lambda l: l.address):
            blocks = " ".join("%x" % a for a in sorted(f.blocks[b][0][0] for b in loop.body))
            parent = "@%x" % loop.parent.address if loop.parent else None
            print(f"  loop @{loop.address:x} innermost={loop.innermost} empty={loop.empty()} size={f.size(loop.body)} path={loop.path()}"
                  f" counter={loop.counter()} trips={loop.trips()} pass_test={loop.pass_test()} parent={parent} blocks={blocks}")
        result = analyse(instructions, binary)
        print("  summary:", describe(result), "| per row", per_row_text(result))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("files", nargs="+", help="BEFORE.so.dbg AFTER.so.dbg (with --dump: one FILE.so.dbg)")
    parser.add_argument("--out", help="write the markdown here instead of to stdout")
    parser.add_argument("--only", metavar="REGEX", help="only the functions whose short name matches")
    parser.add_argument("--all", action="store_true", help="list the functions without a loop too")
    parser.add_argument("--sample", metavar="REGEX", help="instead of the table of all functions, one of the unchanged ones whose short name matches")
    parser.add_argument("--dump", metavar="SYMBOL_PART", help="print the loops of the functions whose name contains this")
    args = parser.parse_args()
    if args.dump:
        dump(args.files[0], args.dump)
        return
    if len(args.files) != 2:
        parser.error("give BEFORE.so.dbg and AFTER.so.dbg")
    text = report(measure(args.files[0], args.only), measure(args.files[1], args.only), args.all, args.sample)
    if args.out:
        with open(args.out, "w") as handle:
            handle.write(text)
    else:
        sys.stdout.write(text)


if __name__ == "__main__":
    main()
