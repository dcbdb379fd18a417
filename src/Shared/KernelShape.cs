// Compiled into both Embedding.Generators (netstandard2.0) and Embedding.Native, so the generator
// and the runtime dispatcher cannot disagree about which kernels exist and how a row is covered.

namespace Embedding.Native
{
    /// <summary>
    /// How one row of <c>Dimension</c> elements is covered by vectors of <c>Lanes</c> elements:
    /// <c>FullVectors</c> whole vectors, then, when <c>Dimension</c> is not a multiple of
    /// <c>Lanes</c>, one last vector that overlaps the previous one and ends exactly at the row end.
    /// </summary>
    internal readonly struct KernelShape
    {
        /// <summary>
        /// Rows of at most this many vectors are copied by straight-line code: 16 × Vector512 is a
        /// 1024-float row and 16 loads in flight cover the memory latency of one row. Longer rows
        /// run a loop over blocks of <see cref="BlockVectors"/> vectors so code size stays bounded
        /// for dims such as 4096 (256 × Vector128 would otherwise be 256 statements per kernel).
        /// </summary>
        public const int MaxStraightLineVectors = 16;

        /// <summary>Vectors per loop iteration for rows longer than <see cref="MaxStraightLineVectors"/>.</summary>
        public const int BlockVectors = 8;

        /// <summary>The largest dimension the generator specialises; above it a request is a mistake.</summary>
        public const int MaxSpecialisedDimension = 1 << 16;

        public KernelShape(int dimension, int lanes)
        {
            Dimension = dimension;
            Lanes = lanes;
        }

        /// <summary>Elements per row.</summary>
        public int Dimension { get; }

        /// <summary>Elements per vector (1 for the scalar path).</summary>
        public int Lanes { get; }

        /// <summary>Whole vectors per row.</summary>
        public int FullVectors => Dimension / Lanes;

        /// <summary>Columns left after the whole vectors; covered by one overlapping vector.</summary>
        public int TailColumns => Dimension % Lanes;

        /// <summary>A vector width can serve a row only when the row holds at least one vector.</summary>
        public bool Fits => Dimension >= Lanes;

        /// <summary>True when the whole row is straight-line code (no column loop).</summary>
        public bool IsStraightLine => FullVectors <= MaxStraightLineVectors;

        /// <summary>For looped rows: the number of whole blocks of <see cref="BlockVectors"/> vectors.</summary>
        public int Blocks => IsStraightLine ? 0 : FullVectors / BlockVectors;

        /// <summary>Whole vectors after the looped blocks (all of them for straight-line rows).</summary>
        public int RemainderVectors => IsStraightLine ? FullVectors : FullVectors % BlockVectors;

        /// <summary>First column of the vectors after the looped blocks.</summary>
        public int RemainderStart => Blocks * BlockVectors * Lanes;

        /// <summary>
        /// The columns of a quantized row whose codes fill whole bytes: <paramref name="dimension"/> rounded down to a
        /// multiple of <paramref name="codesPerByte"/> (1, 2 or 4). The vector widths of a quantized bag cover these
        /// (a width fits when one vector does); the scalar width does the rest.
        /// </summary>
        public static int WholeByteColumns(int dimension, int codesPerByte) => dimension - dimension % codesPerByte;

        /// <summary>Lanes of a vector width for elements of <paramref name="elementBytes"/> bytes (floats by default); the scalar path has one lane.</summary>
        public static int LanesFor(int widthBits, int elementBytes = 4) => widthBits == 0 ? 1 : widthBits / (8 * elementBytes);
    }
}
