using System.Collections.Generic;
using System.Linq;

namespace Embedding.Generators.Model
{
    /// <summary>
    /// A table element type as the generator names it: its <c>EmbeddingType</c> member, its bit in
    /// <c>EmbeddingTypes</c>, and the C# type its kernels use. Mirrors the runtime enums (a test
    /// compares the two).
    /// </summary>
    internal sealed record TableType(string EnumName, int Flag, string Description);

    /// <summary>
    /// The elements a kernel moves or computes with: for a gather, one group per element size (a copy
    /// does not care what the bits mean, so float16 and bfloat16 share the 16-bit kernels); for an
    /// arithmetic operation, one group per table type.
    /// </summary>
    internal sealed record ElementGroup(string KeyName, string CSharpName, int Bytes, string Description, IReadOnlyList<TableType> Types);

    internal static class TableTypes
    {
        public static readonly TableType Float32 = new TableType("Float32", 1, "float32");
        public static readonly TableType Float64 = new TableType("Float64", 2, "float64");
        public static readonly TableType Float16 = new TableType("Float16", 4, "float16");
        public static readonly TableType BFloat16 = new TableType("BFloat16", 8, "bfloat16");
        public static readonly TableType[] All = { Float32, Float64, Float16, BFloat16 };

        /// <summary>The gather's groups: 16-bit, 32-bit and 64-bit elements.</summary>
        public static readonly ElementGroup[] BySize =
        {
            new ElementGroup("16Bit", "ushort", 2, "16-bit elements (float16, bfloat16)", new[] { Float16, BFloat16 }),
            new ElementGroup("32Bit", "float", 4, "32-bit elements (float32)", new[] { Float32 }),
            new ElementGroup("64Bit", "double", 8, "64-bit elements (float64)", new[] { Float64 }),
        };

        /// <summary>The float32 table: the only type the arithmetic kernels are generated for so far.</summary>
        public static readonly ElementGroup F32 = new ElementGroup("F32", "float", 4, "f32 table", new[] { Float32 });
    }

    /// <summary>The table types a kernel set asks for, as the <c>EmbeddingTypes</c> flags written in the attribute.</summary>
    internal readonly record struct TableTypeSet(int Flags)
    {
        /// <summary>Without <c>Types =</c>: float32 only.</summary>
        public static readonly TableTypeSet Default = new TableTypeSet(TableTypes.Float32.Flag);

        public static readonly int AllFlags = TableTypes.All.Aggregate(0, (flags, type) => flags | type.Flag);

        public bool Contains(TableType type) => (Flags & type.Flag) != 0;

        /// <summary>The groups of <paramref name="groups"/> that hold at least one requested type.</summary>
        public IEnumerable<ElementGroup> Select(IEnumerable<ElementGroup> groups)
        {
            TableTypeSet self = this;
            return groups.Where(group => group.Types.Any(self.Contains));
        }

        /// <summary>The requested types of <paramref name="group"/>.</summary>
        public IEnumerable<TableType> Within(ElementGroup group)
        {
            TableTypeSet self = this;
            return group.Types.Where(self.Contains);
        }

        /// <summary>The C# expression of these flags, for the generated <c>Types</c> property (<c>None</c> for a set of quantized kernels only).</summary>
        public string Expression()
        {
            TableTypeSet self = this;
            IEnumerable<string> names = TableTypes.All.Where(self.Contains).Select(type => "global::Embedding.Native.EmbeddingTypes." + type.EnumName);
            return Flags == 0 ? "global::Embedding.Native.EmbeddingTypes.None" : string.Join(" | ", names);
        }
    }
}
