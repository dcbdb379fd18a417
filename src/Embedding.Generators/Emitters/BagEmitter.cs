using System.Collections.Generic;
using Embedding.Generators.Helpers;
using Embedding.Generators.Model;
using Embedding.Native;

namespace Embedding.Generators.Emitters
{
    /// <summary>
    /// Emits the bag-forward kernels of one dimension: for each reduction (sum, mean, max, weighted sum),
    /// index type and vector width that fits, a loop over bags whose body reduces the bag's rows into
    /// register accumulators, a block of columns at a time, in position order. The bodies are the generic
    /// driver (<c>GenericBag</c>) with the dimension folded in and differ only in the vector type.
    /// </summary>
    /// <remarks>
    /// The tail overlaps: the last vector ends at the row end and recomputes the columns it shares with
    /// the vector before it from the same rows in the same order, so they are stored with the same bits.
    /// Nothing is reduced horizontally, so every width gives the same results.
    /// </remarks>
    internal sealed class BagEmitter : KernelFamily<BagEmitter.Kind>
    {
        /// <summary>Accumulators per block for the sums: 8 vectors keep 8 independent add chains in flight and fit the 16 AVX2 registers with the row loads.</summary>
        private const int SumBlockVectors = 8;

        /// <summary>
        /// Accumulators per block with AVX-512's 32 registers: twice as many, so a bag of rows of up to 256
        /// floats is read in one pass (two passes at D = 256 measured 0.4x memcpy against 1.0x at D = 64).
        /// </summary>
        private const int WideSumBlockVectors = 16;

        /// <summary>The accumulators of one block: a value register each, and a position register each when the arg-max is tracked.</summary>
        private static int BlockVectors(Kind kind, Width width, bool tracked)
        {
            int group = width.Bits == 512 ? WideSumBlockVectors : SumBlockVectors;
            return kind.IsMax && tracked ? group / 2 : group;
        }

        public static readonly BagEmitter Instance = new BagEmitter();

        internal sealed class Kind : KernelVariant
        {
            public Kind(string name, string mode, bool weighted, string description)
                : base(name)
            {
                Mode = mode;
                Weighted = weighted;
                Description = description;
            }

            public string Mode { get; }

            public bool Weighted { get; }

            public string Description { get; }

            public bool IsMax => Mode == "Max";

            public bool IsMean => Mode == "Mean";
        }

        private static readonly Kind[] Kinds =
        {
            new Kind("BagSum", "Sum", false, "Bag sum"),
            new Kind("BagMean", "Mean", false, "Bag mean"),
            new Kind("BagMax", "Max", false, "Bag max"),
            new Kind("BagWeightedSum", "Sum", true, "Bag weighted sum"),
        };

        public override string FileTag => "Bag";

        protected override IReadOnlyList<Kind> Variants => Kinds;

        /// <summary>float32 only so far: the other table types run the generic kernel.</summary>
        public override IEnumerable<ElementGroup> Groups(TableTypeSet types) => types.Contains(TableTypes.Float32) ? new[] { TableTypes.F32 } : new ElementGroup[0];

        protected override string DelegateType(ElementGroup group, IndexType index) =>
            "global::Embedding.Native.BagKernel<" + group.CSharpName + ", " + index.CSharpName + ">";

        protected override void EmitKernel(SourceWriter writer, Kind kind, ElementGroup group, int dimension, IndexType index, Width width)
        {
            var shape = new KernelShape(dimension, width.Lanes);
            writer.Line("/// <summary>" + kind.Description + ", f32 table, " + index.Description + " indices, dim " + dimension + ": " + Describe(shape, width, kind) + ".</summary>");
            writer.Line("/// <remarks>No validation: every index must already be in [0, rows), the bag boundaries valid, and <paramref name=\"destination\"/>"
                + (kind.IsMax ? " and <paramref name=\"maxIndices\"/>" : string.Empty) + " must hold numBags × " + dimension + " elements.</remarks>");
            writer.Line(EmbeddingKernelGenerator.Emitter.GeneratedCodeAttribute);
            writer.Open("private static void " + KernelName(kind.Name, group, dimension, index, width) + "(ref readonly float weight, int dimension, ref readonly " + index.CSharpName + " indices, ref readonly long starts, nint numBags, long paddingIndex, ref readonly float perSampleWeights, ref float destination, ref long maxIndices)");
            writer.Line("// Positions in all bags: the prefetch looks ahead across bag boundaries but not past the last.");
            writer.Line("nint total = Bag.Start(in starts, numBags);");
            if (kind.IsMax)
            {
                writer.Open("if (Bag.IsNull(ref maxIndices))");
                writer.Line("// Values only (the caller wants no arg-max): the same rule, a row replaces a lane only when greater, without the positions.");
                EmitBagLoop(writer, kind, shape, width, "plain", tracked: false);
                writer.Line();
                writer.Line("return;");
                writer.Close();
                writer.Line();
                writer.Line("// Values and the winning position of every lane, turned into rows after each bag.");
                EmitBagLoop(writer, kind, shape, width, "plain", tracked: true);
            }
            else if (kind.Weighted)
            {
                writer.Open("if (paddingIndex < 0)");
                writer.Line("// No padding row: acc = fma(row, w, acc), one rounding (torch 1.13's fast path).");
                EmitBagLoop(writer, kind, shape, width, "fused", tracked: false);
                writer.Line();
                writer.Line("return;");
                writer.Close();
                writer.Line();
                writer.Line("// A padding row: acc = acc + fl(row · w), two roundings (torch 1.13's padding path).");
                EmitBagLoop(writer, kind, shape, width, "rounded", tracked: false);
            }
            else
            {
                EmitBagLoop(writer, kind, shape, width, "plain", tracked: false);
            }

            writer.Close();
        }

