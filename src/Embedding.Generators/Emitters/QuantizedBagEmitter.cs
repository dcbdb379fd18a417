using System.Collections.Generic;
using System.Linq;
using Embedding.Generators.Helpers;
using Embedding.Generators.Model;
using Embedding.Native;

namespace Embedding.Generators.Emitters
{
    /// <summary>
    /// Emits the quantized bag kernels of one dimension: for each requested code width (8-, 4-, 2-bit rows),
    /// index type and vector width that fits, the generic kernel (<c>GenericQuantizedBag</c>) with the dimension
    /// folded in. Per bag, blocks of register accumulators each take a speculative float pass over the bag's positions (and an
    /// exact one when the float pass cannot prove its bits; see the runtime's <c>QuantizedRowFactors</c>) (at
    /// constant columns; longer rows loop over their whole blocks); per position the runtime's <c>QuantizedBagRows</c>
    /// does the bookkeeping (padding, count, pruning map, row, weighted scale and bias) and the width's
    /// <c>IQuantizedCodes</c> operator widens the codes and folds them in with torch's rounding. The key's table
    /// type is float32, the output's.
    /// </summary>
    /// <remarks>
    /// <para>
    /// A vector width covers the columns whose codes fill whole bytes (a vector starts on a byte); the last
    /// vector ends there and overlaps the one before it, recomputing the shared columns with the same bits.
    /// Where the last byte holds padding codes (a 4-bit row of odd dimension, a 2-bit row not a multiple of 4;
    /// torch's prepack never makes one) the remaining one to three columns run through the scalar operators.
    /// Unlike the generic kernel, whose four accumulators are clamped onto the row (the same vector computed up
    /// to four times when the row is shorter than a block), a kernel holds exactly the vectors its row needs.
    /// Blocks are as wide as the generic kernel's (<see cref="GroupSize"/>).
    /// </para>
    /// <para>
    /// Every column is accumulated in its own lane in position order and nothing is reduced horizontally, so
    /// how the vectors are grouped into blocks changes no bit: every width, and the generic kernel, agree.
    /// </para>
    /// </remarks>
    internal sealed class QuantizedBagEmitter : KernelFamily<QuantizedBagEmitter.Kind>
    {
        /// <summary>
        /// Accumulators per block: four independent add-and-multiply-add chains in flight with the row's operands fit
        /// the 16 registers of SSE and AVX2 (<c>GenericQuantizedBag.BlockVectors</c>).
        /// </summary>
        private const int BlockVectors = 4;

        /// <summary>
        /// Accumulators per block at AVX-512 for rows of more than <see cref="BlockVectors"/> vectors, as the generic
        /// kernel holds them (<c>GenericQuantizedBag.WideBlockVectors</c>), so a generated kernel is the generic one
        /// with the dimension folded in.
        /// </summary>
        /// <remarks>
        /// A trade-off measured in <c>bench/notes.md</c> §6: at D = 128 one pass of eight against two of four was
        /// 0.75x the time for 4-bit rows in cache but 1.5x for 8-bit rows from DRAM.
        /// </remarks>
        private const int WideBlockVectors = 8;

        /// <summary>The accumulators of a block at <paramref name="width"/> for a row of <paramref name="covered"/> vector columns (the generic kernel's rule).</summary>
        private static int GroupSize(Width width, int covered) =>
            width.Bits == 512 && covered > BlockVectors * width.Lanes ? WideBlockVectors : BlockVectors;

        /// <summary>
        /// Rows of fewer whole blocks than this are straight-line code; from this many on, the whole blocks run in a
        /// loop (offsets <c>block + k·Lanes</c>) and only the rest is unrolled.
        /// </summary>
        /// <remarks>
        /// Each block inlines a pass over the bag: the position bookkeeping and four multiply-adds, each with its
        /// float-FMA range test and double path (today two passes: the speculative one and the exact one; the Tier-1 code
        /// of every default kernel, read with <c>DOTNET_JitDisasm</c> at AVX-512 and AVX2, still calls nothing). Four unrolled blocks (D = 128 at Vector256) exhausted the JIT's
        /// inlining budget for the method: the last multiply-add called a property getter instead of inlining it and
        /// spilled the accumulators around the call, 1.2x the generic kernel's time. A loop keeps one copy of the block,
        /// as the generic kernel does, and smaller libraries; the constant offsets inside a block were worth nothing
        /// measurable next to a pass over the bag.
        /// </remarks>
        private const int MaxStraightLineBlocks = 2;

        public static readonly QuantizedBagEmitter Instance = new QuantizedBagEmitter();

        /// <summary>One code width: its kernels are one <c>KernelOperation</c> each.</summary>
        internal sealed class Kind : KernelVariant
        {
            public Kind(QuantizedWidth width)
                : base(width.Operation)
            {
                Width = width;
            }

