using System;
using System.Linq;
using System.Numerics;
using System.Runtime.CompilerServices;
using Xunit;

namespace Embedding.Native.Tests;

/// <summary>
/// The library's generated quantized bags (<c>DefaultQuantizedKernels</c>): dispatch finds them for every default
/// dimension, code width, index type and width the process accelerates, and they give the reference's bits, called
/// directly and through the public API, for every variant (weighted, mean, padding, pruned).
/// </summary>
public abstract class QuantizedKernelDispatchTests<TIndex>
    where TIndex : unmanaged, IBinaryInteger<TIndex>
{
    /// <summary>The dimensions <c>DefaultQuantizedKernels</c> specialises.</summary>
    public static readonly int[] DefaultDims = [16, 32, 64, 128, 256];

    private const int Rows = 13;

    public static TheoryData<VectorWidth, QuantizedBits, int> Cases()
    {
        var data = new TheoryData<VectorWidth, QuantizedBits, int>();
        foreach (VectorWidth width in KernelDispatch.SupportedWidths)
        {
            foreach (QuantizedBits bits in QuantizedTables.AllBits)
            {
                foreach (int dim in DefaultDims)
                {
                    data.Add(width, bits, dim);
                }
            }
        }

        return data;
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void Dispatch_FindsTheGeneratedKernelForDefaultDimensions(VectorWidth width, QuantizedBits bits, int dim)
    {
        KernelKey key = Key(bits, dim, width);

        Delegate? kernel = KernelDispatch.Specialised(key);

        Assert.NotNull(kernel);
        Assert.IsType<QuantizedBagKernel<TIndex>>(kernel);
        Assert.Equal(typeof(DefaultQuantizedKernels), kernel.Method.DeclaringType);
        string index = typeof(TIndex) == typeof(int) ? "I32" : "I64";
        string suffix = width == VectorWidth.Scalar ? "Scalar" : "V" + (int)width;
        Assert.Equal($"{key.Operation}_F32_{index}_D{dim}_{suffix}", kernel.Method.Name);
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void GeneratedKernel_MatchesReferenceForEveryVariant(VectorWidth width, QuantizedBits bits, int dim)
    {
        var kernel = (QuantizedBagKernel<TIndex>)KernelDispatch.Specialised(Key(bits, dim, width))!;
        var layout = new QuantizedRowLayout(bits, dim);
        int seed = dim * 8 + (int)bits + (int)width;
        byte[] packed = QuantizedTables.Table(bits, dim, Rows, seed);
        TIndex[] indices = TestData.Indices<TIndex>(40, Rows, seed);
        indices[5] = indices[6] = TIndex.CreateTruncating(3);
        long[] wide = indices.Select(long.CreateTruncating).ToArray();
        long[] starts = [0, 0, 1, 4, 4, 12, 12, 33, indices.Length];
        int bags = starts.Length - 1;
        float[] weights = QuantizedTables.Weights(indices.Length, seed);
        int[] mapping = QuantizedTables.Mapping(Rows, Rows, seed);
        foreach ((bool weighted, bool mean, bool pruned, long padding) in new[]
        {
            (false, false, false, -1L), (true, false, false, -1L), (false, true, false, -1L), (false, false, false, 3L),
            (false, false, true, -1L), (true, false, true, 3L), (false, true, true, 3L),
        })
        {
            string context = $"{(int)bits}-bit dim {dim}, {width}, {typeof(TIndex).Name}, weighted {weighted}, mean {mean}, pruned {pruned}, padding {padding}";
            float[] expected = new float[bags * dim];
            QuantizedBagReference.EmbeddingBag(wide, starts, packed, layout, mean, expected, weighted ? weights : [], padding, pruned ? mapping : []);

            // The kernel itself.
            float[] direct = TestData.Guarded(expected.Length);
            kernel(in packed[0], dim, in indices[0], in starts[0], bags, padding,
                in pruned ? ref mapping[0] : ref Unsafe.NullRef<int>(), in weighted ? ref weights[0] : ref Unsafe.NullRef<float>(), mean, ref direct[0]);
            TestAssert.BitEqual(expected, direct.AsSpan(0, expected.Length), context + ", kernel");
            AssertSentinels(direct.AsSpan(expected.Length), context);

            // The public API at this width (validation, dispatch, then the same kernel).
            float[] api = TestData.Guarded(expected.Length);
            EmbeddingPrimitives.QuantizedEmbeddingBag<TIndex, long>(
                indices, starts, packed, layout, mean ? EmbeddingBagMode.Mean : EmbeddingBagMode.Sum, api, includeLastOffset: true,
                weighted ? weights : [], padding, pruned ? mapping : [], width);
            TestAssert.BitEqual(expected, api.AsSpan(0, expected.Length), context + ", EmbeddingPrimitives");
            AssertSentinels(api.AsSpan(expected.Length), context);
        }
    }

    private static KernelKey Key(QuantizedBits bits, int dim, VectorWidth width)
    {
        KernelOperation operation = bits switch
        {
            QuantizedBits.Eight => KernelOperation.QuantizedBagByte,
            QuantizedBits.Four => KernelOperation.QuantizedBag4Bit,
            _ => KernelOperation.QuantizedBag2Bit,
        };
        return new KernelKey(operation, EmbeddingType.Float32, KernelDispatch.IndexTypeOf<TIndex>(), dim, width);
    }

    private static void AssertSentinels(ReadOnlySpan<float> guard, string context)
    {
        foreach (float value in guard)
        {
            Assert.True(BitConverter.SingleToInt32Bits(value) == BitConverter.SingleToInt32Bits(TestData.Sentinel), $"{context}: a guard element was written");
        }
    }
}

public sealed class QuantizedKernelDispatchTestsInt32 : QuantizedKernelDispatchTests<int>;

public sealed class QuantizedKernelDispatchTestsInt64 : QuantizedKernelDispatchTests<long>;

/// <summary>The default quantized set: what it declares and that it stays out of the float kernels' way.</summary>
public sealed class DefaultQuantizedKernelsTests
{
    [Fact]
    public void DefaultQuantizedSet_DeclaresEveryCodeWidthAndNoTableType()
    {
        var kernels = new DefaultQuantizedKernels();

        Assert.Equal(QuantizedBitWidths.All, kernels.Quantized);
        Assert.Equal(EmbeddingTypes.None, kernels.Types);
        Assert.Equal(QuantizedKernelDispatchTests<int>.DefaultDims, kernels.Dimensions.ToArray());
        Assert.Null(kernels.Find(new KernelKey(KernelOperation.Gather, EmbeddingType.Float32, EmbeddingIndexType.Int64, 64, VectorWidth.Vector128)));
        Assert.Null(kernels.Find(new KernelKey(KernelOperation.QuantizedBagByte, EmbeddingType.Float32, EmbeddingIndexType.Int64, 48, VectorWidth.Vector128)));
    }

    [Fact]
    public void DefaultFloatSet_HasNoQuantizedKernels()
    {
        Assert.Equal(QuantizedBitWidths.None, new DefaultEmbeddingKernels().Quantized);
        Assert.Null(new DefaultEmbeddingKernels().Find(new KernelKey(KernelOperation.QuantizedBag4Bit, EmbeddingType.Float32, EmbeddingIndexType.Int64, 64, VectorWidth.Vector128)));
    }

    [Fact]
    public void Registry_HoldsTheDefaultQuantizedSetOnce()
    {
        EmbeddingKernelRegistry.Register(new DefaultQuantizedKernels());
        int sets = 0;
        foreach (EmbeddingKernelSet set in EmbeddingKernelRegistry.Sets)
        {
            sets += set is DefaultQuantizedKernels ? 1 : 0;
        }

        Assert.Equal(1, sets);
    }

    [Fact]
    public void Dispatch_RunsTheGenericKernelForOtherDimensions()
    {
        Assert.Null(KernelDispatch.Specialised(new KernelKey(KernelOperation.QuantizedBagByte, EmbeddingType.Float32, EmbeddingIndexType.Int64, 48, VectorWidth.Vector128)));
    }
}
