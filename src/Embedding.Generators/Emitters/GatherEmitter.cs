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

        public override IEnumerable<ElementGroup> Groups(TableTypeSet types) => types.Select(TableTypes.BySize);

        protected override string DelegateType(ElementGroup group, IndexType index) =>
            "global::Embedding.Native.GatherKernel<" + group.CSharpName + ", " + index.CSharpName + ">";

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
            writer.Line(Hints + ".PrefetchRow(in Rows.Of(in weight, Rows.Index(in indices, " + Hints + ".Ahead<" + element + ">(i, count, " + dimension + ")), " + dimension + "), " + dimension + ");");
            writer.Line("ref " + element + " source = ref Rows.Of(in weight, Rows.Index(in indices, i), " + dimension + ");");
            if (width.Bits == 0)
            {
                writer.Line("Rows.CopyScalar(ref source, ref target, " + dimension + ");");
            }
            else
            {
                EmitVectorRow(writer, shape, width, group.Bytes);
            }

            writer.Line();
            writer.Line("target = ref Rows.Next(ref target, " + dimension + ");");
            writer.Close();
            writer.Close();
        }

        private static void EmitVectorRow(SourceWriter writer, KernelShape shape, Width width, int bytes)
        {
            int lanes = width.LanesOf(bytes);
            if (shape.Blocks > 0)
            {
                int blockColumns = KernelShape.BlockVectors * lanes;
                writer.Line("// Columns 0.." + (shape.RemainderStart - 1) + ": " + shape.Blocks + " blocks of " + KernelShape.BlockVectors + " vectors.");
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
                writer.Line("// Columns " + shape.RemainderStart + ".." + end + ": " + shape.RemainderVectors + (shape.RemainderVectors == 1 ? " whole vector." : " whole vectors."));
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
            "Rows.Copy" + width.Bits + "(ref source, ref target, " + offset + ");";

        /// <summary>
        /// The row helpers the kernels of one file call. File-local and fully qualified inside, so
        /// a consumer type named <c>Unsafe</c>, <c>Vector512</c> or <c>Rows</c> cannot change what
        /// the kernels mean, while the kernels themselves stay short.
        /// </summary>
        public override void EmitRowHelpers(SourceWriter writer, ElementGroup group)
        {
            string element = group.CSharpName;
            writer.Line();
            writer.Line("/// <summary>Row addressing and row copies for the kernels in this file.</summary>");
            writer.Open("file static class Rows");
            foreach (IndexType index in IndexTypes.All)
            {
                EmitIndexHelper(writer, index);
                writer.Line();
            }

            writer.Line("/// <summary>The first element of row <paramref name=\"row\"/> of a table with <paramref name=\"dimension\"/> columns.</summary>");
            writer.Line(Inline);
            writer.Line("public static ref " + element + " Of(ref readonly " + element + " weight, nint row, int dimension) => ref " + Unsafe + ".Add(ref " + Unsafe + ".AsRef(in weight), row * dimension);");
            writer.Line();
            writer.Line("/// <summary>The first element of the next output row.</summary>");
            writer.Line(Inline);
            writer.Line("public static ref " + element + " Next(ref " + element + " target, int dimension) => ref " + Unsafe + ".Add(ref target, dimension);");
            foreach (Width width in Width.All)
            {
                if (width.Bits == 0)
                {
                    continue;
                }

                writer.Line();
                writer.Line("/// <summary>Copies one " + width.EnumName + " at column <paramref name=\"offset\"/>.</summary>");
                writer.Line(Inline);
                writer.Line("public static void Copy" + width.Bits + "(ref " + element + " source, ref " + element + " target, nuint offset) =>");
                writer.Line("    " + width.VectorType + ".StoreUnsafe(" + width.VectorType + ".LoadUnsafe(ref source, offset), ref target, offset);");
            }

            writer.Line();
            writer.Line("/// <summary>Copies a row one element at a time: the path for CPUs without vector units.</summary>");
            writer.Open("public static void CopyScalar(ref " + element + " source, ref " + element + " target, int dimension)");
            writer.Open("for (nint column = 0; column < dimension; column++)");
            writer.Line(Unsafe + ".Add(ref target, column) = " + Unsafe + ".Add(ref source, column);");
            writer.Close();
            writer.Close();
            writer.Close();
        }

        private static string Describe(KernelShape shape, Width width)
        {
            if (width.Bits == 0)
            {
                return "scalar column loop";
            }

            string text = shape.IsStraightLine
                ? shape.FullVectors + " × " + width.EnumName + " per row"
                : shape.Blocks + " looped blocks of " + KernelShape.BlockVectors + " × " + width.EnumName + " + " + shape.RemainderVectors + " more per row";
            return shape.TailColumns > 0 ? text + " + 1 overlapping " + width.EnumName : text + ", no tail";
        }
    }
}
