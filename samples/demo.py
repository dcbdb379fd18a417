#!/usr/bin/python3
"""``make demo``: torch.nn.Embedding's documentation example, from PyTorch, Python, C and C#.

    /usr/bin/python3 samples/demo.py --c-demo artifacts/build/c_demo \\
        --csharp-demo artifacts/build/csharp_demo/Embedding.Demo.dll

1. The docs example: ``torch.manual_seed(0)``, ``nn.Embedding(10, 5)``, input ``[1, 2, 4]``.
   Prints torch's result, then embedding_native's (through the Python package, on the same
   weight tensor, without copying), the tier that ran, and a bit-exact verdict.
2. A SimpleNN (embedding -> mean over the sequence -> linear) on the batch
   ``[[1, 2, 4, 5], [4, 3, 2, 9]]``, once in torch and once with the lookup done by
   embedding_native (mean and linear still in torch): the outputs must match bit for bit.
3. The C and C# programs, each run as ``<program> WEIGHTS_BIN OUT_BIN`` (``dotnet <dll> ...``
   for C#) on the docs example's 10 x 5 table (raw little-endian float32, row-major). Each
   writes 25 float32 to OUT_BIN: the 3 x 5 lookup of ``[1, 2, 4]``, then the 2 x 5 means of
   the lookups of the batch over its 4 positions. The lookup must match torch bit for bit; the
   means are compared with torch's ``.mean(dim=1)`` (pass if max |diff| <= 1e-6, since the
   programs sum in index order and divide by 4, which need not be torch's reduction order).

5. Training: the SimpleNN trained for a few SGD steps (cross-entropy on the batch with labels
   ``[0, 1]``), once with ``torch.nn.Embedding`` and once with
   ``embedding_native.torch.Embedding`` (native forward and backward through autograd), from
   the same initial weights. Prints both losses per step; the losses and the trained weights
   must match bit for bit (the native dense backward accumulates in torch's order).

6. EmbeddingBag: the docs example ``nn.EmbeddingBag(10, 3, mode='sum')`` (torch.manual_seed(0))
   on input ``[1, 2, 4, 5, 4, 3, 2, 9]`` with offsets ``[0, 4]``, through
   ``embedding_native.embedding_bag`` (by pointer) and ``embedding_native.torch.EmbeddingBag``
   (forward and the weight gradient of ``out.sum()``); the bag sums must match torch bit for bit.

7. Quantized tables: a 1000 x 64 float32 table (torch.manual_seed(0), standard normal) packed to
   8-bit and 4-bit rows by ``embedding_native.quantized.embedding_bag_{byte,4bit}_prepack`` and by
   torch's ``torch.ops.quantized`` ops, the bytes each takes against the float32 table, and the bag
   sums of 64 bags of 16 random rows through both libraries: the packed bytes and the bag sums must
   match torch bit for bit; the sums' largest difference from the float32 table's bags is printed.

Prints a summary table and exits 1 if any check failed or a program is missing.
"""

import argparse
import os
import pathlib
import subprocess
import sys
import tempfile

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "interop" / "python"))

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn as nn  # noqa: E402

import embedding_native  # noqa: E402
import embedding_native.torch  # noqa: E402

LOOKUP = [1, 2, 4]
BATCH = [[1, 2, 4, 5], [4, 3, 2, 9]]
LABELS = [0, 1]
BAG_INPUT = [1, 2, 4, 5, 4, 3, 2, 9]
BAG_OFFSETS = [0, 4]
TRAINING_STEPS = 5
LEARNING_RATE = 0.1
MEAN_TOLERANCE = 1e-6
PROGRAM_TIMEOUT_SECONDS = 120


class SimpleNN(nn.Module):
    """The bag-of-embeddings classifier from the tutorial: embed, average, project."""

    def __init__(self, embedding_cls=nn.Embedding):
        super().__init__()
        self.embedding = embedding_cls(10, 5)
        self.fc = nn.Linear(5, 2)

    def forward(self, x):
        return self.fc(self.embedding(x).mean(dim=1))


