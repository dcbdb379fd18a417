using System.Collections.Generic;
using System.Linq;
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

        /// <summary>
        /// The accumulators of one block: a value register each, and a position register each when the arg-max is
        /// tracked. A weighted sum whose multiply-add is emulated takes half as many too: on x86-64-v2 (no FMA
        /// instruction) each step is the exact emulation in double (ExactFusedMultiplyAdd), whose temporaries with 8
        /// accumulators overflowed the 16 registers (D = 64: 14.7x the unweighted sum's time, against 3.1x at D = 16
        /// with 4). Only the 128-bit kernels can meet the emulation, and ARM64 runs them with its own FMA.
        /// </summary>
        private static int BlockVectors(Kind kind, Width width, bool tracked, bool emulatedMultiplyAdd = false)
        {
            int group = width.Bits == 512 ? WideSumBlockVectors : SumBlockVectors;
            return (kind.IsMax && tracked) || emulatedMultiplyAdd ? group / 2 : group;
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
        public override IEnumerable<ElementGroup> Groups(KernelSetSpec spec) => spec.Types.Contains(TableTypes.Float32) ? new[] { TableTypes.F32 } : new ElementGroup[0];

        protected override string DelegateType(ElementGroup group, IndexType index) =>
            "global::Embedding.Native.BagKernel<" + group.CSharpName + ", " + index.CSharpName + ">";

        /// <summary>
        /// The runtime's bag operators by short names: the reductions (<c>BagSum</c> …), the per-width lane
        /// operations over float (<c>BagVector512&lt;float&gt;</c> …) and their vector types.
        /// </summary>
        protected override IEnumerable<string> OperatorAliases(ElementGroup group)
        {
            yield return "Bag = global::Embedding.Native.BagRows";
            foreach (string reducer in new[] { "Sum", "Mean", "Max" })
            {
                yield return reducer + " = global::Embedding.Native.Bag" + reducer;
            }

            yield return "FusedWeightedSum = global::Embedding.Native.BagWeightedSumFused";
            yield return "RoundedWeightedSum = global::Embedding.Native.BagWeightedSumRounded";
            foreach (Width width in Width.All)
            {
                yield return Operators(width) + " = global::Embedding.Native." + (width.Bits == 0 ? "BagScalar<float>" : "BagVector" + width.Bits + "<float>");
                if (width.Bits != 0)
                {
                    yield return VectorType(width) + " = " + width.VectorType + "<float>";
                }
            }
        }

        /// <summary>The alias of a width's lane operations, e.g. <c>Lanes512</c>.</summary>
        private static string Operators(Width width) => "Lanes" + width.Suffix;

        /// <summary>The accumulator type of a width: the alias <c>Floats512</c> …, or <c>float</c>.</summary>
        private static string VectorType(Width width) => width.Bits == 0 ? "float" : "Floats" + width.Suffix;

        protected override void EmitKernel(SourceWriter writer, Kind kind, ElementGroup group, int dimension, IndexType index, Width width)
        {
            var shape = new KernelShape(dimension, width.Lanes);
            writer.Line("/// <summary>" + kind.Description + ", f32 table, " + index.Description + " indices, dim " + dimension + ": " + Describe(shape, width, kind) + ".</summary>");
            writer.Line("/// <remarks>No validation: every index must already be in [0, rows), the bag boundaries valid, and <paramref name=\"destination\"/>"
                + (kind.IsMax ? " and <paramref name=\"maxIndices\"/>" : string.Empty) + " must hold numBags × " + dimension + " elements.</remarks>");
            writer.Line(EmbeddingKernelGenerator.Emitter.GeneratedCodeAttribute);
            writer.Open("private static void " + KernelName(kind.Name, group, dimension, index, width) + "(ref readonly float weight, long rows, int dimension, ref readonly " + index.CSharpName + " indices, ref readonly long starts, nint numBags, long paddingIndex, ref readonly float perSampleWeights, ref float destination, ref long maxIndices)");
            writer.Line("// Positions in all bags: the prefetch looks ahead across bag boundaries but not past the last.");
            writer.Line("nint total = Rows.Index(in starts, numBags);");
            writer.Line("// A table the cache can hold: its rows ahead are prefetched whole, not only their first lines.");
            writer.Line("bool wholeRows = Hints.PrefetchesWholeRows(rows, rowBytes: " + (dimension * 4) + ");");
            if (kind.IsMax)
            {
                writer.Open("if (Rows.IsNull(in maxIndices))");
                writer.Line("// Values only (the caller wants no arg-max): the same rule, a row replaces a lane only when greater, without the positions.");
                EmitBagLoop(writer, kind, shape, width, "Max", tracked: false);
                writer.Line();
                writer.Line("return;");
                writer.Close();
                writer.Line();
                writer.Line("// Values and the winning position of every lane, turned into rows after each bag.");
                EmitBagLoop(writer, kind, shape, width, "Max", tracked: true);
            }
            else if (kind.Weighted)
            {
                writer.Open("if (paddingIndex < 0)");
                if (width.Bits == 128)
                {
                    writer.Open("if (FusedWeightedSum.IsEmulated)");
                    writer.Line("// x86-64-v2 (no FMA instruction): the exact emulation's temporaries need the registers of half the accumulators.");
                    EmitBagLoop(writer, kind, shape, width, "FusedWeightedSum", tracked: false, emulatedMultiplyAdd: true);
                    writer.Line();
                    writer.Line("return;");
                    writer.Close();
                    writer.Line();
                }

                writer.Line("// No padding row: acc = fma(row, w, acc), one rounding (torch 1.13's fast path).");
                EmitBagLoop(writer, kind, shape, width, "FusedWeightedSum", tracked: false);
                writer.Line();
                writer.Line("return;");
                writer.Close();
                writer.Line();
                writer.Line("// A padding row: acc = acc + fl(row · w), two roundings (torch 1.13's padding path).");
                EmitBagLoop(writer, kind, shape, width, "RoundedWeightedSum", tracked: false);
            }
            else
            {
                EmitBagLoop(writer, kind, shape, width, kind.Mode, tracked: false);
            }

            writer.Close();
        }

        /// <summary>The loop over bags with one reduction (<paramref name="reducer"/>, an alias of the runtime's operator).</summary>
        private static void EmitBagLoop(SourceWriter writer, Kind kind, KernelShape shape, Width width, string reducer, bool tracked, bool emulatedMultiplyAdd = false)
        {
            int dimension = shape.Dimension;
            writer.Open("for (nint bag = 0; bag < numBags; bag++)");
            writer.Line("nint start = Rows.Index(in starts, bag), end = Rows.Index(in starts, bag + 1);");
            writer.Line("ref float target = ref Rows.Of(in destination, bag, " + dimension + ");");
            if (kind.IsMax)
            {
                if (tracked)
                {
                    writer.Line("ref long argMax = ref Rows.Of(in maxIndices, bag, " + dimension + ");");
                }

                writer.Line("nint head = Bag.FirstIncluded(in indices, start, end, paddingIndex);");
                writer.Open("if (head == end)");
                writer.Line(tracked ? "// Empty or all padding: +0.0, and no row (-1)." : "// Empty or all padding: +0.0.");
                writer.Line(tracked ? "Bag.Empty(ref target, ref argMax, " + dimension + ");" : "Bag.Zero(ref target, " + dimension + ");");
                writer.Line("continue;");
                writer.Close();
                writer.Line();
                writer.Line("ref float headRow = ref Rows.Of(in weight, Rows.Index(in indices, head), " + dimension + ");");
            }

            int group = BlockVectors(kind, width, tracked, emulatedMultiplyAdd);
            int lanes = shape.Lanes;
            string unit = width.Bits == 0 ? "column" : "vector";
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

                EmitGroup(writer, kind, dimension, width, reducer, tracked, offsets, "block", group * lanes);
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
                    ? "; the last " + unit + " ends at the row end and overlaps the one before it by " + (lanes - shape.TailColumns) + " columns, recomputed with the same bits"
                    : string.Empty;
                writer.Line("// Columns " + blockEnd + ".." + (dimension - 1) + ": " + rest.Count + (rest.Count == 1 ? " accumulator" : " accumulators") + tail + ".");
                writer.Open(string.Empty);
                EmitGroup(writer, kind, dimension, width, reducer, tracked, rest, blockEnd.ToString(), dimension - blockEnd);
                writer.Close();
            }

            if (tracked)
            {
                writer.Line();
                writer.Line("Bag.PositionsToRows(ref argMax, in indices, " + dimension + ");");
            }

            writer.Close();
        }

        /// <summary>
        /// One block: accumulators for <paramref name="offsets"/>, the bag loop, the stores; every step is a call
        /// of the runtime's operators. Every pass over a bag's rows prefetches the start of its own columns
        /// (<paramref name="firstColumn"/>, <paramref name="columns"/> wide) of the rows ahead: a later pass reads
        /// other lines of the rows than the first, which the hardware does not bring in by itself.
        /// </summary>
        private static void EmitGroup(SourceWriter writer, Kind kind, int dimension, Width width, string reducer, bool tracked, IList<string> offsets, string firstColumn, int columns)
        {
            string type = VectorType(width);
            string lanes = Operators(width);
            string generic = "<" + type + ", float, " + lanes + ">";
            if (kind.IsMax)
            {
                for (int v = 0; v < offsets.Count; v++)
                {
                    writer.Line(type + " a" + v + " = " + lanes + ".Load(ref headRow, " + offsets[v] + ");");
                }

                if (tracked)
                {
                    for (int v = 0; v < offsets.Count; v++)
                    {
                        writer.Line(type + " p" + v + " = " + lanes + ".Position(head);");
                    }
                }

                writer.Open("for (nint i = head + 1; i < end; i++)");
            }
            else
            {
                for (int v = 0; v < offsets.Count; v++)
                {
                    writer.Line(type + " a" + v + " = " + reducer + ".Identity" + generic + "();");
                }

                if (kind.IsMean)
                {
                    writer.Line("int count = 0;");
                }

                writer.Open("for (nint i = start; i < end; i++)");
            }

            writer.Line("// Prefetch this pass's columns of the row KernelHints.BagPrefetchDistance positions ahead: a hint, so no value changes.");
            writer.Open("if (Hints.IssuesPrefetches)");
            writer.Line("Hints.PrefetchColumns(in Rows.Of(in weight, Rows.Index(in indices, Hints.BagAhead(i, total)), " + dimension + "), " + firstColumn + ", " + columns + ", wholeRows);");
            writer.Close();
            writer.Line();

            writer.Line("nint row = Rows.Index(in indices, i);");
            writer.Open("if (row == paddingIndex)");
            writer.Line("continue;");
            writer.Close();
            writer.Line();
            writer.Line("ref float source = ref Rows.Of(in weight, row, " + dimension + ");");
            if (kind.IsMax)
            {
                if (tracked)
                {
                    writer.Line(type + " at = " + lanes + ".Position(i);");
                }

                for (int v = 0; v < offsets.Count; v++)
                {
                    writer.Line(type + " x" + v + " = " + lanes + ".Load(ref source, " + offsets[v] + ");");
                    if (tracked)
                    {
                        writer.Line(type + " m" + v + " = Max.Replaces" + generic + "(a" + v + ", x" + v + ");");
                        writer.Line("a" + v + " = " + lanes + ".Select(m" + v + ", x" + v + ", a" + v + ");");
                        writer.Line("p" + v + " = " + lanes + ".Select(m" + v + ", at, p" + v + ");");
                    }
                    else
                    {
                        writer.Line("a" + v + " = " + lanes + ".Larger(x" + v + ", a" + v + ");");
                    }
                }
            }
            else
            {
                string weight = "default";
                if (kind.Weighted)
                {
                    writer.Line(type + " w = " + lanes + ".Broadcast(Rows.At(in perSampleWeights, i));");
                    weight = "w";
                }

                for (int v = 0; v < offsets.Count; v++)
                {
                    writer.Line("a" + v + " = " + reducer + ".Accumulate" + generic + "(a" + v + ", " + lanes + ".Load(ref source, " + offsets[v] + "), " + weight + ");");
                }

                if (kind.IsMean)
                {
                    writer.Line("count++;");
                }
            }

            writer.Close();
            writer.Line();
            for (int v = 0; v < offsets.Count; v++)
            {
                string value = kind.IsMean ? reducer + ".Finish" + generic + "(a" + v + ", count)" : "a" + v;
                writer.Line(lanes + ".Store(" + value + ", ref target, " + offsets[v] + ");");
                if (tracked)
                {
                    writer.Line(lanes + ".StorePositions(p" + v + ", ref argMax, " + offsets[v] + ");");
                }
            }
        }

        private static string Describe(KernelShape shape, Width width, Kind kind)
        {
            string text = DescribeBlocks(shape, width, BlockVectors(kind, width, tracked: true));
            if (kind.Weighted && width.Bits == 128)
            {
                return text + " (" + DescribeBlocks(shape, width, BlockVectors(kind, width, tracked: false, emulatedMultiplyAdd: true)) + " where the multiply-add is emulated)";
            }

            return kind.IsMax ? "with the arg-max " + text + "; values only " + DescribeBlocks(shape, width, BlockVectors(kind, width, tracked: false)) : text;
        }

        private static string DescribeBlocks(KernelShape shape, Width width, int group)
        {
            int blocks = shape.FullVectors / group;
            int rest = shape.FullVectors % group + (shape.TailColumns > 0 ? 1 : 0);
            string text = blocks > 0
                ? blocks + (blocks == 1 ? " block" : " looped blocks") + " of " + group + " × " + Unit(width) + " accumulators" + (rest > 0 ? " + " + rest + " more" : string.Empty)
                : rest + " × " + Unit(width) + " accumulators";
            return shape.TailColumns > 0 ? text + ", the last overlapping" : text;
        }

        private static string Unit(Width width) => width.Bits == 0 ? "scalar" : width.EnumName;
    }
}
