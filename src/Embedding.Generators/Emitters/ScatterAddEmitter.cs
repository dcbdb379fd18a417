using System.Collections.Generic;
using System.Linq;
using Embedding.Generators.Helpers;
using Embedding.Generators.Model;
using Embedding.Native;

namespace Embedding.Generators.Emitters
{
    /// <summary>
    /// Emits the scatter-add (backward) kernels of one dimension: for each index type and each vector
    /// width that fits, a loop over positions that adds one gradient row into the destination row its
    /// index names, with straight-line vector code per row. Each kernel holds two loops, plain sums and
    /// frequency-scaled FMAs, chosen once per call. The bodies differ only in the vector type.
    /// </summary>
    /// <remarks>
    /// The tail is masked, never overlapping: a column added twice would be wrong, not merely
    /// redundant. The last vector ends at the row end and updates only the lanes the whole vectors
    /// did not cover; the lanes it shares with them are stored back as loaded (after their update).
    /// </remarks>
    internal sealed class ScatterAddEmitter : KernelFamily<KernelVariant>
    {
        public static readonly ScatterAddEmitter Instance = new ScatterAddEmitter();

        private static readonly KernelVariant[] ScatterAdd = { new KernelVariant("ScatterAdd") };

        public override string FileTag => "ScatterAdd";

        protected override IReadOnlyList<KernelVariant> Variants => ScatterAdd;

        /// <summary>float32 only so far: the other table types run the generic kernel.</summary>
        public override IEnumerable<ElementGroup> Groups(KernelSetSpec spec) => spec.Types.Contains(TableTypes.Float32) ? new[] { TableTypes.F32 } : new ElementGroup[0];

        protected override string DelegateType(ElementGroup group, IndexType index) =>
            "global::Embedding.Native.ScatterAddKernel<float, " + index.CSharpName + ">";

        /// <summary>The width operators by their runtime names.</summary>
        protected override IEnumerable<string> OperatorAliases(ElementGroup group) =>
            Width.All.Select(width => "Row" + width.Suffix + " = global::Embedding.Native.Width" + width.Suffix);

        protected override void EmitKernel(SourceWriter writer, KernelVariant variant, ElementGroup group, int dimension, IndexType index, Width width)
        {
            var shape = new KernelShape(dimension, width.Lanes);
            writer.Line("/// <summary>Scatter-add, f32 gradient, " + index.Description + " indices, dim " + dimension + ": " + Describe(shape, width) + ".</summary>");
            writer.Line("/// <remarks>No validation: every index must already be in [0, rows), every row named must have a positive count when <paramref name=\"counts\"/> is given, <paramref name=\"positions\"/> (when given) ascending, and <paramref name=\"destination\"/> must hold rows × " + dimension + " floats.</remarks>");
            writer.Line(EmbeddingKernelGenerator.Emitter.GeneratedCodeAttribute);
            writer.Open("private static void " + KernelName(variant.Name, group, dimension, index, width) + "(ref readonly float source, int dimension, ref readonly " + index.CSharpName + " indices, ref readonly int positions, nint count, long paddingIndex, ref readonly int counts, ref float destination)");
            writer.Open("if (Rows.IsNull(in counts))");
            writer.Line("// Plain sums, acc = acc + g; positions in order, so duplicates accumulate as in torch.");
            EmitLoop(writer, shape, width, scaled: false);
            writer.Line();
            writer.Line("return;");
            writer.Close();
            writer.Line();
            writer.Line("// scale_grad_by_freq: acc = fma(g, fl(1/c[row]), acc); positions in order, so duplicates accumulate as in torch.");
            EmitLoop(writer, shape, width, scaled: true);
            writer.Close();
        }