class Summary:
    """Collects one row per check: (what, check, detail, passed)."""

    def __init__(self):
        self.rows = []

    def add(self, what, check, detail, passed):
        self.rows.append((what, check, detail, passed))
        return passed

    @property
    def passed(self):
        return all(row[3] for row in self.rows)

    def print(self):
        header = ("run", "check", "result", "verdict")
        rows = [(w, c, d, "PASS" if p else "FAIL") for w, c, d, p in self.rows]
        widths = [max(len(str(r[i])) for r in [header] + rows) for i in range(4)]
        line = "+-" + "-+-".join("-" * w for w in widths) + "-+"
        print(line)
        print("| " + " | ".join(h.ljust(w) for h, w in zip(header, widths)) + " |")
        print(line)
        for row in rows:
            print("| " + " | ".join(str(v).ljust(w) for v, w in zip(row, widths)) + " |")
        print(line)


def to_numpy(x):
    return x.detach().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)


def bit_exact(a, b):
    """("parity OK" | "MISMATCH ...", passed): same shape and the same float32 bits."""
    a, b = np.ascontiguousarray(to_numpy(a), np.float32), np.ascontiguousarray(to_numpy(b), np.float32)
    if a.shape != b.shape:
        return "MISMATCH: shape %s vs %s" % (a.shape, b.shape), False
    if np.array_equal(a.view(np.uint32), b.view(np.uint32)):
        return "parity OK (bit-exact)", True
    return "MISMATCH: max |diff| %.3g" % float(np.max(np.abs(a.astype(np.float64) - b.astype(np.float64)))), False


def close(a, b, tolerance=MEAN_TOLERANCE):
    """("exact match" | "max |diff| x", passed): passes when every |a - b| <= tolerance."""
    a, b = to_numpy(a).astype(np.float32), to_numpy(b).astype(np.float32)
    if a.shape != b.shape:
        return "MISMATCH: shape %s vs %s" % (a.shape, b.shape), False
    if np.array_equal(a.view(np.uint32), b.view(np.uint32)):
        return "exact match", True
    diff = float(np.max(np.abs(a.astype(np.float64) - b.astype(np.float64))))
    return "max |diff| %.3g (tolerance %g)" % (diff, tolerance), diff <= tolerance


def section(title):
    print()
    print("=" * 78)
    print(title)
    print("=" * 78)


def docs_example(summary):
    """Returns the docs example's weight tensor (for the C and C# runs)."""
    section("1. torch.nn.Embedding docs example: nn.Embedding(10, 5), input [1, 2, 4]")
    torch.manual_seed(0)
    embedding = nn.Embedding(10, 5)
    input = torch.LongTensor(LOOKUP)
    with torch.no_grad():
        expected = embedding(input)
    print("torch:")
    print(expected)

    info = embedding_native.build_info()
    ours = embedding_native.embedding(input, embedding.weight)  # by pointer: no copy of the table
    print("embedding_native (Python, tier %s, %s):" % (info["tier"], os.path.basename(info["library_path"])))
    print(ours)
    verdict, passed = bit_exact(ours, expected)
    print(verdict)
    summary.add("Python", "lookup [1, 2, 4] (tier %s)" % info["tier"], verdict, passed)
    return embedding.weight.detach()


def simple_nn(summary):
    section("2. SimpleNN: embedding -> mean(dim=1) -> Linear(5, 2), batch %s" % BATCH)
    model = SimpleNN()
    batch = torch.LongTensor(BATCH)
    with torch.no_grad():
        expected = model(batch)
        lookup = embedding_native.embedding(batch, model.embedding.weight)
        ours = model.fc(lookup.mean(dim=1))
    print("torch:")
    print(expected)
    print("torch with the lookup by embedding_native:")
    print(ours)
    verdict, passed = bit_exact(ours, expected)
    print(verdict)
    summary.add("Python", "SimpleNN output", verdict, passed)


