using System;
using System.Globalization;
using System.Runtime.CompilerServices;

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

    /// <summary>A table element type: float32, float64, float16 or bfloat16.</summary>
    public static EmbeddingType TableType(int dtype, string name) => (EmbDtype)dtype switch
    {
        EmbDtype.Float32 => EmbeddingType.Float32,
        EmbDtype.Float64 => EmbeddingType.Float64,
        EmbDtype.Float16 => EmbeddingType.Float16,
        EmbDtype.BFloat16 => EmbeddingType.BFloat16,
        _ => throw new EmbException(EmbStatus.UnsupportedDtype, Text($"{name} must be EMB_DTYPE_FLOAT32, _FLOAT64, _FLOAT16 or _BFLOAT16 (1 to 4), not dtype {dtype}")),
    };

    /// <summary>Rejects every element type but float32 for a gradient or value buffer.</summary>
    public static void Float32(int dtype, string name)
    {
        if ((EmbDtype)dtype != EmbDtype.Float32)
        {
            throw new EmbException(EmbStatus.UnsupportedDtype, Text($"{name} must be EMB_DTYPE_FLOAT32 (1), not dtype {dtype}"));
        }
    }

    /// <summary>A row length the kernels can address: 0 … INT32_MAX elements.</summary>
    public static int Dimension(long embeddingDim)
    {
        NonNegative(embeddingDim, "embedding_dim");
        if (embeddingDim > int.MaxValue)
        {
            throw new EmbException(EmbStatus.SizeOverflow, Text($"embedding_dim {embeddingDim} exceeds the largest supported row of {int.MaxValue} elements"));
        }

        return (int)embeddingDim;
    }

    /// <summary>Rejects flag bits outside <paramref name="allowed"/>.</summary>
    public static void Flags(int flags, int allowed, string allowedNames)
    {
        if ((flags & ~allowed) != 0)
        {
            throw new EmbException(EmbStatus.InvalidArgument, Text($"flags 0x{flags:X} has bits this function does not take; allowed: {allowedNames}"));
        }
    }

    /// <summary>A backward padding index: a normalised row of the table or EMB_NO_PADDING.</summary>
    public static void PaddingRow(long paddingIndex, long rows)
    {
        if (!EmbeddingPrimitives.IsValidPaddingRow(paddingIndex, rows))
        {
            throw new EmbException(EmbStatus.IndexOutOfRange, EmbeddingPrimitives.PaddingRowOutOfRange(paddingIndex, rows));
        }
    }

    /// <summary>Tables and entry counts the pooled per-row scratch (frequency counts, coalesce slots) can serve.</summary>
    public static void Scratch(long rows, long entries)
    {
        if (rows > EmbeddingPrimitives.MaxScratchRows)
        {
            throw new EmbException(EmbStatus.NotSupported, EmbeddingPrimitives.ScratchTooLarge(rows));
        }

        if (entries > Array.MaxLength)
        {
            throw new EmbException(EmbStatus.NotSupported, Text($"{entries} entries exceed {Array.MaxLength}, the most one call can count or coalesce"));
        }
    }

    /// <summary>An output holding <paramref name="capacity"/> elements must hold <paramref name="needed"/>.</summary>
    /// <summary>Rejects an output holding fewer than <paramref name="needed"/> elements. <paramref name="what"/> is formatted only on failure, so a passing check allocates nothing.</summary>
    public static void Capacity(long capacity, long needed, string name, [InterpolatedStringHandlerArgument(nameof(capacity), nameof(needed))] ref CapacityMessage what)
    {
        if (capacity < needed)
        {
            throw new EmbException(EmbStatus.BufferTooSmall, Text($"{name} holds {capacity} elements; {what.ToStringAndClear()} need {needed}"));
        }
    }

    /// <summary>An interpolated string that is built only when the capacity check it belongs to fails.</summary>
    [InterpolatedStringHandler]
    internal ref struct CapacityMessage
    {
        private DefaultInterpolatedStringHandler _text;

        public CapacityMessage(int literalLength, int formattedCount, long capacity, long needed, out bool shouldAppend)
        {
            shouldAppend = capacity < needed;
            _text = shouldAppend ? new DefaultInterpolatedStringHandler(literalLength, formattedCount, CultureInfo.InvariantCulture) : default;
        }

        public void AppendLiteral(string value) => _text.AppendLiteral(value);

        public void AppendFormatted<T>(T value) => _text.AppendFormatted(value);

        public string ToStringAndClear() => _text.ToStringAndClear();
    }

    private static string Text(FormattableString text) => text.ToString(CultureInfo.InvariantCulture);
}