            public QuantizedWidth Width { get; }
        }

        private static readonly Kind[] Kinds = QuantizedWidths.All.Select(width => new Kind(width)).ToArray();

        private static readonly TableType[] Float32 = { TableTypes.Float32 };

        public override string FileTag => "QuantizedBag";

        protected override IReadOnlyList<Kind> Variants => Kinds;

        /// <summary>The output (and the kernel key's table type) is float32 whatever the set's <c>Types</c>.</summary>
        public override IEnumerable<ElementGroup> Groups(KernelSetSpec spec) => spec.Quantized.IsEmpty ? new ElementGroup[0] : new[] { TableTypes.F32 };

        protected override IEnumerable<Kind> VariantsFor(KernelSetSpec spec) => Kinds.Where(kind => spec.Quantized.Contains(kind.Width));

        protected override IEnumerable<TableType> Tables(KernelSetSpec spec, ElementGroup group) => Float32;

        /// <summary>A vector width fits when one vector fits in the columns of whole code bytes; the scalar width always.</summary>
        protected override IEnumerable<Width> Widths(Kind kind, ElementGroup group, int dimension) =>
            Width.All.Where(width => width.Bits == 0 || new KernelShape(kind.Width.VectorColumns(dimension), width.Lanes).Fits);

        protected override string DelegateType(ElementGroup group, IndexType index) =>
            "global::Embedding.Native.QuantizedBagKernel<" + index.CSharpName + ">";

        /// <summary>
        /// The runtime's quantized operators by short names: the per-position bookkeeping per code width and index
        /// type (<c>Quantized8I32</c> …), the width operators (<c>Codes512</c> …) and their vector types.
        /// </summary>
        protected override IEnumerable<string> OperatorAliases(ElementGroup group)
        {
            foreach (QuantizedWidth code in QuantizedWidths.All)
            {
                foreach (IndexType index in IndexTypes.All)
                {
                    yield return RowsType(code, index) + " = global::Embedding.Native.QuantizedBagRows<" + index.CSharpName + ", global::Embedding.Native." + code.RowType + ">";
                }
            }

            yield return "Factors = global::Embedding.Native.QuantizedRowFactors";
            foreach (Width width in Width.All)
            {
                yield return Operators(width) + " = global::Embedding.Native.QuantizedCodes" + width.Suffix;
                if (width.Bits != 0)
                {
                    yield return VectorType(width) + " = " + width.VectorType + "<float>";
                }
            }
        }

        /// <summary>The alias of one code width's bookkeeping for one index type, e.g. <c>Quantized4I64</c>.</summary>
        private static string RowsType(QuantizedWidth code, IndexType index) => "Quantized" + code.Bits + index.KeyName;

        /// <summary>The alias of a width's operators, e.g. <c>Codes512</c>.</summary>
        private static string Operators(Width width) => "Codes" + width.Suffix;

        /// <summary>The accumulator type of a width: the alias <c>Floats512</c> …, or <c>float</c>.</summary>
        private static string VectorType(Width width) => width.Bits == 0 ? "float" : "Floats" + width.Suffix;