        private static void EmitLoop(SourceWriter writer, KernelShape shape, Width width, bool scaled)
        {
            int dimension = shape.Dimension;
            writer.Open("for (nint k = 0; k < count; k++)");
            writer.Line("// Prefetch the destination row a few positions ahead (KernelHints.DistanceFor): a hint, so no value changes.");
            writer.Open("if (Hints.IssuesPrefetches)");
            writer.Line("Hints.PrefetchRow(in Rows.Of(in destination, Rows.Index(in indices, Rows.Position(in positions, Hints.Ahead(k, count, " + dimension + "))), " + dimension + "), " + dimension + ");");
            writer.Close();
            writer.Line();
            writer.Line("nint i = Rows.Position(in positions, k);");
            writer.Line("nint row = Rows.Index(in indices, i);");
            writer.Open("if (row == paddingIndex)");
            writer.Line("continue;");
            writer.Close();
            writer.Line();
            writer.Line("ref float gradient = ref Rows.Of(in source, i, " + dimension + ");");
            writer.Line("ref float target = ref Rows.Of(in destination, row, " + dimension + ");");
            if (scaled)
            {
                writer.Line("float scale = Rows.FrequencyScale(in counts, row);");
            }

            EmitRow(writer, shape, width, scaled);
            writer.Close();
        }

        /// <summary>One row as straight-line updates: looped blocks, whole vectors, and a masked tail (never for the scalar width, one lane wide).</summary>
        private static void EmitRow(SourceWriter writer, KernelShape shape, Width width, bool scaled)
        {
            int lanes = shape.Lanes;
            string unit = width.Bits == 0 ? "column" : "vector";
            string operators = "Row" + width.Suffix;
            if (shape.Blocks > 0)
            {
                int blockColumns = KernelShape.BlockVectors * lanes;
                writer.Line("// Columns 0.." + (shape.RemainderStart - 1) + ": " + shape.Blocks + " blocks of " + KernelShape.BlockVectors + " " + unit + "s.");
                writer.Open("for (nuint block = 0; block < " + shape.RemainderStart + "; block += " + blockColumns + ")");
                for (int v = 0; v < KernelShape.BlockVectors; v++)
                {
                    writer.Line(Update(operators, scaled, v == 0 ? "block" : "block + " + (v * lanes)));
                }

                writer.Close();
            }

            if (shape.RemainderVectors > 0)
            {
                int end = shape.RemainderStart + shape.RemainderVectors * lanes - 1;
                writer.Line("// Columns " + shape.RemainderStart + ".." + end + ": " + shape.RemainderVectors + " whole " + unit + (shape.RemainderVectors == 1 ? "." : "s."));
                for (int v = 0; v < shape.RemainderVectors; v++)
                {
                    writer.Line(Update(operators, scaled, (shape.RemainderStart + v * lanes).ToString()));
                }
            }

            if (shape.TailColumns > 0)
            {
                int start = shape.Dimension - lanes;
                int keep = lanes - shape.TailColumns;
                int first = shape.Dimension - shape.TailColumns;
                string columns = shape.TailColumns == 1 ? "Column " + first : "Columns " + first + ".." + (shape.Dimension - 1);
                writer.Line("// " + columns + ": the vector ending at the row end, masked to its last " + shape.TailColumns + (shape.TailColumns == 1 ? " lane" : " lanes")
                    + "; the " + keep + " columns it shares with the vectors above are stored back unchanged, not added twice.");
                writer.Line(scaled
                    ? operators + ".MultiplyAddMasked(ref gradient, scale, ref target, " + start + ", " + keep + ");"
                    : operators + ".AddMasked(ref gradient, ref target, " + start + ", " + keep + ");");
            }
        }

        private static string Update(string operators, bool scaled, string offset) => scaled
            ? operators + ".MultiplyAdd(ref gradient, scale, ref target, " + offset + ");"
            : operators + ".Add(ref gradient, ref target, " + offset + ");";

        private static string Describe(KernelShape shape, Width width)
        {
            string unit = width.Bits == 0 ? "scalar" : width.EnumName;
            string text = shape.IsStraightLine
                ? shape.FullVectors + " × " + unit + " per row"
                : shape.Blocks + " looped blocks of " + KernelShape.BlockVectors + " × " + unit + " + " + shape.RemainderVectors + " more per row";
            return shape.TailColumns > 0 ? text + " + 1 masked " + unit + " tail" : text + ", no tail";
        }
    }
}
