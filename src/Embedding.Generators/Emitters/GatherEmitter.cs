using System.Collections.Generic;
using System.Linq;
using Embedding.Generators.Helpers;
using Embedding.Generators.Model;
using Embedding.Native;

namespace Embedding.Generators.Emitters
{
    /// <summary>
    /// Emits the gather (forward) kernels of one dimension and element size: for each index type and
    /// each vector width that fits, a loop over indices whose body copies one row with straight-line
    /// vector loads and stores. A copy moves bits, so the kernels are per element size (float16 and
    /// bfloat16 share the 16-bit ones). The bodies differ only in the vector type, so widths can be diffed.
    /// </summary>
    internal sealed class GatherEmitter : KernelFamily<KernelVariant>
    {
        public static readonly GatherEmitter Instance = new GatherEmitter();

        private static readonly KernelVariant[] Gather = { new KernelVariant("Gather") };

        public override string FileTag => "Gather";

        protected override IReadOnlyList<KernelVariant> Variants => Gather;

        public override IEnumerable<ElementGroup> Groups(KernelSetSpec spec) => spec.Types.Select(TableTypes.BySize);

        protected override string DelegateType(ElementGroup group, IndexType index) =>
            "global::Embedding.Native.GatherKernel<" + group.CSharpName + ", " + index.CSharpName + ">";

        /// <summary>The width operators by their runtime names (a copy is the same for every element type).</summary>
        protected override IEnumerable<string> OperatorAliases(ElementGroup group) =>
            Width.All.Select(width => "Row" + width.Suffix + " = global::Embedding.Native.Width" + width.Suffix);

        protected override void EmitKernel(SourceWriter writer, KernelVariant variant, ElementGroup group, int dimension, IndexType index, Width width)
        {
            var shape = new KernelShape(dimension, width.LanesOf(group.Bytes));
            string element = group.CSharpName;
            writer.Line("/// <summary>Gather, " + group.Description + ", " + index.Description + " indices, dim " + dimension + ": " + Describe(shape, width) + ".</summary>");
            writer.Line("/// <remarks>No validation: every index must already be in [0, rows) and <paramref name=\"destination\"/> must hold count × " + dimension + " elements.</remarks>");
            writer.Line(EmbeddingKernelGenerator.Emitter.GeneratedCodeAttribute);
            writer.Open("private static void " + KernelName(variant.Name, group, dimension, index, width) + "(ref readonly " + element + " weight, int dimension, ref readonly " + index.CSharpName + " indices, nint count, ref " + element + " destination)");
            writer.Line("ref " + element + " target = ref destination;");
            writer.Open("for (nint i = 0; i < count; i++)");
            writer.Line("// Prefetch the row 4 KiB of rows ahead (KernelHints.Ahead): a hint, so no value changes.");
            writer.Open("if (Hints.IssuesPrefetches)");
            writer.Line("Hints.PrefetchRow(in Rows.Of(in weight, Rows.Index(in indices, Hints.Ahead<" + element + ">(i, count, " + dimension + ")), " + dimension + "), " + dimension + ");");
            writer.Close();
            writer.Line();
            writer.Line("ref " + element + " source = ref Rows.Of(in weight, Rows.Index(in indices, i), " + dimension + ");");
            EmitRow(writer, shape, width);
            writer.Line();
            writer.Line("target = ref Rows.Next(ref target, " + dimension + ");");
            writer.Close();
            writer.Close();
        }

        /// <summary>One row as straight-line copies: looped blocks, whole vectors, and one vector overlapping the last (never for the scalar width, one lane wide).</summary>
        private static void EmitRow(SourceWriter writer, KernelShape shape, Width width)
        {
            int lanes = shape.Lanes;
            string unit = width.Bits == 0 ? "column" : "vector";
            if (shape.Blocks > 0)
            {
                int blockColumns = KernelShape.BlockVectors * lanes;
                writer.Line("// Columns 0.." + (shape.RemainderStart - 1) + ": " + shape.Blocks + " blocks of " + KernelShape.BlockVectors + " " + unit + "s.");
                writer.Open("for (nuint block = 0; block < " + shape.RemainderStart + "; block += " + blockColumns + ")");
                for (int v = 0; v < KernelShape.BlockVectors; v++)
                {
                    writer.Line(Copy(width, v == 0 ? "block" : "block + " + (v * lanes)));
                }

                writer.Close();
            }

            if (shape.RemainderVectors > 0)
            {
                int end = shape.RemainderStart + shape.RemainderVectors * lanes - 1;
                writer.Line("// Columns " + shape.RemainderStart + ".." + end + ": " + shape.RemainderVectors + " whole " + unit + (shape.RemainderVectors == 1 ? "." : "s."));
                for (int v = 0; v < shape.RemainderVectors; v++)
                {
                    writer.Line(Copy(width, (shape.RemainderStart + v * lanes).ToString()));
                }
            }

            if (shape.TailColumns > 0)
            {
                int start = shape.Dimension - lanes;
                writer.Line("// Columns " + start + ".." + (shape.Dimension - 1) + ": one vector overlapping the last by " + (lanes - shape.TailColumns) + " columns; a copy writes the same bits twice.");
                writer.Line(Copy(width, start.ToString()));
            }
        }

        private static string Copy(Width width, string offset) =>
            "Row" + width.Suffix + ".Copy(ref source, ref target, " + offset + ");";

        private static string Describe(KernelShape shape, Width width)
        {
            string unit = width.Bits == 0 ? "scalar" : width.EnumName;
            string text = shape.IsStraightLine
                ? shape.FullVectors + " × " + unit + " per row"
                : shape.Blocks + " looped blocks of " + KernelShape.BlockVectors + " × " + unit + " + " + shape.RemainderVectors + " more per row";
            return shape.TailColumns > 0 ? text + " + 1 overlapping " + unit : text + ", no tail";
        }
    }
}