        protected override void EmitKernel(SourceWriter writer, Kind kind, ElementGroup group, int dimension, IndexType index, Width width)
        {
            RowPlan plan = RowPlan.For(kind.Width, dimension, width);
            writer.Line("/// <summary>Quantized bag, " + kind.Width.Description + ", " + index.Description + " indices, dim " + dimension + ": " + plan.Describe() + ".</summary>");
            writer.Line("/// <remarks>No validation: every index must already be in [0, rows) (with a mapping: in the mapping, and every entry used -1 or a row), the bag boundaries valid, and <paramref name=\"destination\"/> must hold numBags × " + dimension + " floats.</remarks>");
            writer.Line(EmbeddingKernelGenerator.Emitter.GeneratedCodeAttribute);
            writer.Open("private static void " + KernelName(kind.Name, group, dimension, index, width) + "(ref readonly byte packed, int dimension, ref readonly " + index.CSharpName + " indices, ref readonly long starts, nint numBags, long paddingIndex, ref readonly int mapping, ref readonly float perSampleWeights, bool mean, ref float destination)");
            writer.Line("// Per position: padding, count, pruning map, row, weighted scale and bias; the row size and prefetch distance are constants.");
            writer.Line("var rows = new " + RowsType(kind.Width, index) + "(in packed, " + dimension + ", in indices, in starts, numBags, paddingIndex, in mapping, in perSampleWeights, mean);");
            writer.Open("for (nint bag = 0; bag < numBags; bag++)");
            writer.Line("nint start = Rows.Index(in starts, bag), end = Rows.Index(in starts, bag + 1);");
            writer.Line("ref float target = ref Rows.Of(in destination, bag, " + dimension + ");");

            bool first = true;
            if (plan.LoopedBlocks > 0)
            {
                int step = plan.Group * plan.Lanes;
                writer.Line("// Columns 0.." + (plan.LoopEnd - 1) + ": " + plan.LoopedBlocks + " blocks of " + plan.Group + " accumulators, one pass over the bag each; the first prefetches.");
                writer.Open("for (nuint block = 0; block < " + plan.LoopEnd + "; block += " + step + ")");
                EmitBlock(writer, kind, width, Enumerable.Range(0, plan.Group).Select(v => v == 0 ? "block" : "block + " + (v * plan.Lanes)).ToList(), "block == 0");
                writer.Close();
                first = false;
            }

            foreach (List<int> block in plan.Blocks)
            {
                if (!first)
                {
                    writer.Line();
                }

                int last = block[block.Count - 1] + plan.Lanes - 1;
                bool overlaps = plan.Overlap > 0 && block[block.Count - 1] == plan.Covered - plan.Lanes;
                string tail = overlaps
                    ? "; the last " + (width.Bits == 0 ? "column" : "vector") + " ends at the last whole code byte and overlaps the one before it by " + plan.Overlap + " columns, recomputed with the same bits"
                    : string.Empty;
                writer.Line("// Columns " + block[0] + ".." + last + ": " + block.Count + (block.Count == 1 ? " accumulator" : " accumulators") + tail + (first ? "; prefetches" : string.Empty) + ".");
                writer.OpenScope();
                EmitBlock(writer, kind, width, block.Select(column => column.ToString()).ToList(), first ? string.Empty : null);
                writer.Close();
                first = false;
            }

            if (plan.Covered < dimension)
            {
                writer.Line();
                writer.Line("// Columns " + plan.Covered + ".." + (dimension - 1) + ": codes that share the last byte with padding codes, one column at a time with the scalar operators.");
                writer.OpenScope();
                EmitBlock(writer, kind, Width.All[Width.All.Length - 1], Enumerable.Range(plan.Covered, dimension - plan.Covered).Select(column => column.ToString()).ToList(), first ? string.Empty : null);
                writer.Close();
            }

            writer.Close();
            writer.Close();
        }

        /// <summary>
        /// One block: accumulators for <paramref name="columns"/>, a speculative pass over the bag's positions with float
        /// FMAs and the exactness window tracked, a second, exact pass only when the first cannot prove its bits (the
        /// runtime's <c>QuantizedRowFactors</c>), the stores; every step a call of the runtime's operators.
        /// <paramref name="prefetchWhen"/>: empty for always, a condition, or null for a pass that does not prefetch (the
        /// first pass brought the rows in).
        /// </summary>
        private static void EmitBlock(SourceWriter writer, Kind kind, Width width, IList<string> columns, string? prefetchWhen)
        {
            string type = VectorType(width);
            string codes = Operators(width);
            for (int v = 0; v < columns.Count; v++)
            {
                writer.Line(type + " a" + v + " = " + codes + ".Zero;");
            }

            writer.Line("int count = 0;");
            writer.Line("bool proven = false;");
            writer.Open("if (Factors.SpeculatesInFloat)");
            writer.Line("// Float FMAs, every sum checked against its row's window; the bits are torch's when every row was windowed and every lane stayed inside.");
            writer.Line(type + " outside = " + codes + ".Zero;");
            writer.Line("bool windowed = true;");
            EmitPass(writer, kind, codes, columns, prefetchWhen, tracked: true);
            writer.Line();
            writer.Line("proven = windowed && " + codes + ".AllInside(outside);");
            writer.Close();
            writer.Line();
            writer.Open("if (!proven)");
            writer.Line("// Again on the exact path: each vector's float FMA where its window proves it, the double rounding elsewhere.");
            for (int v = 0; v < columns.Count; v++)
            {
                writer.Line("a" + v + " = " + codes + ".Zero;");
            }

            writer.Line("count = 0;");
            string? exactPrefetch = prefetchWhen is null ? null : "!Factors.SpeculatesInFloat" + (prefetchWhen.Length == 0 ? string.Empty : " && " + prefetchWhen);
            EmitPass(writer, kind, codes, columns, exactPrefetch, tracked: false);
            writer.Close();
            writer.Line();
            for (int v = 0; v < columns.Count; v++)
            {
                writer.Line(codes + ".Store(rows.Finish<" + type + ", " + codes + ">(a" + v + ", count), ref target, " + columns[v] + ");");
            }
        }

