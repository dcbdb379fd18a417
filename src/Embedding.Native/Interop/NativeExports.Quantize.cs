using System;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace Embedding.Native.Interop;

/// <summary>C-ABI exports for packing and unpacking row-wise quantized tables. Shims only: check, call the core, map failures.</summary>
internal static unsafe partial class NativeExports
{
    [UnmanagedCallersOnly(EntryPoint = "emb_quantized_row_bytes")]
    public static int QuantizedRowBytes(int bitWidth, long embeddingDim, long* rowBytes)
    {
        try
        {
            QuantizedRowLayout layout = CheckQuantizedLayout(bitWidth, embeddingDim);
            AbiChecks.Pointer(rowBytes, 1, "row_bytes");
            *rowBytes = layout.RowBytes;
            return (int)EmbStatus.Ok;
        }
        catch (Exception exception)
        {
            return Fail(exception);
        }
    }

    [UnmanagedCallersOnly(EntryPoint = "emb_quantize")]
    public static int Quantize(
        void* weight, int weightDtype, long numEmbeddings, long embeddingDim, int bitWidth,
        void* packed, long packedCapacity)
    {
        try
        {
            bool half = CheckQuantizeCall(weight, weightDtype, numEmbeddings, embeddingDim, bitWidth, packed, packedCapacity, out QuantizedRowLayout layout);
            if (half)
            {
                EmbeddingPrimitives.QuantizeRows(in Unsafe.AsRef<Half>(weight), numEmbeddings, layout.Dimension, layout.Bits, ref Unsafe.AsRef<byte>(packed));
            }
            else
            {
                EmbeddingPrimitives.QuantizeRows(in Unsafe.AsRef<float>(weight), numEmbeddings, layout.Dimension, layout.Bits, ref Unsafe.AsRef<byte>(packed));
            }

            return (int)EmbStatus.Ok;
        }
        catch (Exception exception)
        {
            return Fail(exception);
        }
    }

    [UnmanagedCallersOnly(EntryPoint = "emb_quantize_optimized")]
    public static int QuantizeOptimized(
        void* weight, int weightDtype, long numEmbeddings, long embeddingDim, int bitWidth,
        long numBins, double ratio, void* packed, long packedCapacity)
    {
        try
        {
            bool half = CheckQuantizeCall(weight, weightDtype, numEmbeddings, embeddingDim, bitWidth, packed, packedCapacity, out QuantizedRowLayout layout);
            if (layout.Bits == QuantizedBits.Eight)
            {
                throw new EmbException(EmbStatus.InvalidArgument, $"bit_width is 8; {EmbeddingPrimitives.OptimizedBitsMessage}");
            }

            if (numBins is < 1 or > int.MaxValue)
            {
                throw new EmbException(EmbStatus.InvalidArgument, $"num_bins is {numBins}; it must be between 1 and {int.MaxValue}");
            }

            if (!EmbeddingPrimitives.IsOptimizedRatio(ratio))
            {
                throw new EmbException(EmbStatus.InvalidArgument, $"ratio is {ratio.ToString(System.Globalization.CultureInfo.InvariantCulture)}; {EmbeddingPrimitives.OptimizedRatioMessage}");
            }

            if (half)
            {
                EmbeddingPrimitives.QuantizeRowsOptimized(in Unsafe.AsRef<Half>(weight), numEmbeddings, layout.Dimension, layout.Bits, (int)numBins, ratio, ref Unsafe.AsRef<byte>(packed));
            }
            else
            {
                EmbeddingPrimitives.QuantizeRowsOptimized(in Unsafe.AsRef<float>(weight), numEmbeddings, layout.Dimension, layout.Bits, (int)numBins, ratio, ref Unsafe.AsRef<byte>(packed));
            }

            return (int)EmbStatus.Ok;
        }
        catch (Exception exception)
        {
            return Fail(exception);
        }
    }