        private static void EmitBagLoop(SourceWriter writer, Kind kind, KernelShape shape, Width width, string arithmetic, bool tracked)
        {
            int dimension = shape.Dimension;
            writer.Open("for (nint bag = 0; bag < numBags; bag++)");
            writer.Line("nint start = Bag.Start(in starts, bag), end = Bag.Start(in starts, bag + 1);");
            writer.Line("ref float target = ref Bag.Row(in destination, bag, " + dimension + ");");
            if (kind.IsMax)
            {
                if (tracked)
                {
                    writer.Line("ref long argMax = ref Bag.ArgMax(ref maxIndices, bag, " + dimension + ");");
                }

                writer.Line("nint head = Bag.FirstIncluded(in indices, start, end, paddingIndex);");
                writer.Open("if (head == end)");
                writer.Line(tracked ? "// Empty or all padding: +0.0, and no row (-1)." : "// Empty or all padding: +0.0.");
                writer.Line(tracked ? "Bag.Empty(ref target, ref argMax, " + dimension + ");" : "Bag.Zero(ref target, " + dimension + ");");
                writer.Line("continue;");
                writer.Close();
                writer.Line();
                writer.Line("ref float headRow = ref Bag.Row(in weight, Bag.Index(in indices, head), " + dimension + ");");
            }

            if (width.Bits == 0)
            {
                writer.Line("// One column at a time, the bag in position order.");
                writer.Open("for (nuint column = 0; column < " + dimension + "; column++)");
                EmitGroup(writer, kind, dimension, width, arithmetic, tracked, new[] { "column" }, "column == 0");
                writer.Close();
            }
            else
            {
                int group = BlockVectors(kind, width, tracked);
                int lanes = width.Lanes;
                int blocks = shape.FullVectors / group;
                int blockEnd = blocks * group * lanes;
                if (blocks > 0)
                {
                    writer.Line("// Columns 0.." + (blockEnd - 1) + ": " + blocks + (blocks == 1 ? " block" : " blocks") + " of " + group + " accumulators, each held over the whole bag.");
                    writer.Open("for (nuint block = 0; block < " + blockEnd + "; block += " + (group * lanes) + ")");
                    var offsets = new List<string>();
                    for (int v = 0; v < group; v++)
                    {
                        offsets.Add(v == 0 ? "block" : "block + " + (v * lanes));
                    }

                    EmitGroup(writer, kind, dimension, width, arithmetic, tracked, offsets, "block == 0");
                    writer.Close();
                }

                var rest = new List<string>();
                for (int column = blockEnd; column + lanes <= dimension; column += lanes)
                {
                    rest.Add(column.ToString());
                }

                if (shape.TailColumns > 0)
                {
                    rest.Add((dimension - lanes).ToString());
                }

                if (rest.Count > 0)
                {
                    if (blocks > 0)
                    {
                        writer.Line();
                    }

                    string tail = shape.TailColumns > 0
                        ? "; the last vector ends at the row end and overlaps the one before it by " + (lanes - shape.TailColumns) + " columns, recomputed with the same bits"
                        : string.Empty;
                    writer.Line("// Columns " + blockEnd + ".." + (dimension - 1) + ": " + rest.Count + (rest.Count == 1 ? " accumulator" : " accumulators") + tail + ".");
                    writer.Open(string.Empty);
                    EmitGroup(writer, kind, dimension, width, arithmetic, tracked, rest, blocks > 0 ? null : string.Empty);
                    writer.Close();
                }
            }

            if (tracked)
            {
                writer.Line();
                writer.Line("Bag.PositionsToRows(ref argMax, in indices, " + dimension + ");");
            }

            writer.Close();
        }

