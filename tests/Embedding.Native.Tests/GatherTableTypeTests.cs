using System;
using System.Numerics;
using System.Runtime.InteropServices;
using Xunit;

namespace Embedding.Native.Tests;

/// <summary>
/// Gathers of float64, float16 and bfloat16 tables (float32 is <see cref="GatherKernelTests{TIndex}"/>):
/// every dimension that hits every tail at every width the process accelerates, the specialised
/// dimensions, the streaming path, and NaN payloads, each bit for bit against a plain row copy.
/// </summary>
public abstract class GatherTableTypeTests<TElement>
    where TElement : unmanaged
{
    /// <summary>Dims 1 … 2 × (widest vector of this element) + 1, and every specialised dim.</summary>
    public static TheoryData<int> Dims()
    {
        var data = new TheoryData<int>();
        int lanes = 512 / 8 / System.Runtime.CompilerServices.Unsafe.SizeOf<TElement>();
        for (int dim = 1; dim <= 2 * lanes + 1; dim++)
        {
            data.Add(dim);
        }

        foreach (int dim in TestData.SpecialisedDims)
        {
            if (dim > 2 * lanes + 1)
            {
                data.Add(dim);
            }
        }

        return data;
    }

    [Theory]
    [MemberData(nameof(Dims))]
    public void Gather_CopiesRowsBitForBitAtEveryWidth(int dim)
    {
        const int rows = 29;
        TElement[] table = Table(rows, dim, seed: dim);
        foreach (VectorWidth width in KernelDispatch.SupportedWidths)
        {
            Check<int>(table, dim, rows, 1 + dim % 19, width);
            Check<long>(table, dim, rows, 1 + dim % 19, width);
        }
    }

    [Fact]
    public void Gather_UsesSpecialisedKernelForEverySpecialisedDimension()
    {
        EmbeddingType type = TableElements.TypeOf<TElement>();
        foreach (int dim in TestData.SpecialisedDims)
        {
            foreach (VectorWidth width in KernelDispatch.SupportedWidths)
            {
                VectorWidth fitted = KernelDispatch.FitWidth(width, dim, TableElements.Size(type));
                Assert.NotNull(KernelDispatch.Specialised(new KernelKey(KernelOperation.Gather, type, EmbeddingIndexType.Int32, dim, fitted)));
            }
        }
    }

    [Theory]
    [MemberData(nameof(TestData.Widths), MemberType = typeof(TestData))]
    public void Gather_StreamsLargeOutputsWithTheSameBits(VectorWidth width)
    {
        // Rows of whole cache lines and 64 MiB of output: the streaming path where the CPU has it.
        int dim = 256 / System.Runtime.CompilerServices.Unsafe.SizeOf<TElement>() * 2;
        int count = (int)(StreamingGather.MinOutputBytes / (dim * System.Runtime.CompilerServices.Unsafe.SizeOf<TElement>())) + 3;
        const int rows = 500;
        TElement[] table = Table(rows, dim, seed: 3);
        Check<long>(table, dim, rows, count, width, threads: 2);
    }

    [Fact]
    public void Gather_ThrowsForOutOfRangeIndexAndWritesNothing()
    {
        TElement[] table = Table(4, 3, seed: 1);
        TElement[] output = new TElement[6];
        var error = Assert.Throws<ArgumentOutOfRangeException>(() => EmbeddingPrimitives.Embedding<TElement, int>([1, 4], table, 3, output, KernelDispatch.BestWidth));
        Assert.StartsWith("index 4 at position 1 is out of range", error.Message);
        Assert.All(output, value => Assert.Equal(default, value));
    }

    private static void Check<TIndex>(TElement[] table, int dim, int rows, int count, VectorWidth width, int threads = 1)
        where TIndex : unmanaged, IBinaryInteger<TIndex>
    {
        TIndex[] indices = TestData.Indices<TIndex>(count, rows, seed: dim + count);
        TElement[] expected = new TElement[count * dim];
        for (int i = 0; i < count; i++)
        {
            Array.Copy(table, int.CreateChecked(indices[i]) * dim, expected, i * dim, dim);
        }

        TElement[] actual = new TElement[count * dim + 5];
        MemoryMarshal.AsBytes(actual.AsSpan()).Fill(0xA5);
        EmbeddingPrimitives.Embedding<TElement, TIndex>(indices, table, dim, actual.AsSpan(0, count * dim), width, threads);
        Assert.True(MemoryMarshal.AsBytes(expected.AsSpan()).SequenceEqual(MemoryMarshal.AsBytes(actual.AsSpan(0, count * dim))), $"dim {dim}, width {width}, {typeof(TIndex).Name}");
        Assert.All(actual[(count * dim)..], value => Assert.True(MemoryMarshal.AsBytes([value]).IndexOfAnyExcept((byte)0xA5) < 0));
    }

    /// <summary>Random bit patterns, NaN payloads and negative zeros included: a gather must not care.</summary>
    private static TElement[] Table(int rows, int dim, int seed)
    {
        var table = new TElement[rows * dim];
        new Random(seed).NextBytes(MemoryMarshal.AsBytes(table.AsSpan()));
        return table;
    }
}

public sealed class GatherFloat64Tests : GatherTableTypeTests<double>;

public sealed class GatherFloat16Tests : GatherTableTypeTests<Half>;

public sealed class GatherBFloat16Tests : GatherTableTypeTests<BFloat16>;