        /// <summary>One pass over the bag's positions: the tracked float-FMA step or the exact one for each accumulator.</summary>
        private static void EmitPass(SourceWriter writer, Kind kind, string codes, IList<string> columns, string? prefetchWhen, bool tracked)
        {
            writer.Open("for (nint i = start; i < end; i++)");
            if (prefetchWhen is not null)
            {
                writer.Line("// Prefetch the row KernelHints.DistanceForRowBytes positions ahead: a hint, so no value changes.");
                writer.Line(prefetchWhen.Length == 0 ? "rows.Prefetch(i);" : "if (" + prefetchWhen + ") rows.Prefetch(i);");
            }

            writer.Line("ref byte codes = ref rows.Row(i, ref count, out var factors);");
            writer.Open("if (Rows.IsNull(in codes))");
            writer.Line("// The padding index, or pruned: a pruned position counts for the mean but adds nothing.");
            writer.Line("continue;");
            writer.Close();
            writer.Line();
            if (tracked)
            {
                writer.Line("windowed &= factors.Windowed;");
                writer.Line("var row = " + codes + ".Broadcast(in factors, first: count == 1);");
            }

            for (int v = 0; v < columns.Count; v++)
            {
                string step = "a" + v + ", " + codes + "." + kind.Width.CodesMember + "(ref codes, " + columns[v] + ")";
                writer.Line("a" + v + " = " + codes + (tracked ? ".MultiplyAddTracked(" + step + ", in row, ref outside);" : ".MultiplyAdd(" + step + ", in factors);"));
            }

            writer.Close();
        }

        /// <summary>
        /// How one row is covered at one width: the vectors over the columns of whole code bytes (the last one
        /// overlapping when they do not divide), grouped into blocks; a loop over the whole blocks when there are
        /// <see cref="MaxStraightLineBlocks"/> or more, then the rest; the padding-code columns after them.
        /// </summary>
        private sealed class RowPlan
        {
            private RowPlan(int lanes, int group, int covered, int overlap, int loopedBlocks, List<List<int>> blocks, int dimension)
            {
                Lanes = lanes;
                Group = group;
                Covered = covered;
                Overlap = overlap;
                LoopedBlocks = loopedBlocks;
                Blocks = blocks;
                Dimension = dimension;
            }

            public int Lanes { get; }

            public int Group { get; }

            /// <summary>The columns the width covers: all of them for the scalar width, else those of whole code bytes.</summary>
            public int Covered { get; }

            /// <summary>Columns the last vector shares with the one before it (0 when the vectors divide the covered columns).</summary>
            public int Overlap { get; }

            /// <summary>Whole blocks run by a loop (0 for a straight-line row).</summary>
            public int LoopedBlocks { get; }

            /// <summary>End of the looped columns.</summary>
            public int LoopEnd => LoopedBlocks * Group * Lanes;

            /// <summary>The straight-line blocks after the loop: each a list of first columns.</summary>
            public List<List<int>> Blocks { get; }

            public int Dimension { get; }

            public static RowPlan For(QuantizedWidth code, int dimension, Width width)
            {
                int lanes = width.Lanes;
                int covered = width.Bits == 0 ? dimension : code.VectorColumns(dimension);
                var shape = new KernelShape(covered, lanes);
                int group = GroupSize(width, covered);
                // Two whole blocks or more: a loop over them (one inlined copy of the block), then the rest straight-line.
                int wholeBlocks = shape.FullVectors / group;
                int looped = wholeBlocks >= MaxStraightLineBlocks ? wholeBlocks : 0;
                var vectors = new List<int>();
                for (int column = looped * group * lanes; column + lanes <= covered; column += lanes)
                {
                    vectors.Add(column);
                }

                int overlap = 0;
                if (shape.TailColumns > 0)
                {
                    vectors.Add(covered - lanes);
                    overlap = lanes - shape.TailColumns;
                }

                var blocks = new List<List<int>>();
                for (int v = 0; v < vectors.Count; v += group)
                {
                    blocks.Add(vectors.Skip(v).Take(group).ToList());
                }

                return new RowPlan(lanes, group, covered, overlap, looped, blocks, dimension);
            }

            public string Describe()
            {
                string unit = Lanes == 1 ? "scalar" : "Vector" + (Lanes * 32);
                int straight = Blocks.Sum(block => block.Count);
                string text = LoopedBlocks > 0
                    ? LoopedBlocks + " looped blocks of " + Group + " × " + unit + " accumulators" + (straight > 0 ? " + " + straight + " more" : string.Empty)
                    : Blocks.Count == 1
                        ? straight + " × " + unit + (straight == 1 ? " accumulator" : " accumulators")
                        : Blocks.Count + " blocks of up to " + Group + " × " + unit + " accumulators (" + straight + " in all)";
                text += Overlap > 0 ? ", the last overlapping" : string.Empty;
                return Covered < Dimension ? text + ", then " + (Dimension - Covered) + " padding-byte " + (Dimension - Covered == 1 ? "column" : "columns") + " one at a time" : text;
            }
        }
    }
}