        /// <summary>
        /// One block: accumulators for <paramref name="offsets"/>, the bag loop, the stores. The first pass
        /// over a bag's rows (<paramref name="prefetchWhen"/>: empty for always, a condition, or null for a
        /// later pass) prefetches whole rows ahead; later passes find the bag's rows in L1/L2.
        /// </summary>
        private static void EmitGroup(SourceWriter writer, Kind kind, int dimension, Width width, string arithmetic, bool tracked, IList<string> offsets, string? prefetchWhen)
        {
            bool scalar = width.Bits == 0;
            string vector = width.VectorType;
            string type = scalar ? "float" : vector + "<float>";
            string Load(string source, string offset) => scalar
                ? "global::System.Runtime.CompilerServices.Unsafe.Add(ref " + source + ", " + offset + ")"
                : vector + ".LoadUnsafe(ref " + source + ", " + offset + ")";

            if (kind.IsMax)
            {
                for (int v = 0; v < offsets.Count; v++)
                {
                    writer.Line(type + " a" + v + " = " + Load("headRow", offsets[v]) + ";");
                }

                if (tracked)
                {
                    writer.Line(scalar ? "nint p0 = head;" : type + " p = Bag.Position" + width.Bits + "(head);");
                }

                if (tracked && !scalar)
                {
                    for (int v = 0; v < offsets.Count; v++)
                    {
                        writer.Line(type + " p" + v + " = p;");
                    }
                }

                writer.Open("for (nint i = head + 1; i < end; i++)");
            }
            else
            {
                string zero = scalar ? "0.0f" : vector + "<float>.Zero";
                for (int v = 0; v < offsets.Count; v++)
                {
                    writer.Line(type + " a" + v + " = " + zero + ";");
                }

                if (kind.IsMean)
                {
                    writer.Line("int count = 0;");
                }

                writer.Open("for (nint i = start; i < end; i++)");
            }

            if (prefetchWhen is not null)
            {
                string prefetch = Hints + ".PrefetchRow(in Bag.Row(in weight, Bag.Index(in indices, " + Hints + ".Ahead(i, total, " + dimension + ")), " + dimension + "), " + dimension + ");";
                writer.Line("// Prefetch the row KernelHints.DistanceFor(" + dimension + ") positions ahead, on the first pass only: a hint, so no value changes.");
                writer.Line(prefetchWhen.Length == 0 ? prefetch : "if (" + prefetchWhen + ") " + prefetch);
            }

            writer.Line("nint row = Bag.Index(in indices, i);");
            writer.Open("if (row == paddingIndex)");
            writer.Line("continue;");
            writer.Close();
            writer.Line();
            writer.Line("ref float source = ref Bag.Row(in weight, row, " + dimension + ");");
            if (kind.IsMax)
            {
                if (tracked && !scalar)
                {
                    writer.Line(type + " at = Bag.Position" + width.Bits + "(i);");
                }

                for (int v = 0; v < offsets.Count; v++)
                {
                    writer.Line(type + " x" + v + " = " + Load("source", offsets[v]) + ";");
                    if (scalar)
                    {
                        writer.Open("if (x" + v + " > a" + v + ")");
                        writer.Line("a" + v + " = x" + v + ";");
                        if (tracked)
                        {
                            writer.Line("p" + v + " = i;");
                        }

                        writer.Close();
                    }
                    else if (tracked)
                    {
                        writer.Line(type + " m" + v + " = " + vector + ".GreaterThan(x" + v + ", a" + v + ");");
                        writer.Line("a" + v + " = " + vector + ".ConditionalSelect(m" + v + ", x" + v + ", a" + v + ");");
                        writer.Line("p" + v + " = " + vector + ".ConditionalSelect(m" + v + ", at, p" + v + ");");
                    }
                    else
                    {
                        writer.Line("a" + v + " = Bag.Greater" + width.Bits + "(x" + v + ", a" + v + ");");
                    }
                }
            }
            else
            {
                if (kind.Weighted)
                {
                    writer.Line(type + " w = " + (scalar ? "Bag.Weight(in perSampleWeights, i)" : vector + ".Create(Bag.Weight(in perSampleWeights, i))") + ";");
                }

                for (int v = 0; v < offsets.Count; v++)
                {
                    string x = Load("source", offsets[v]);
                    string a = "a" + v;
                    switch (arithmetic)
                    {
                        case "fused":
                            writer.Line(a + " = " + (scalar ? "global::System.MathF" : vector) + ".FusedMultiplyAdd(" + x + ", w, " + a + ");");
                            break;
                        case "rounded":
                            writer.Line(a + " = " + a + " + " + x + " * w;");
                            break;
                        default:
                            writer.Line(a + " = " + a + " + " + x + ";");
                            break;
                    }
                }

                if (kind.IsMean)
                {
                    writer.Line("count++;");
                }
            }

            writer.Close();
            writer.Line();
            if (kind.IsMean)
            {
                writer.Line(type + " n = " + (scalar ? "(float)global::System.Math.Max(count, 1)" : vector + ".Create((float)global::System.Math.Max(count, 1))") + ";");
            }

            for (int v = 0; v < offsets.Count; v++)
            {
                string value = kind.IsMean ? "a" + v + " / n" : "a" + v;
                writer.Line(scalar
                    ? "global::System.Runtime.CompilerServices.Unsafe.Add(ref target, " + offsets[v] + ") = " + value + ";"
                    : vector + ".StoreUnsafe(" + value + ", ref target, " + offsets[v] + ");");
                if (tracked)
                {
                    writer.Line(scalar
                        ? "global::System.Runtime.CompilerServices.Unsafe.Add(ref argMax, " + offsets[v] + ") = p" + v + ";"
                        : "Bag.StorePositions" + width.Bits + "(p" + v + ", ref argMax, " + offsets[v] + ");");
                }
            }
        }