def training(summary):
    section("5. Training: SimpleNN, %d SGD steps (lr %g), torch.nn.Embedding vs embedding_native.torch.Embedding"
            % (TRAINING_STEPS, LEARNING_RATE))
    torch.manual_seed(0)
    reference = SimpleNN()
    ours = SimpleNN(embedding_native.torch.Embedding)
    ours.load_state_dict(reference.state_dict())  # same initial weights; same state_dict keys
    batch, labels = torch.LongTensor(BATCH), torch.LongTensor(LABELS)
    losses = {}
    for name, model in (("torch", reference), ("native", ours)):
        optimizer = torch.optim.SGD(model.parameters(), lr=LEARNING_RATE)
        losses[name] = []
        for _ in range(TRAINING_STEPS):
            optimizer.zero_grad()
            loss = nn.functional.cross_entropy(model(batch), labels)
            loss.backward()
            optimizer.step()
            losses[name].append(loss.item())
    print("step  torch.nn.Embedding        embedding_native.torch.Embedding")
    for step, (a, b) in enumerate(zip(losses["torch"], losses["native"]), start=1):
        print("%4d  %-24.17g  %-24.17g %s" % (step, a, b, "same" if a == b else "DIFFERENT"))
    verdict, passed = bit_exact(np.array(losses["native"], np.float32), np.array(losses["torch"], np.float32))
    same_losses = losses["native"] == losses["torch"]
    weights_verdict, weights_passed = bit_exact(ours.embedding.weight, reference.embedding.weight)
    print("losses: %s; trained embedding weights: %s" % (verdict if same_losses else "MISMATCH", weights_verdict))
    summary.add("Python", "training %d SGD steps: losses" % TRAINING_STEPS,
                verdict if same_losses else "MISMATCH", passed and same_losses)
    summary.add("Python", "training: trained weights", weights_verdict, weights_passed)


def run_program(number, name, program, launcher, weights, summary):
    """Runs one C/C# demo (``launcher + [program]``) on ``weights``; checks its OUT_BIN against torch."""
    program = os.path.abspath(program)
    command = launcher + [program]
    section("%d. %s demo: %s WEIGHTS_BIN OUT_BIN" % (number, name, " ".join(command)))
    if not os.path.isfile(program):
        print("ERROR: %s demo not found: %s (build it with `make demo`)" % (name, program))
        summary.add(name, "program", "missing: %s" % program, False)
        return

    with torch.no_grad():
        expected_lookup = nn.functional.embedding(torch.LongTensor(LOOKUP), weights)
        expected_means = nn.functional.embedding(torch.LongTensor(BATCH), weights).mean(dim=1)

    with tempfile.TemporaryDirectory(prefix="embedding-demo-") as directory:
        weights_bin = os.path.join(directory, "weights.bin")
        out_bin = os.path.join(directory, "out.bin")
        weights.numpy().astype("<f4").tofile(weights_bin)
        try:
            result = subprocess.run(command + [weights_bin, out_bin], capture_output=True, text=True,
                                    timeout=PROGRAM_TIMEOUT_SECONDS)
        except (OSError, subprocess.TimeoutExpired) as e:
            print("ERROR: could not run the %s demo: %s" % (name, e))
            summary.add(name, "program", "could not run: %s" % e, False)
            return
        sys.stdout.write(result.stdout)
        sys.stdout.write(result.stderr)
        if result.returncode != 0:
            print("ERROR: the %s demo exited with status %d" % (name, result.returncode))
            summary.add(name, "program", "exit status %d" % result.returncode, False)
            return
        values = np.fromfile(out_bin, dtype="<f4") if os.path.isfile(out_bin) else np.zeros(0, "<f4")

    if values.size != 25:
        print("ERROR: %s wrote %d float32 values to OUT_BIN, expected 25" % (name, values.size))
        summary.add(name, "OUT_BIN", "%d values, expected 25" % values.size, False)
        return
    lookup, means = values[:15].reshape(3, 5).astype(np.float32), values[15:].reshape(2, 5).astype(np.float32)
    verdict, passed = bit_exact(lookup, expected_lookup)
    print("%s lookup vs torch: %s" % (name, verdict))
    summary.add(name, "lookup [1, 2, 4]", verdict, passed)
    verdict, passed = close(means, expected_means)
    print("%s means vs torch .mean(dim=1): %s" % (name, verdict))
    summary.add(name, "means of the batch", verdict, passed)


