using System;
using System.Globalization;

namespace Embedding.Native.Interop;

/// <summary>
/// Argument checks every export runs before touching memory. Each throws an
/// <see cref="EmbException"/> whose status and message the export's catch turns into its result.
/// </summary>
internal static unsafe class AbiChecks
{
    /// <summary>Largest element count whose byte size (8-byte elements) still fits in a signed address.</summary>
    private const long MaxElements = long.MaxValue / sizeof(long);

    public static void NonNegative(long value, string name)
    {
        if (value < 0)
        {
            throw new EmbException(EmbStatus.InvalidArgument, Text($"{name} is {value}; it must not be negative"));
        }
    }

    /// <summary>The element count of a <c>[rows, columns]</c> buffer, rejecting products that overflow.</summary>
    public static long Elements(long rows, long columns, string name)
    {
        if (columns != 0 && rows > MaxElements / columns)
        {
            throw new EmbException(EmbStatus.SizeOverflow, Text($"{name} would hold {rows} × {columns} elements, more than memory can address"));
        }

        return rows * columns;
    }

    /// <summary>A buffer may be NULL only when it holds no elements.</summary>
    public static void Pointer(void* pointer, long elements, string name)
    {
        if (pointer is null && elements != 0)
        {
            throw new EmbException(EmbStatus.NullPointer, Text($"{name} is NULL but must hold {elements} elements"));
        }
    }

    /// <summary>Rejects an output whose bytes overlap an input's bytes.</summary>
    public static void Disjoint(void* output, long outputBytes, void* input, long inputBytes, string outputName, string inputName)
    {
        if (outputBytes == 0 || inputBytes == 0)
        {
            return;
        }

        nuint outStart = (nuint)output, inStart = (nuint)input;
        if (outStart < inStart + (nuint)inputBytes && inStart < outStart + (nuint)outputBytes)
        {
            throw new EmbException(EmbStatus.InvalidArgument, $"{outputName} overlaps {inputName}; the output must be a separate buffer");
        }
    }

    /// <summary>The size in bytes of an index element type, rejecting anything but int32 and int64.</summary>
    public static int IndexSize(int dtype, string name) => (EmbDtype)dtype switch
    {
        EmbDtype.Int32 => sizeof(int),
        EmbDtype.Int64 => sizeof(long),
        _ => throw new EmbException(EmbStatus.UnsupportedDtype, Text($"{name} must be EMB_DTYPE_INT32 or EMB_DTYPE_INT64, not dtype {dtype}")),
    };

    private static string Text(FormattableString text) => text.ToString(CultureInfo.InvariantCulture);
}