        /// <summary>
        /// The helpers the kernels of one file call. File-local and fully qualified inside, so a consumer
        /// type named <c>Unsafe</c>, <c>Vector512</c> or <c>Bag</c> cannot change what the kernels mean.
        /// </summary>
        public override void EmitRowHelpers(SourceWriter writer, ElementGroup group)
        {
            writer.Line();
            writer.Line("/// <summary>Bag boundaries, row addressing and arg-max bookkeeping for the kernels in this file.</summary>");
            writer.Open("file static class Bag");
            foreach (IndexType index in IndexTypes.All)
            {
                EmitIndexHelper(writer, index);
                writer.Line();
                writer.Line("/// <summary>The first position in [start, end) whose row is not the padding row, or <paramref name=\"end\"/>.</summary>");
                writer.Open("public static nint FirstIncluded(ref readonly " + index.CSharpName + " indices, nint start, nint end, long paddingIndex)");
                writer.Open("while (start < end && Index(in indices, start) == paddingIndex)");
                writer.Line("start++;");
                writer.Close();
                writer.Line();
                writer.Line("return start;");
                writer.Close();
                writer.Line();
                writer.Line("/// <summary>Replaces the winning position of each column by the row it names.</summary>");
                writer.Open("public static void PositionsToRows(ref long argMax, ref readonly " + index.CSharpName + " indices, int dimension)");
                writer.Open("for (nint column = 0; column < dimension; column++)");
                writer.Line("ref long slot = ref " + Unsafe + ".Add(ref argMax, column);");
                writer.Line("slot = Index(in indices, (nint)slot);");
                writer.Close();
                writer.Close();
                writer.Line();
            }

            writer.Line("/// <summary>Where bag <paramref name=\"bag\"/> starts.</summary>");
            writer.Line(Inline);
            writer.Line("public static nint Start(ref readonly long starts, nint bag) => (nint)" + Unsafe + ".Add(ref " + Unsafe + ".AsRef(in starts), bag);");
            writer.Line();
            writer.Line("/// <summary>The first float of row <paramref name=\"row\"/> of a matrix with <paramref name=\"dimension\"/> columns.</summary>");
            writer.Line(Inline);
            writer.Line("public static ref float Row(ref readonly float first, nint row, int dimension) => ref " + Unsafe + ".Add(ref " + Unsafe + ".AsRef(in first), row * dimension);");
            writer.Line();
            writer.Line("/// <summary>The first arg-max slot of bag <paramref name=\"bag\"/>.</summary>");
            writer.Line(Inline);
            writer.Line("public static ref long ArgMax(ref long maxIndices, nint bag, int dimension) => ref " + Unsafe + ".Add(ref maxIndices, bag * dimension);");
            writer.Line();
            writer.Line("/// <summary>The per-sample weight of position <paramref name=\"i\"/>.</summary>");
            writer.Line(Inline);
            writer.Line("public static float Weight(ref readonly float perSampleWeights, nint i) => " + Unsafe + ".Add(ref " + Unsafe + ".AsRef(in perSampleWeights), i);");
            writer.Line();
            writer.Line("/// <summary>True when the caller asked for no arg-max: the values-only max.</summary>");
            writer.Line(Inline);
            writer.Line("public static bool IsNull(ref long maxIndices) => " + Unsafe + ".IsNullRef(ref maxIndices);");
            writer.Line();
            writer.Line("/// <summary>An empty or all-padding bag in max mode: +0.0.</summary>");
            writer.Line(Inline);
            writer.Line("public static void Zero(ref float target, int dimension) => global::System.Runtime.InteropServices.MemoryMarshal.CreateSpan(ref target, dimension).Clear();");
            writer.Line();
            writer.Line("/// <summary>An empty or all-padding bag in max mode with the arg-max: +0.0 and row -1.</summary>");
            writer.Open("public static void Empty(ref float target, ref long argMax, int dimension)");
            writer.Line("Zero(ref target, dimension);");
            writer.Line("global::System.Runtime.InteropServices.MemoryMarshal.CreateSpan(ref argMax, dimension).Fill(-1);");
            writer.Close();
            foreach (Width width in Width.All)
            {
                if (width.Bits == 0)
                {
                    continue;
                }

                string vector = width.VectorType;
                string floats = vector + "<float>";
                writer.Line();
                writer.Line("/// <summary>A position broadcast as int32 bits in a " + width.EnumName + "&lt;float&gt;, so it travels through the same selects as the maxima.</summary>");
                writer.Line(Inline);
                writer.Line("public static " + floats + " Position" + width.Bits + "(nint position) => " + vector + ".AsSingle(" + vector + ".Create((int)position));");
                writer.Line();
                writer.Line("/// <summary>");
                writer.Line("/// <paramref name=\"x\"/> where it is greater than <paramref name=\"a\"/>, else <paramref name=\"a\"/> (a NaN never replaces, a NaN in <paramref name=\"a\"/> stays).");
                writer.Line("/// x86's MAX instruction is exactly this rule (it returns its second operand unless the first is greater): one");
                writer.Line("/// instruction where compare-and-select costs three. Elsewhere (ARM's FMAX propagates NaN) the select.");
                writer.Line("/// </summary>");
                writer.Line(Inline);
                writer.Line("public static " + floats + " Greater" + width.Bits + "(" + floats + " x, " + floats + " a) =>");
                writer.Line("    " + X86Max(width) + ".IsSupported ? " + X86Max(width) + ".Max(x, a) : " + vector + ".ConditionalSelect(" + vector + ".GreaterThan(x, a), x, a);");
                writer.Line();
                writer.Line("/// <summary>Widens the positions (int32 bits) to int64 and stores them at column <paramref name=\"offset\"/>.</summary>");
                writer.Line(Inline);
                writer.Open("public static void StorePositions" + width.Bits + "(" + floats + " positions, ref long target, nuint offset)");
                writer.Line(vector + "<int> bits = " + vector + ".AsInt32(positions);");
                writer.Line(vector + ".StoreUnsafe(" + vector + ".WidenLower(bits), ref target, offset);");
                writer.Line(vector + ".StoreUnsafe(" + vector + ".WidenUpper(bits), ref target, offset + (nuint)" + vector + "<long>.Count);");
                writer.Close();
            }

            writer.Close();
        }