def embedding_bag(summary):
    section("6. EmbeddingBag docs example: nn.EmbeddingBag(10, 3, mode='sum'), input %s, offsets %s"
            % (BAG_INPUT, BAG_OFFSETS))
    torch.manual_seed(0)
    reference = nn.EmbeddingBag(10, 3, mode="sum")
    input, offsets = torch.LongTensor(BAG_INPUT), torch.LongTensor(BAG_OFFSETS)
    expected = reference(input, offsets)
    print("torch:")
    print(expected.detach())
    ours = embedding_native.embedding_bag(input, reference.weight, offsets, mode="sum")
    print("embedding_native.embedding_bag:")
    print(ours)
    verdict, passed = bit_exact(ours, expected)
    print(verdict)
    summary.add("Python", "EmbeddingBag sum [0, 4] bags", verdict, passed)

    module = embedding_native.torch.EmbeddingBag(10, 3, mode="sum", _weight=reference.weight.detach().clone())
    out = module(input, offsets)
    out.sum().backward()
    expected.sum().backward()
    verdict, passed = bit_exact(out, expected)
    grad_verdict, grad_passed = bit_exact(module.weight.grad, reference.weight.grad)
    print("embedding_native.torch.EmbeddingBag: output %s; weight gradient %s" % (verdict, grad_verdict))
    summary.add("Python", "torch.EmbeddingBag drop-in output", verdict, passed)
    summary.add("Python", "torch.EmbeddingBag weight gradient", grad_verdict, grad_passed)


QUANTIZED_ROWS, QUANTIZED_DIM, QUANTIZED_BAGS, QUANTIZED_BAG_SIZE = 1000, 64, 64, 16


def quantized_tables(summary):
    section("7. Quantized tables: a %d x %d float32 table at 8 and 4 bits per value, %d bags of %d rows"
            % (QUANTIZED_ROWS, QUANTIZED_DIM, QUANTIZED_BAGS, QUANTIZED_BAG_SIZE))
    import embedding_native.quantized as enq

    torch.manual_seed(0)
    table = torch.randn(QUANTIZED_ROWS, QUANTIZED_DIM)
    indices = torch.randint(0, QUANTIZED_ROWS, (QUANTIZED_BAGS * QUANTIZED_BAG_SIZE,))
    offsets = torch.arange(0, indices.numel(), QUANTIZED_BAG_SIZE)
    float_bags = torch.nn.functional.embedding_bag(indices, table, offsets, mode="sum")
    print("%-6s %12s %8s %-28s %-28s %s" % ("bits", "bytes", "saved", "packed rows vs torch", "bag sums vs torch",
                                             "max |sum - float32 sum|"))
    print("%-6s %12d %8s" % ("float", table.numel() * 4, "-"))
    for name, bits in (("byte", 8), ("4bit", 4)):
        ours_packed = getattr(enq, "embedding_bag_%s_prepack" % name)(table)
        torch_packed = getattr(torch.ops.quantized, "embedding_bag_%s_prepack" % name)(table)
        packed_verdict, packed_passed = (("identical bytes", True) if torch.equal(ours_packed, torch_packed)
                                         else ("MISMATCH", False))
        ours = getattr(enq, "embedding_bag_%s_rowwise_offsets" % name)(ours_packed, indices, offsets)
        expected = getattr(torch.ops.quantized, "embedding_bag_%s_rowwise_offsets" % name)(torch_packed, indices,
                                                                                            offsets)
        verdict, passed = bit_exact(ours, expected)
        error = float((ours - float_bags).abs().max())
        size = ours_packed.numel()
        print("%-6d %12d %7.1f%% %-28s %-28s %.3g" % (bits, size, 100.0 * (1 - size / (table.numel() * 4)),
                                                     packed_verdict, verdict, error))
        summary.add("Python", "%d-bit prepack vs torch" % bits, packed_verdict, packed_passed)
        summary.add("Python", "%d-bit bag sums vs torch" % bits, verdict, passed)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--c-demo", required=True, help="the C demo executable (artifacts/build/c_demo)")
    parser.add_argument("--csharp-demo", required=True, help="the C# demo assembly (Embedding.Demo.dll)")
    parser.add_argument("--dotnet", default="dotnet", help="the dotnet host that runs the C# demo")
    args = parser.parse_args(argv)

    torch.set_num_threads(1)
    summary = Summary()
    weights = docs_example(summary)
    simple_nn(summary)
    run_program(3, "C", args.c_demo, [], weights, summary)
    run_program(4, "C#", args.csharp_demo, [args.dotnet], weights, summary)
    training(summary)
    embedding_bag(summary)
    quantized_tables(summary)

    section("Summary")
    summary.print()
    print("all checks passed" if summary.passed else "SOME CHECKS FAILED")
    return 0 if summary.passed else 1


if __name__ == "__main__":
    sys.exit(main())