    [UnmanagedCallersOnly(EntryPoint = "emb_dequantize")]
    public static int Dequantize(
        void* packed, long numEmbeddings, long embeddingDim, int bitWidth,
        float* output, long outputCapacity)
    {
        try
        {
            AbiChecks.NonNegative(numEmbeddings, "num_embeddings");
            QuantizedRowLayout layout = CheckQuantizedLayout(bitWidth, embeddingDim);
            AbiChecks.NonNegative(outputCapacity, "out_capacity");
            long packedBytes = PackedBytes(numEmbeddings, layout);
            long outputElements = AbiChecks.Elements(numEmbeddings, embeddingDim, "out");
            AbiChecks.Pointer(packed, packedBytes, "packed");
            AbiChecks.Pointer(output, outputElements, "out");
            AbiChecks.Capacity(outputCapacity, outputElements, "out", $"{numEmbeddings} rows × {embeddingDim} columns");
            AbiChecks.Disjoint(output, outputElements * sizeof(float), packed, packedBytes, "out", "packed");

            EmbeddingPrimitives.DequantizeRows(in Unsafe.AsRef<byte>(packed), numEmbeddings, layout.Dimension, layout.Bits, ref Unsafe.AsRef<float>(output));
            return (int)EmbStatus.Ok;
        }
        catch (Exception exception)
        {
            return Fail(exception);
        }
    }

    /// <summary>The layout of a <paramref name="bitWidth"/>-bit row of <paramref name="embeddingDim"/> columns, rejecting other widths and dimensions below 1.</summary>
    private static QuantizedRowLayout CheckQuantizedLayout(int bitWidth, long embeddingDim)
    {
        if (bitWidth is not (2 or 4 or 8))
        {
            throw new EmbException(EmbStatus.InvalidArgument, $"bit_width is {bitWidth}; quantized tables have 2-, 4- or 8-bit codes");
        }

        int dimension = AbiChecks.Dimension(embeddingDim);
        if (dimension == 0)
        {
            throw new EmbException(EmbStatus.InvalidArgument, "embedding_dim is 0; a quantized row needs at least one column (its scale and bias come from its elements)");
        }

        return new QuantizedRowLayout((QuantizedBits)bitWidth, dimension);
    }

    /// <summary>The bytes of <paramref name="rows"/> packed rows, rejecting a row or a table too large to address.</summary>
    private static long PackedBytes(long rows, QuantizedRowLayout layout)
    {
        if (layout.RowBytes > int.MaxValue)
        {
            throw new EmbException(EmbStatus.SizeOverflow, $"a packed row of {layout.RowBytes} bytes exceeds the largest supported row of {int.MaxValue} bytes");
        }

        if (rows > long.MaxValue / layout.RowBytes)
        {
            throw new EmbException(EmbStatus.SizeOverflow, $"packed would hold {rows} rows × {layout.RowBytes} bytes, more than memory can address");
        }

        return rows * layout.RowBytes;
    }

    /// <summary>The checks emb_quantize and emb_quantize_optimized share; returns whether the weight is float16.</summary>
    private static bool CheckQuantizeCall(void* weight, int weightDtype, long numEmbeddings, long embeddingDim, int bitWidth, void* packed, long packedCapacity, out QuantizedRowLayout layout)
    {
        bool half = (EmbDtype)weightDtype switch
        {
            EmbDtype.Float32 => false,
            EmbDtype.Float16 => true,
            _ => throw new EmbException(EmbStatus.UnsupportedDtype, $"weight_dtype must be EMB_DTYPE_FLOAT32 or EMB_DTYPE_FLOAT16 (1 or 3), not dtype {weightDtype}"),
        };
        AbiChecks.NonNegative(numEmbeddings, "num_embeddings");
        layout = CheckQuantizedLayout(bitWidth, embeddingDim);
        AbiChecks.NonNegative(packedCapacity, "packed_capacity");
        long weightElements = AbiChecks.Elements(numEmbeddings, embeddingDim, "weight");
        long packedBytes = PackedBytes(numEmbeddings, layout);
        AbiChecks.Pointer(weight, weightElements, "weight");
        AbiChecks.Pointer(packed, packedBytes, "packed");
        if (packedCapacity < packedBytes)
        {
            throw new EmbException(EmbStatus.BufferTooSmall, $"packed holds {packedCapacity} bytes; {numEmbeddings} rows of {layout.RowBytes} bytes ({bitWidth}-bit, dimension {embeddingDim}) need {packedBytes}");
        }

        AbiChecks.Disjoint(packed, packedBytes, weight, weightElements * (half ? 2 : sizeof(float)), "packed", "weight");
        return half;
    }
}
