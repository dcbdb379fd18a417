using System.Collections.Generic;
using Embedding.Generators.Helpers;
using Embedding.Native;

namespace Embedding.Generators.Emitters
{
    /// <summary>
    /// Emits the gather (forward) kernels of one dimension: for each index type and each vector
    /// width that fits, a loop over indices whose body copies one row with straight-line vector
    /// loads and stores. The bodies differ only in the vector type, so widths can be diffed.
    /// </summary>
    internal static class GatherEmitter
    {
        public static string KernelName(int dimension, IndexType index, Width width) =>
            "Gather_F32_" + index.KeyName + "_D" + dimension + "_" + width.KeyName;

        /// <summary>The dimension → kernel switch for one index type.</summary>
        public static void EmitTable(SourceWriter writer, IEnumerable<int> dimensions, IndexType index)
        {
            writer.Line("/// <inheritdoc/>");
            writer.Line("public override global::Embedding.Native.GatherKernel<" + index.CSharpName + ">? GetGather" + index.TableSuffix + "(int embeddingDim, global::Embedding.Native.VectorWidth width) => (embeddingDim, width) switch");
            writer.Line("{");
            foreach (int dimension in dimensions)
            {
                foreach (Width width in Width.For(dimension))
                {
                    writer.Line("    (" + dimension + ", global::Embedding.Native.VectorWidth." + width.EnumName + ") => " + KernelName(dimension, index, width) + ",");
                }
            }

            writer.Line("    _ => null,");
            writer.Line("};");
        }

        public static void EmitKernels(SourceWriter writer, int dimension)
        {
            bool first = true;
            foreach (IndexType index in IndexTypes.All)
            {
                foreach (Width width in Width.For(dimension))
                {
                    if (!first)
                    {
                        writer.Line();
                    }

                    first = false;
                    EmitKernel(writer, dimension, index, width);
                }
            }
        }

        private static void EmitKernel(SourceWriter writer, int dimension, IndexType index, Width width)
        {
            var shape = new KernelShape(dimension, width.Lanes);
            writer.Line("/// <summary>Gather, f32 table, " + index.Description + " indices, dim " + dimension + ": " + Describe(shape, width) + ".</summary>");
            writer.Line("/// <remarks>No validation: every index must already be in [0, rows) and <paramref name=\"destination\"/> must hold count × " + dimension + " floats.</remarks>");
            writer.Line(EmbeddingKernelGenerator.Emitter.GeneratedCodeAttribute);
            writer.Open("private static void " + KernelName(dimension, index, width) + "(ref readonly float weight, ref readonly " + index.CSharpName + " indices, nint count, ref float destination)");
            writer.Line("ref float table = ref global::System.Runtime.CompilerServices.Unsafe.AsRef(in weight);");
            writer.Line("ref " + index.CSharpName + " index = ref global::System.Runtime.CompilerServices.Unsafe.AsRef(in indices);");
            writer.Line("ref float target = ref destination;");
            writer.Open("for (nint i = 0; i < count; i++)");
            writer.Line("ref float source = ref global::System.Runtime.CompilerServices.Unsafe.Add(ref table, (nint)global::System.Runtime.CompilerServices.Unsafe.Add(ref index, i) * " + dimension + ");");
            if (width.Bits == 0)
            {
                writer.Open("for (nint column = 0; column < " + dimension + "; column++)");
                writer.Line("global::System.Runtime.CompilerServices.Unsafe.Add(ref target, column) = global::System.Runtime.CompilerServices.Unsafe.Add(ref source, column);");
                writer.Close();
            }
            else
            {
                EmitVectorRow(writer, shape, width);
            }

            writer.Line();
            writer.Line("target = ref global::System.Runtime.CompilerServices.Unsafe.Add(ref target, " + dimension + ");");
            writer.Close();
            writer.Close();
        }

        private static void EmitVectorRow(SourceWriter writer, KernelShape shape, Width width)
        {
            int lanes = width.Lanes;
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
            width.VectorType + ".StoreUnsafe(" + width.VectorType + ".LoadUnsafe(ref source, " + offset + "), ref target, " + offset + ");";

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
