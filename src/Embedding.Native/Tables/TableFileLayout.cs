using System.IO;
using System.Numerics;

namespace Embedding.Native;

/// <summary>
/// What a validated table-file header says: the element type, the shape <c>[Rows, Columns]</c> (C
/// order) and the byte at which the data starts. The header parsers guarantee that
/// <c>DataOffset + Rows · Columns · ElementSize</c> is the data's end inside the file and fits in a
/// <see cref="long"/>, and that <c>DataOffset</c> is a multiple of the element size.
/// </summary>
internal readonly record struct TableFileLayout(TableElementType ElementType, long Rows, long Columns, long DataOffset)
{
    /// <summary>Bytes per element of <paramref name="type"/>.</summary>
    public static int ElementSize(TableElementType type) => type switch
    {
        TableElementType.Float64 => sizeof(double),
        TableElementType.Float32 => sizeof(float),
        TableElementType.Float16 or TableElementType.BFloat16 => sizeof(ushort),
        _ => sizeof(byte),
    };

    /// <summary>The lower-case name both file formats' Python readers use, for messages.</summary>
    public static string Name(TableElementType type) => type switch
    {
        TableElementType.Float32 => "float32",
        TableElementType.Float64 => "float64",
        TableElementType.Float16 => "float16",
        TableElementType.BFloat16 => "bfloat16",
        _ => "uint8",
    };

    /// <summary>
    /// The layout of a 2-D table of <paramref name="type"/> whose data starts at <paramref name="dataOffset"/>,
    /// once its shape is known to be non-negative integers; refuses a shape whose dimensions or byte
    /// size do not fit in a <see cref="long"/> (a file could not hold it).
    /// </summary>
    public static TableFileLayout Create(TableElementType type, BigInteger rows, BigInteger columns, long dataOffset, string path, string shapeText)
    {
        BigInteger bytes = rows * columns * ElementSize(type);
        if (rows > long.MaxValue || columns > long.MaxValue || dataOffset + bytes > long.MaxValue)
        {
            throw Invalid(path, $"the shape {shapeText} of {Name(type)} is too large: its size overflows a 64-bit byte count");
        }

        return new TableFileLayout(type, (long)rows, (long)columns, dataOffset);
    }

    /// <summary>The exception for a file that is not a valid table: the path, then the problem.</summary>
    public static InvalidDataException Invalid(string path, string problem) => new($"'{path}': {problem}");
}