        /// <summary>The x86 class whose Max is the vector width's MAXPS.</summary>
        private static string X86Max(Width width) => "global::System.Runtime.Intrinsics.X86." + (width.Bits == 512 ? "Avx512F" : width.Bits == 256 ? "Avx" : "Sse");

        private static string Describe(KernelShape shape, Width width, Kind kind)
        {
            if (width.Bits == 0)
            {
                return "scalar column loop, the bag inside";
            }

            string text = DescribeBlocks(shape, width, BlockVectors(kind, width, tracked: true));
            return kind.IsMax ? "with the arg-max " + text + "; values only " + DescribeBlocks(shape, width, BlockVectors(kind, width, tracked: false)) : text;
        }

        private static string DescribeBlocks(KernelShape shape, Width width, int group)
        {
            int blocks = shape.FullVectors / group;
            int rest = shape.FullVectors % group + (shape.TailColumns > 0 ? 1 : 0);
            string text = blocks > 0
                ? blocks + (blocks == 1 ? " block" : " looped blocks") + " of " + group + " × " + width.EnumName + " accumulators" + (rest > 0 ? " + " + rest + " more" : string.Empty)
                : rest + " × " + width.EnumName + " accumulators";
            return shape.TailColumns > 0 ? text + ", the last overlapping" : text;
        }
    }
}
