using System.Collections.Generic;
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
        public override IEnumerable<ElementGroup> Groups(TableTypeSet types) => types.Contains(TableTypes.Float32) ? new[] { TableTypes.F32 } : new ElementGroup[0];

        protected override string DelegateType(ElementGroup group, IndexType index) =>
            "global::Embedding.Native.ScatterAddKernel<float, " + index.CSharpName + ">";

        protected override void EmitKernel(SourceWriter writer, KernelVariant variant, ElementGroup group, int dimension, IndexType index, Width width)
        {
            var shape = new KernelShape(dimension, width.Lanes);
            writer.Line("/// <summary>Scatter-add, f32 gradient, " + index.Description + " indices, dim " + dimension + ": " + Describe(shape, width) + ".</summary>");
            writer.Line("/// <remarks>No validation: every index must already be in [0, rows), every row named must have a positive count when <paramref name=\"counts\"/> is given, and <paramref name=\"destination\"/> must hold rows × " + dimension + " floats.</remarks>");
            writer.Line(EmbeddingKernelGenerator.Emitter.GeneratedCodeAttribute);
            writer.Open("private static void " + KernelName(variant.Name, group, dimension, index, width) + "(ref readonly float source, int dimension, ref readonly " + index.CSharpName + " indices, nint count, long paddingIndex, ref readonly int counts, ref float destination)");
            writer.Open("if (Rows.IsNull(in counts))");
            writer.Line("// Plain sums, acc = acc + g; positions in order, so duplicates accumulate as in torch.");
            EmitLoop(writer, shape, width, scaled: false);
            writer.Line();
            writer.Line("return;");
            writer.Close();
            writer.Line();
            writer.Line("// scale_grad_by_freq: acc = fma(g, fl(1/c[k]), acc); positions in order, so duplicates accumulate as in torch.");
            EmitLoop(writer, shape, width, scaled: true);
            writer.Close();
        }

        private static void EmitLoop(SourceWriter writer, KernelShape shape, Width width, bool scaled)
        {
            int dimension = shape.Dimension;
            writer.Open("for (nint i = 0; i < count; i++)");
            writer.Line("// Prefetch the destination row a few positions ahead (KernelHints.DistanceFor): a hint, so no value changes.");
            writer.Line(Hints + ".PrefetchRow(in Rows.Of(in destination, Rows.Index(in indices, " + Hints + ".Ahead(i, count, " + dimension + ")), " + dimension + "), " + dimension + ");");
            writer.Line("nint row = Rows.Index(in indices, i);");
            writer.Open("if (row == paddingIndex)");
            writer.Line("continue;");
            writer.Close();
            writer.Line();
            writer.Line("ref float gradient = ref Rows.Of(in source, i, " + dimension + ");");
            writer.Line("ref float target = ref Rows.Of(in destination, row, " + dimension + ");");
            if (scaled)
            {
                writer.Line("float scale = Rows.Reciprocal(in counts, row);");
            }

            if (width.Bits == 0)
            {
                writer.Line(scaled
                    ? "Rows.MultiplyAddScalar(ref gradient, scale, ref target, " + dimension + ");"
                    : "Rows.AddScalar(ref gradient, ref target, " + dimension + ");");
            }
            else
            {
                EmitVectorRow(writer, shape, width, scaled);
            }

            writer.Close();
        }

        private static void EmitVectorRow(SourceWriter writer, KernelShape shape, Width width, bool scaled)
        {
            int lanes = width.Lanes;
            if (shape.Blocks > 0)
            {
                int blockColumns = KernelShape.BlockVectors * lanes;
                writer.Line("// Columns 0.." + (shape.RemainderStart - 1) + ": " + shape.Blocks + " blocks of " + KernelShape.BlockVectors + " vectors.");
                writer.Open("for (nuint block = 0; block < " + shape.RemainderStart + "; block += " + blockColumns + ")");
                for (int v = 0; v < KernelShape.BlockVectors; v++)
                {
                    writer.Line(Update(width, scaled, v == 0 ? "block" : "block + " + (v * lanes)));
                }

                writer.Close();
            }

            if (shape.RemainderVectors > 0)
            {
                int end = shape.RemainderStart + shape.RemainderVectors * lanes - 1;
                writer.Line("// Columns " + shape.RemainderStart + ".." + end + ": " + shape.RemainderVectors + (shape.RemainderVectors == 1 ? " whole vector." : " whole vectors."));
                for (int v = 0; v < shape.RemainderVectors; v++)
                {
                    writer.Line(Update(width, scaled, (shape.RemainderStart + v * lanes).ToString()));
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
                    ? "Rows.MultiplyAddMasked" + width.Bits + "(ref gradient, scale, ref target, " + start + ", " + keep + ");"
                    : "Rows.AddMasked" + width.Bits + "(ref gradient, ref target, " + start + ", " + keep + ");");
            }
        }

        private static string Update(Width width, bool scaled, string offset) => scaled
            ? "Rows.MultiplyAdd" + width.Bits + "(ref gradient, scale, ref target, " + offset + ");"
            : "Rows.Add" + width.Bits + "(ref gradient, ref target, " + offset + ");";

        /// <summary>
        /// The row helpers the kernels of one file call. File-local and fully qualified inside, so
        /// a consumer type named <c>Unsafe</c>, <c>MathF</c>, <c>Vector512</c> or <c>Rows</c> cannot change
        /// what the kernels mean, while the kernels themselves stay short.
        /// </summary>
        public override void EmitRowHelpers(SourceWriter writer, ElementGroup group)
        {
            writer.Line();
            writer.Line("/// <summary>Row addressing and row updates for the kernels in this file.</summary>");
            writer.Open("file static class Rows");
            foreach (IndexType index in IndexTypes.All)
            {
                EmitIndexHelper(writer, index);
                writer.Line();
            }

            writer.Line("/// <summary>The first float of row <paramref name=\"row\"/> of a matrix with <paramref name=\"dimension\"/> columns.</summary>");
            writer.Line(Inline);
            writer.Line("public static ref float Of(ref readonly float first, nint row, int dimension) => ref " + Unsafe + ".Add(ref " + Unsafe + ".AsRef(in first), row * dimension);");
            writer.Line();
            writer.Line("/// <summary>True when no counts were passed: the unscaled sums.</summary>");
            writer.Line(Inline);
            writer.Line("public static bool IsNull(ref readonly int counts) => " + Unsafe + ".IsNullRef(in counts);");
            writer.Line();
            writer.Line("/// <summary>torch's frequency scale for <paramref name=\"row\"/>: 1/count in double, rounded to float once.</summary>");
            writer.Line(Inline);
            writer.Line("public static float Reciprocal(ref readonly int counts, nint row) => (float)(1.0 / " + Unsafe + ".Add(ref " + Unsafe + ".AsRef(in counts), row));");
            foreach (Width width in Width.All)
            {
                if (width.Bits == 0)
                {
                    continue;
                }

                string vector = width.VectorType;
                string floats = vector + "<float>";
                writer.Line();
                writer.Line("/// <summary>Adds one " + width.EnumName + " of the gradient into the target at column <paramref name=\"offset\"/>.</summary>");
                writer.Line(Inline);
                writer.Line("public static void Add" + width.Bits + "(ref float gradient, ref float target, nuint offset) =>");
                writer.Line("    " + vector + ".StoreUnsafe(" + vector + ".LoadUnsafe(ref target, offset) + " + vector + ".LoadUnsafe(ref gradient, offset), ref target, offset);");
                writer.Line();
                writer.Line("/// <summary>target = fma(gradient, scale, target) for one " + width.EnumName + " at column <paramref name=\"offset\"/>; one rounding on every ISA.</summary>");
                writer.Line(Inline);
                writer.Line("public static void MultiplyAdd" + width.Bits + "(ref float gradient, float scale, ref float target, nuint offset) =>");
                writer.Line("    " + vector + ".StoreUnsafe(" + vector + ".FusedMultiplyAdd(" + vector + ".LoadUnsafe(ref gradient, offset), " + vector + ".Create(scale), " + vector + ".LoadUnsafe(ref target, offset)), ref target, offset);");
                writer.Line();
                writer.Line("/// <summary>Add" + width.Bits + " for lanes <paramref name=\"keep\"/> and up; lanes below it are stored back as loaded.</summary>");
                writer.Line(Inline);
                writer.Open("public static void AddMasked" + width.Bits + "(ref float gradient, ref float target, nuint offset, int keep)");
                writer.Line(floats + " old = " + vector + ".LoadUnsafe(ref target, offset);");
                writer.Line(vector + ".StoreUnsafe(" + vector + ".ConditionalSelect(Fresh" + width.Bits + "(keep), old + " + vector + ".LoadUnsafe(ref gradient, offset), old), ref target, offset);");
                writer.Close();
                writer.Line();
                writer.Line("/// <summary>MultiplyAdd" + width.Bits + " for lanes <paramref name=\"keep\"/> and up; lanes below it are stored back as loaded.</summary>");
                writer.Line(Inline);
                writer.Open("public static void MultiplyAddMasked" + width.Bits + "(ref float gradient, float scale, ref float target, nuint offset, int keep)");
                writer.Line(floats + " old = " + vector + ".LoadUnsafe(ref target, offset);");
                writer.Line(floats + " sum = " + vector + ".FusedMultiplyAdd(" + vector + ".LoadUnsafe(ref gradient, offset), " + vector + ".Create(scale), old);");
                writer.Line(vector + ".StoreUnsafe(" + vector + ".ConditionalSelect(Fresh" + width.Bits + "(keep), sum, old), ref target, offset);");
                writer.Close();
                writer.Line();
                writer.Line("/// <summary>All-ones in lanes <paramref name=\"keep\"/> and up: the columns a masked tail updates.</summary>");
                writer.Line(Inline);
                writer.Line("private static " + floats + " Fresh" + width.Bits + "(int keep) =>");
                writer.Line("    " + vector + ".AsSingle(" + vector + ".GreaterThanOrEqual(" + vector + "<int>.Indices, " + vector + ".Create(keep)));");
            }

            writer.Line();
            writer.Line("/// <summary>Adds a row one float at a time: the path for CPUs without vector units.</summary>");
            writer.Open("public static void AddScalar(ref float gradient, ref float target, int dimension)");
            writer.Open("for (nint column = 0; column < dimension; column++)");
            writer.Line(Unsafe + ".Add(ref target, column) = " + Unsafe + ".Add(ref target, column) + " + Unsafe + ".Add(ref gradient, column);");
            writer.Close();
            writer.Close();
            writer.Line();
            writer.Line("/// <summary>target = fma(gradient, scale, target) one float at a time; exact FMA even where the CPU has none.</summary>");
            writer.Open("public static void MultiplyAddScalar(ref float gradient, float scale, ref float target, int dimension)");
            writer.Open("for (nint column = 0; column < dimension; column++)");
            writer.Line(Unsafe + ".Add(ref target, column) = global::System.MathF.FusedMultiplyAdd(" + Unsafe + ".Add(ref gradient, column), scale, " + Unsafe + ".Add(ref target, column));");
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
            return shape.TailColumns > 0 ? text + " + 1 masked " + width.EnumName + " tail" : text + ", no tail";
        }
    }
}
