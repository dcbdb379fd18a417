using System;
using System.Linq;
using System.Numerics;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics.X86;
using Xunit;

namespace Embedding.Native.Tests;

/// <summary>
/// Every gather kernel (generated and generic) against the scalar reference, bit for bit, at every
/// width the process accelerates. Run by `make test` under three ISA settings, so each width is
/// also the natural best width once.
/// </summary>
public abstract class GatherKernelTests<TIndex>
    where TIndex : unmanaged, IBinaryInteger<TIndex>
{
    [Theory]
    [MemberData(nameof(TestData.Widths), MemberType = typeof(TestData))]
    public void Gather_MatchesReferenceForEveryDimension(VectorWidth width)
    {
        foreach (int dim in TestData.Dims)
        {
            const int rows = 37;
            int count = 1 + dim % 23;
            float[] table = TestData.Table(rows, dim, seed: dim);
            TIndex[] indices = TestData.Indices<TIndex>(count, rows, seed: dim + 1);
            float[] expected = new float[count * dim];
            Assert.Equal(-1, EmbeddingReference.Embedding<TIndex>(indices, table, dim, expected));

            float[] actual = TestData.Guarded(count * dim);
            EmbeddingPrimitives.Embedding<float, TIndex>(indices, table, dim, actual, width);

            TestAssert.BitEqual(expected, actual.AsSpan(0, expected.Length), $"dim {dim}, width {width}");
            Assert.All(actual[expected.Length..], value => Assert.Equal(BitConverter.SingleToInt32Bits(TestData.Sentinel), BitConverter.SingleToInt32Bits(value)));
        }
    }

    [Theory]
    [MemberData(nameof(TestData.Widths), MemberType = typeof(TestData))]
    public void Gather_UsesSpecialisedKernelForEverySpecialisedDimension(VectorWidth width)
    {
        foreach (int dim in TestData.SpecialisedDims)
        {
            VectorWidth fitted = KernelDispatch.FitWidth(width, dim);
            Delegate? kernel = KernelDispatch.Specialised(new KernelKey(KernelOperation.Gather, EmbeddingType.Float32, KernelDispatch.IndexTypeOf<TIndex>(), dim, fitted));
            Assert.True(kernel is not null, $"no specialised kernel for dim {dim} at {fitted}");
        }

        Delegate? generic = KernelDispatch.Specialised(new KernelKey(KernelOperation.Gather, EmbeddingType.Float32, KernelDispatch.IndexTypeOf<TIndex>(), 301, width));
        Assert.Null(generic);
    }

    [Theory]
    [MemberData(nameof(TestData.Widths), MemberType = typeof(TestData))]
    public void Gather_WritesOutputsLargerThanTheCache(VectorWidth width)
    {
        // 65 536 rows of 128 (specialised) or 136 (generic) floats: 32 and 34 MiB of output, beyond
        // the last-level cache, in one piece.
        foreach (int dim in new[] { 128, 136 })
        {
            const int rows = 1000, count = 65_536;
            float[] table = TestData.Table(rows, dim, seed: dim);
            TIndex[] indices = TestData.Indices<TIndex>(count, rows, seed: 7);
            float[] expected = new float[count * dim];
            EmbeddingReference.Embedding<TIndex>(indices, table, dim, expected);

            float[] actual = TestData.Guarded(count * dim);
            EmbeddingPrimitives.Embedding<float, TIndex>(indices, table, dim, actual, width, threads: 1);
            TestAssert.BitEqual(expected, actual.AsSpan(0, expected.Length), $"dim {dim}, width {width}, large output");
            Assert.All(actual[expected.Length..], value => Assert.Equal(BitConverter.SingleToInt32Bits(TestData.Sentinel), BitConverter.SingleToInt32Bits(value)));
        }
    }

    [Theory]
    [MemberData(nameof(TestData.Widths), MemberType = typeof(TestData))]
    public unsafe void Gather_StreamsLargeAlignedOutputsWithTheSameBits(VectorWidth width)
    {
        // 64 MiB and more of output, 64-byte aligned, rows of whole lines: the non-temporal path (x86,
        // vector widths), on one thread and split; one float further on, the same call must not stream.
        foreach (int dim in new[] { 64, 144 })
        {
            const int rows = 1000;
            int count = (int)(StreamingGather.MinOutputBytes / (dim * sizeof(float))) + 3;
            nint floats = (nint)count * dim;
            float[] table = TestData.Table(rows, dim, seed: dim);
            TIndex[] indices = TestData.Indices<TIndex>(count, rows, seed: 11);
            float[] expected = new float[floats];
            EmbeddingReference.Embedding<TIndex>(indices, table, dim, expected);
            float* buffer = (float*)NativeMemory.AlignedAlloc((nuint)(floats + 32) * sizeof(float), 64);
            try
            {
                foreach (int offset in new[] { 0, 1 })
                {
                    float* output = buffer + offset;
                    bool streams = Sse.IsSupported && width != VectorWidth.Scalar && offset == 0;
                    Assert.Equal(streams, StreamingGather.Applies(KernelDispatch.FitWidth(width, dim), dim * sizeof(float), count, output));
                    foreach (int threads in new[] { 1, 2 })
                    {
                        var span = new Span<float>(output, (int)floats + 16);
                        span.Fill(TestData.Sentinel);
                        EmbeddingPrimitives.Embedding<float, TIndex>(indices, table, dim, span[..(int)floats], width, threads);
                        string context = $"dim {dim}, width {width}, offset {offset}, {threads} threads, streaming {streams}";
                        TestAssert.BitEqual(expected, span[..(int)floats], context);
                        Assert.All(span[(int)floats..].ToArray(), value => Assert.Equal(BitConverter.SingleToInt32Bits(TestData.Sentinel), BitConverter.SingleToInt32Bits(value)));
                    }
                }
            }
            finally
            {
                NativeMemory.AlignedFree(buffer);
            }
        }
    }

    [Theory]
    [MemberData(nameof(TestData.Widths), MemberType = typeof(TestData))]
    public void Gather_PreservesNaNPayloadsAndNegativeZero(VectorWidth width)
    {
        foreach (int dim in new[] { 1, 5, 16, 300 })
        {
            float[] table = new float[3 * dim];
            for (int i = 0; i < table.Length; i++)
            {
                table[i] = (i % 4) switch
                {
                    0 => -0.0f,
                    1 => BitConverter.Int32BitsToSingle(0x7FC01234 + i),
                    2 => float.NegativeInfinity,
                    _ => float.Epsilon,
                };
            }

            TIndex[] indices = [TIndex.CreateTruncating(2), TIndex.Zero, TIndex.CreateTruncating(2)];
            float[] expected = new float[3 * dim];
            EmbeddingReference.Embedding<TIndex>(indices, table, dim, expected);
            float[] actual = new float[3 * dim];
            EmbeddingPrimitives.Embedding<float, TIndex>(indices, table, dim, actual, width);
            TestAssert.BitEqual(expected, actual, $"dim {dim}");
        }
    }

    [Theory]
    [MemberData(nameof(TestData.Widths), MemberType = typeof(TestData))]
    public void Gather_ThrowsForOutOfRangeIndexAndWritesNothing(VectorWidth width)
    {
        const int rows = 10, dim = 16;
        float[] table = TestData.Table(rows, dim, seed: 3);
        foreach (int badPosition in new[] { 0, 1, 7, 8, 15, 16, 40 })
        {
            foreach (long badValue in new long[] { rows, rows + 100, -1, long.MinValue })
            {
                if (typeof(TIndex) == typeof(int) && (badValue < int.MinValue || badValue > int.MaxValue))
                {
                    continue;
                }

                TIndex[] indices = TestData.Indices<TIndex>(41, rows, seed: badPosition);
                indices[badPosition] = TIndex.CreateTruncating(badValue);
                float[] destination = TestData.Guarded(0, guard: 41 * dim);

                var error = Assert.Throws<ArgumentOutOfRangeException>(() => EmbeddingPrimitives.Embedding<float, TIndex>(indices, table, dim, destination, width));
                Assert.Equal("indices", error.ParamName);
                Assert.Contains($"index {badValue} at position {badPosition}", error.Message);
                Assert.Contains("valid indices are 0 to 9", error.Message);
                Assert.All(destination, value => Assert.True(float.IsNaN(value)));
            }
        }
    }

    [Fact]
    public void Gather_AcceptsEmptyIndices()
    {
        float[] destination = TestData.Guarded(0);
        EmbeddingPrimitives.Embedding<float, TIndex>([], TestData.Table(4, 3, 1), 3, destination, KernelDispatch.BestWidth);
        Assert.All(destination, value => Assert.True(float.IsNaN(value)));
    }

    [Fact]
    public void Gather_ThrowsForBadShapes()
    {
        float[] table = TestData.Table(4, 3, 1);
        TIndex[] indices = [TIndex.One, TIndex.Zero];
        Assert.Throws<ArgumentOutOfRangeException>(() => EmbeddingPrimitives.Embedding<float, TIndex>(indices, table, 0, new float[6], VectorWidth.Scalar));
        Assert.Throws<ArgumentOutOfRangeException>(() => EmbeddingPrimitives.Embedding<float, TIndex>(indices, table, -3, new float[6], VectorWidth.Scalar));
        var ragged = Assert.Throws<ArgumentException>(() => EmbeddingPrimitives.Embedding<float, TIndex>(indices, table, 5, new float[10], VectorWidth.Scalar));
        Assert.Equal("weight", ragged.ParamName);
        var tooShort = Assert.Throws<ArgumentException>(() => EmbeddingPrimitives.Embedding<float, TIndex>(indices, table, 3, new float[5], VectorWidth.Scalar));
        Assert.Equal("destination", tooShort.ParamName);
    }

    [Fact]
    public void Gather_ThrowsWhenDestinationOverlapsAnInput()
    {
        float[] buffer = TestData.Table(8, 4, 2);
        TIndex[] indices = [TIndex.One, TIndex.Zero];
        var overlap = Assert.Throws<ArgumentException>(() =>
            EmbeddingPrimitives.Embedding<float, TIndex>(indices, buffer.AsSpan(0, 16), 4, buffer.AsSpan(12, 8), VectorWidth.Scalar));
        Assert.Equal("destination", overlap.ParamName);

        TIndex[] indexBuffer = new TIndex[64];
        Assert.Throws<ArgumentException>(() => EmbeddingPrimitives.Embedding<float, TIndex>(
            indexBuffer.AsSpan(0, 2), TestData.Table(4, 4, 1), 4, MemoryMarshal.Cast<TIndex, float>(indexBuffer.AsSpan())[1..], VectorWidth.Scalar));
    }

}

public sealed class GatherKernelTestsInt32 : GatherKernelTests<int>
{
}

public sealed class GatherKernelTestsInt64 : GatherKernelTests<long>
{
}
