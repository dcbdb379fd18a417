using System.Collections.Generic;
using System.Linq;

namespace Embedding.Generators.Model
{
    /// <summary>
    /// A code width of row-wise quantized tables as the generator names it: its <c>QuantizedBitWidths</c> member
    /// and bit (the value is the width), its <c>KernelOperation</c>, the runtime's row struct (<c>QuantizedRow8</c> …)
    /// and the <c>IQuantizedCodes</c> member that widens its codes. Mirrors the runtime (a test compares the two).
    /// </summary>
    internal sealed record QuantizedWidth(string EnumName, int Bits, string Operation, string Description)
    {
        /// <summary>The flag in <c>QuantizedBitWidths</c>: the code width itself.</summary>
        public int Flag => Bits;

        /// <summary>Codes per byte: 1, 2 or 4.</summary>
        public int CodesPerByte => 8 / Bits;

        /// <summary>The runtime's row struct, e.g. <c>QuantizedRow4</c>.</summary>
        public string RowType => "QuantizedRow" + Bits;

        /// <summary>The <c>IQuantizedCodes</c> member that widens this width's codes, e.g. <c>Codes4</c>.</summary>
        public string CodesMember => "Codes" + Bits;

        /// <summary>The columns a vector width covers: the dimension rounded down to whole bytes of codes.</summary>
        public int VectorColumns(int dimension) => Embedding.Native.KernelShape.WholeByteColumns(dimension, CodesPerByte);
    }

    internal static class QuantizedWidths
    {
        public static readonly QuantizedWidth Eight = new QuantizedWidth("Eight", 8, "QuantizedBagByte", "8-bit rows");
        public static readonly QuantizedWidth Four = new QuantizedWidth("Four", 4, "QuantizedBag4Bit", "4-bit rows");
        public static readonly QuantizedWidth Two = new QuantizedWidth("Two", 2, "QuantizedBag2Bit", "2-bit rows");

        /// <summary>Widest first, the order of the <c>KernelOperation</c> members.</summary>
        public static readonly QuantizedWidth[] All = { Eight, Four, Two };
    }

    /// <summary>The quantized code widths a kernel set asks for, as the <c>QuantizedBitWidths</c> flags written in the attribute.</summary>
    internal readonly record struct QuantizedWidthSet(int Flags)
    {
        /// <summary>Without <c>Quantized =</c>: none.</summary>
        public static readonly QuantizedWidthSet None = new QuantizedWidthSet(0);

        public static readonly int AllFlags = QuantizedWidths.All.Aggregate(0, (flags, width) => flags | width.Flag);

        public bool IsEmpty => Flags == 0;

        public bool Contains(QuantizedWidth width) => (Flags & width.Flag) != 0;

        /// <summary>The requested widths, widest first.</summary>
        public IEnumerable<QuantizedWidth> Widths()
        {
            QuantizedWidthSet self = this;
            return QuantizedWidths.All.Where(self.Contains);
        }

        /// <summary>The C# expression of these flags, for the generated <c>Quantized</c> property: narrowest first, as the enum declares them.</summary>
        public string Expression() =>
            string.Join(" | ", Widths().Reverse().Select(width => "global::Embedding.Native.QuantizedBitWidths." + width.EnumName));
    }
}
