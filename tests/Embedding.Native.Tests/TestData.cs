using System;
using System.Collections.Generic;
using System.Linq;
using System.Numerics;

namespace Embedding.Native.Tests;

/// <summary>Dimensions, widths and inputs shared by the kernel tests. Seeds are fixed.</summary>
internal static class TestData
{
    /// <summary>The library's specialised dimensions.</summary>
    public static readonly int[] SpecialisedDims = [8, 16, 32, 64, 96, 128, 256, 300, 384, 512, 768, 1024, 1536, 2048, 4096];

    /// <summary>
    /// Every dimension from 1 to 300 (every tail length of every width, several straight-line and
    /// looped row shapes), FBGEMM-style odd sizes, every specialised dimension and large ones
    /// around the looped-block boundaries.
    /// </summary>
    public static readonly int[] Dims = Enumerable.Range(1, 300)
        .Concat([385, 511, 513, 767, 769, 1000, 1023, 1025, 1537, 2047, 2049, 4095, 4097])
        .Concat(SpecialisedDims)
        .Distinct().Order().ToArray();

    /// <summary>Each width the running process accelerates, for tests that force every one.</summary>
    public static IEnumerable<object[]> Widths() => KernelDispatch.SupportedWidths.Select(width => new object[] { width });

    /// <summary>A table whose every float is distinct, so a wrong row or column cannot match by accident.</summary>
    public static float[] Table(int rows, int dim, int seed)
    {
        var random = new Random(seed);
        var table = new float[rows * dim];
        for (int i = 0; i < table.Length; i++)
        {
            table[i] = i + (float)random.NextDouble() * 0.5f;
        }

        return table;
    }

    /// <summary>Random indices with duplicates and both boundary rows (0 and rows-1) included.</summary>
    public static TIndex[] Indices<TIndex>(int count, int rows, int seed)
        where TIndex : IBinaryInteger<TIndex>
    {
        var random = new Random(seed);
        var indices = new TIndex[count];
        for (int i = 0; i < count; i++)
        {
            indices[i] = TIndex.CreateTruncating(random.Next(rows));
        }

        if (count >= 3)
        {
            indices[0] = TIndex.Zero;
            indices[count - 1] = TIndex.CreateTruncating(rows - 1);
            indices[count / 2] = indices[0];
        }

        return indices;
    }

    /// <summary>A destination of <paramref name="length"/> floats followed by <paramref name="guard"/> sentinel floats.</summary>
    public static float[] Guarded(int length, int guard = 17)
    {
        var buffer = new float[length + guard];
        buffer.AsSpan().Fill(Sentinel);
        return buffer;
    }

    /// <summary>A signalling-NaN bit pattern no kernel produces from the tables above.</summary>
    public static readonly float Sentinel = BitConverter.Int32BitsToSingle(unchecked((int)0xFFA5A5A5));
}
