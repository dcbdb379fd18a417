using System;
using System.Linq;
using System.Runtime.InteropServices;
using Embedding.Native.Interop;
using Xunit;

namespace Embedding.Native.Tests;

/// <summary>The EmbeddingBag backward C-ABI shims called in-process through unmanaged function pointers.</summary>
public sealed unsafe class BagBackwardExportTests
{
    private static readonly delegate* unmanaged<void*, int, long, long, EmbBags*, int, long*, int, void*, long, int> Backward = &NativeExports.EmbeddingBagBackward;
    private static readonly delegate* unmanaged<void*, int, long, long, EmbBags*, int, int, long*, void*, long, long*, int> Sparse = &NativeExports.EmbeddingBagBackwardSparse;
    private static readonly delegate* unmanaged<void*, int, void*, long, long, EmbBags*, int, void*, long, int> PerSampleWeights = &NativeExports.EmbeddingBagPerSampleWeightsBackward;

    private const int Float32 = (int)EmbDtype.Float32, Int32 = (int)EmbDtype.Int32, Int64 = (int)EmbDtype.Int64;
    private const int Sum = 0, Mean = 1, Max = 2, ScaleGradByFreq = 1, Accumulate = 2;

    // torch's §3.4 example: W = arange(1, 11).view(5, 2), input [3,1,1,1,4,0], offsets [0,0,3,3,6].
    private static readonly long[] TorchIndices = [3, 1, 1, 1, 4, 0];
    private static readonly long[] TorchOffsets = [0, 0, 3, 3, 6];
    private static readonly float[] TorchGradOutput = [99, 99, 1, 2, 99, 99, 3, 4, 99, 99];
    private static readonly long[] TorchMaxIndices = [-1, -1, 3, 3, -1, -1, 4, 4, -1, -1];

    [Fact]
    public void EmbeddingBagBackward_MatchesTorchAndTheSpanApi()
    {
        float[] grad = TestData.Guarded(10);
        Assert.Equal(EmbStatus.Ok, CallBackward(TorchGradOutput, TorchIndices, TorchOffsets, Sum, null, 0, grad, 10));
        Assert.Equal([3f, 4, 5, 8, 0, 0, 1, 2, 3, 4], grad[..10]);
        BackwardKernelTests<int>.AssertSentinels(grad, 10);

        Assert.Equal(EmbStatus.Ok, CallBackward(TorchGradOutput, TorchIndices.Select(i => (int)i).ToArray(), TorchOffsets.Select(o => (int)o).ToArray(), Mean, null, 0, grad, 10, padding: 1));
        Assert.Equal([1.5f, 2, 0, 0, 0, 0, 1, 2, 1.5f, 2], grad[..10]);

        Assert.Equal(EmbStatus.Ok, CallBackward(TorchGradOutput, TorchIndices, TorchOffsets, Max, TorchMaxIndices, Accumulate, grad, 10));
        Assert.Equal([1.5f, 2, 0, 0, 0, 0, 2, 4, 4.5f, 6], grad[..10]);

        // Fixed-size bags (offsets NULL): [3,1,1] and [1,4,0].
        Assert.Equal(EmbStatus.Ok, CallBackward<long, long>([1f, 2, 3, 4], TorchIndices, null, Sum, null, 0, grad, 10, bagSize: 3));
        Assert.Equal([3f, 4, 5, 8, 0, 0, 1, 2, 3, 4], grad[..10]);

        const int dim = 37, rows = 11, count = 120;
        int[] indices = TestData.Indices<int>(count, rows, seed: 5);
        long[] offsets = BagBackwardTests<int, long>.Offsets(count, seed: 6, includeLast: true, out int bags);
        float[] gradOutput = BackwardKernelTests<int>.Gradient(bags, dim, seed: 7);
        float[] psw = BackwardKernelTests<int>.Gradient(count, 1, seed: 8);
        float[] expected = new float[rows * dim];
        EmbeddingPrimitives.EmbeddingBagBackward<int, long>(gradOutput, indices, offsets, dim, EmbeddingBagMode.Sum, expected, true, psw, 4, default, EmbeddingGradOptions.ScaleGradByFrequency);
        float[] actual = new float[rows * dim];
        Assert.Equal(EmbStatus.Ok, CallBackward(gradOutput, indices, offsets, Sum, null, ScaleGradByFreq, actual, actual.Length, rows: rows, dim: dim, padding: 4, psw: psw, includeLast: 1));
        TestAssert.BitEqual(expected, actual, "C ABI vs span API");
    }

    [Fact]
    public void EmbeddingBagBackward_ReportsEachInvalidArgumentAndWritesNothing()
    {
        float[] grad = TestData.Guarded(10, guard: 0);
        void Fails(EmbStatus status, EmbStatus actual, string? message = null)
        {
            Assert.Equal(status, actual);
            if (message is not null)
            {
                Assert.StartsWith(message, LastMessage());
            }

            Assert.All(grad, value => Assert.True(float.IsNaN(value)));
        }

        Fails(EmbStatus.UnsupportedDtype, CallBackward(TorchGradOutput, TorchIndices, TorchOffsets, Sum, null, 0, grad, 10, gradDtype: (int)EmbDtype.BFloat16));
        Fails(EmbStatus.InvalidArgument, CallBackward(TorchGradOutput, TorchIndices, TorchOffsets, 3, null, 0, grad, 10));
        Fails(EmbStatus.InvalidArgument, CallBackward(TorchGradOutput, TorchIndices, TorchOffsets, Sum, null, 8, grad, 10));
        Fails(EmbStatus.InvalidArgument, CallBackward(TorchGradOutput, TorchIndices, TorchOffsets, Max, TorchMaxIndices, ScaleGradByFreq, grad, 10), "max mode does not support scaling the gradient by the frequency");
        Fails(EmbStatus.NotSupported, CallBackward(TorchGradOutput, TorchIndices, TorchOffsets, Mean, null, 0, grad, 10, psw: [1f, 1, 1, 1, 1, 1]), "embedding_bag: per_sample_weights was not None");
        Fails(EmbStatus.IndexOutOfRange, CallBackward(TorchGradOutput, [3L, 1, 1, 1, 4, 5], TorchOffsets, Sum, null, 0, grad, 10));
        Assert.Equal("index 5 at position 5 is out of range: valid indices are 0 to 4 (num_embeddings = 5)", LastMessage());
        Fails(EmbStatus.IndexOutOfRange, CallBackward(TorchGradOutput, TorchIndices, TorchOffsets, Max, [-1, -1, 3, 3, -1, -1, 4, 7, -1, -1], 0, grad, 10), "max_indices: index 7 at position 7");
        Fails(EmbStatus.IndexOutOfRange, CallBackward(TorchGradOutput, TorchIndices, TorchOffsets, Sum, null, 0, grad, 10, padding: 5));
        Fails(EmbStatus.InvalidArgument, CallBackward(TorchGradOutput, TorchIndices, [0L, 3, 2, 3, 6], Sum, null, 0, grad, 10));
        Fails(EmbStatus.InvalidArgument, CallBackward<long, long>(TorchGradOutput, TorchIndices, null, Sum, null, 0, grad, 10, bagSize: 4));
        Fails(EmbStatus.BufferTooSmall, CallBackward(TorchGradOutput, TorchIndices, TorchOffsets, Sum, null, 0, grad, 9));
        Fails(EmbStatus.NullPointer, CallBackward(TorchGradOutput, TorchIndices, TorchOffsets, Max, null, 0, grad, 10));
        Fails(EmbStatus.SizeOverflow, CallBackward(TorchGradOutput, TorchIndices, TorchOffsets, Sum, null, 0, grad, 10, dim: (long)int.MaxValue + 1));

        fixed (float* gradient = TorchGradOutput)
        fixed (long* index = TorchIndices)
        fixed (long* offset = TorchOffsets)
        fixed (float* weight = grad)
        {
            EmbBags bags = Bags(index, Int64, 6, offset, Int64, 5, 0, 0, null, -1);
            Fails(EmbStatus.NullPointer, (EmbStatus)Backward(gradient, Float32, 5, 2, null, Sum, null, 0, weight, 10));
            Fails(EmbStatus.NullPointer, (EmbStatus)Backward(null, Float32, 5, 2, &bags, Sum, null, 0, weight, 10));
            Fails(EmbStatus.NullPointer, (EmbStatus)Backward(gradient, Float32, 5, 2, &bags, Sum, null, 0, null, 10));
            Fails(EmbStatus.InvalidArgument, (EmbStatus)Backward(weight, Float32, 5, 2, &bags, Sum, null, 0, weight, 10), "grad_weight overlaps grad_output");
            EmbBags overlapping = Bags((long*)weight, Int64, 5, null, Int64, 0, 1, 0, null, -1);
            Fails(EmbStatus.InvalidArgument, (EmbStatus)Backward(gradient, Float32, 5, 2, &overlapping, Sum, null, 0, weight, 10), "grad_weight overlaps bags->indices");

            // Nothing to do: no bags, no rows.
            EmbBags none = Bags(null, Int64, 0, offset, Int64, 0, 0, 0, null, -1);
            Assert.Equal(EmbStatus.Ok, (EmbStatus)Backward(null, Float32, 0, 2, &none, Max, null, 0, null, 0));
        }
    }

    [Fact]
    public void EmbeddingBagBackwardSparse_WritesTorchsLayoutAndCount()
    {
        long[] rows = new long[6];
        float[] values = TestData.Guarded(12);
        long nnz = -1;
        Assert.Equal(EmbStatus.Ok, CallSparse(TorchGradOutput, TorchIndices, TorchOffsets, Mean, 0, rows, values, 6, &nnz));
        Assert.Equal(6, nnz);
        Assert.Equal([3L, 1, 1, 1, 4, 0], rows);
        Assert.Equal([0.33333334f, 0.6666667f, 0.33333334f, 0.6666667f, 0.33333334f, 0.6666667f, 1, 1.3333334f, 1, 1.3333334f, 1, 1.3333334f], values[..12]);
        BackwardKernelTests<int>.AssertSentinels(values, 12);

        Assert.Equal(EmbStatus.Ok, CallSparse(TorchGradOutput, TorchIndices, TorchOffsets, Sum, 0, rows, values, 6, &nnz, padding: 1, psw: [2f, 0.5f, -1, 3, 0.25f, 10]));
        Assert.Equal(3, nnz);
        Assert.Equal([3L, 4, 0], rows[..3]);
        Assert.Equal([2f, 4, 0.75f, 1, 30, 40], values[..6]);

        long[] guardRows = [-7, -7, -7, -7, -7];
        float[] guardValues = TestData.Guarded(0, guard: 12);
        nnz = -1;
        Assert.Equal(EmbStatus.BufferTooSmall, CallSparse(TorchGradOutput, TorchIndices, TorchOffsets, Sum, 0, guardRows, guardValues, 5, &nnz));
        Assert.Contains("6 non-padding positions", LastMessage());
        Assert.Equal(EmbStatus.InvalidArgument, CallSparse(TorchGradOutput, TorchIndices, TorchOffsets, Max, 0, guardRows, guardValues, 5, &nnz));
        Assert.Equal("max mode does not support sparse weights", LastMessage());
        Assert.Equal(EmbStatus.InvalidArgument, CallSparse(TorchGradOutput, TorchIndices, TorchOffsets, Sum, Accumulate, guardRows, guardValues, 5, &nnz));
        Assert.Equal(EmbStatus.IndexOutOfRange, CallSparse(TorchGradOutput, [3L, 1, 1, 1, -4, 0], TorchOffsets, Sum, 0, guardRows, guardValues, 5, &nnz));
        Assert.Equal(EmbStatus.NullPointer, CallSparse(TorchGradOutput, TorchIndices, TorchOffsets, Sum, 0, guardRows, guardValues, 5, null));
        Assert.Equal(-1, nnz);
        Assert.All(guardRows, row => Assert.Equal(-7, row));
        BackwardKernelTests<int>.AssertSentinels(guardValues, 0);

        // Frequency scaling is ours to allow (torch refuses it with sparse gradients): each value × fl(1/c).
        Assert.Equal(EmbStatus.Ok, CallSparse(TorchGradOutput, TorchIndices, TorchOffsets, Sum, ScaleGradByFreq, rows, values, 6, &nnz));
        Assert.Equal([1f, 2, 1 * (float)(1.0 / 3), 2 * (float)(1.0 / 3)], values[..4]);
    }

    [Theory]
    [InlineData("grad_output", 2)]
    [InlineData("bags->indices", 2)]
    [InlineData("bags->offsets", 4)]
    [InlineData("bags->per_sample_weights", 2)]
    [InlineData("out_rows", 5)]
    [InlineData("out_values", 4)]
    [InlineData("bags", 1)]
    public void EmbeddingBagBackwardSparse_RefusesAnNnzInsideAnotherBufferAndWritesNothing(string buffer, int element)
    {
        float[] gradOutput = (float[])TorchGradOutput.Clone();
        long[] indices = (long[])TorchIndices.Clone();
        long[] offsets = (long[])TorchOffsets.Clone();
        float[] psw = [2f, 0.5f, -1, 3, 0.25f, 10];
        long[] rows = [-7, -7, -7, -7, -7, -7];
        float[] values = TestData.Guarded(12, guard: 0);
        fixed (float* gradient = gradOutput)
        fixed (long* index = indices)
        fixed (long* offset = offsets)
        fixed (float* weights = psw)
        fixed (long* outRows = rows)
        fixed (float* outValues = values)
        {
            EmbBags bags = Bags(index, Int64, 6, offset, Int64, 5, 0, 0, weights, -1);
            EmbBags before = bags;
            long* nnz = buffer switch
            {
                "grad_output" => (long*)(gradient + element),
                "bags->indices" => index + element,
                "bags->offsets" => offset + element,
                "bags->per_sample_weights" => (long*)(weights + element),
                "out_rows" => outRows + element,
                "bags" => (long*)&bags + element,
                _ => (long*)(outValues + element),
            };
            Assert.Equal(EmbStatus.InvalidArgument, (EmbStatus)Sparse(gradient, Float32, 5, 2, &bags, Sum, 0, outRows, outValues, 6, nnz));
            Assert.Equal($"nnz overlaps {buffer}; the output must be a separate buffer", LastMessage());
            Assert.Equal(before, bags);
        }

        Assert.Equal(TorchGradOutput, gradOutput);
        Assert.Equal(TorchIndices, indices);
        Assert.Equal(TorchOffsets, offsets);
        Assert.Equal([2f, 0.5f, -1, 3, 0.25f, 10], psw);
        Assert.All(rows, row => Assert.Equal(-7, row));
        BackwardKernelTests<int>.AssertSentinels(values, 0);
    }

    [Fact]
    public void EmbeddingBagPerSampleWeightsBackward_MatchesTorchAndReportsErrors()
    {
        float[] weight = Enumerable.Range(1, 10).Select(i => (float)i).ToArray();
        float[] grad = TestData.Guarded(6);
        Assert.Equal(EmbStatus.Ok, CallPerSampleWeights([1f, 2, 3, 4], weight, TorchIndices, [0L, 3], Sum, grad, 6));
        Assert.Equal([23f, 11, 11, 25, 67, 11], grad[..6]);
        BackwardKernelTests<int>.AssertSentinels(grad, 6);
        Assert.Equal(EmbStatus.Ok, CallPerSampleWeights([1f, 2, 3, 4], weight, TorchIndices.Select(i => (int)i).ToArray(), [0, 3], Sum, grad, 6, padding: 1));
        Assert.Equal([23f, 0, 0, 0, 67, 11], grad[..6]);

        float[] guard = TestData.Guarded(0, guard: 6);
        Assert.Equal(EmbStatus.NotSupported, CallPerSampleWeights([1f, 2, 3, 4], weight, TorchIndices, [0L, 3], Mean, guard, 6));
        Assert.Equal("embedding_bag_backward: per_sample_weights only supported for mode='sum'", LastMessage());
        Assert.Equal(EmbStatus.BufferTooSmall, CallPerSampleWeights([1f, 2, 3, 4], weight, TorchIndices, [0L, 3], Sum, guard, 5));
        Assert.Equal(EmbStatus.IndexOutOfRange, CallPerSampleWeights([1f, 2, 3, 4], weight, [3L, 1, 1, 1, 4, 5], [0L, 3], Sum, guard, 6));
        Assert.Equal(EmbStatus.InvalidArgument, CallPerSampleWeights([1f, 2, 3, 4], weight, TorchIndices, [0L, 7], Sum, guard, 6));
        BackwardKernelTests<int>.AssertSentinels(guard, 0);
    }

    [Theory]
    [InlineData((int)EmbDtype.Float64, 8)]
    [InlineData((int)EmbDtype.Float16, 2)]
    public void PerSampleWeightsGradient_OverlapIsMeasuredInTheTablesElements(int dtype, int elementSize)
    {
        // 4 weights of the table's type, then the gradient: a gradient starting inside the weights is
        // refused (float64: past the first 16 bytes a float-sized check would miss); one starting right
        // after them is not (float16: a float-sized check would refuse it).
        byte[] table = new byte[10 * elementSize];
        byte[] grad = new byte[6 * elementSize];
        byte[] block = new byte[(4 + 6) * elementSize];
        long[] indices = [3, 1, 1, 1, 4, 0];
        long[] offsets = [0, 3];
        fixed (byte* weight = table)
        fixed (byte* gradOutput = grad)
        fixed (byte* psw = block)
        fixed (long* index = indices)
        fixed (long* offset = offsets)
        {
            EmbBags bags = Bags(index, Int64, 4, offset, Int64, 2, 0, 0, (float*)psw, -1);
            byte* inside = psw + 3 * elementSize;
            Assert.Equal(EmbStatus.InvalidArgument, (EmbStatus)PerSampleWeights(gradOutput, dtype, weight, 5, 2, &bags, Sum, inside, 6));
            Assert.Contains("per_sample_weights", LastMessage());
            byte* after = psw + 4 * elementSize;
            Assert.Equal(EmbStatus.Ok, (EmbStatus)PerSampleWeights(gradOutput, dtype, weight, 5, 2, &bags, Sum, after, 6));
        }
    }

    [Fact]
    public void BagBackwardExports_AllocateNothingAfterWarmUp()
    {
        float[] grad = new float[10];
        long[] rows = new long[6];
        float[] values = new float[12];
        float[] weight = Enumerable.Range(1, 10).Select(i => (float)i).ToArray();
        float[] pswGrad = new float[6];
        float[] pswGradOutput = [1f, 2, 3, 4];
        long[] pswOffsets = [0, 3];
        // Statuses are OR-ed and checked after the loop: xunit's Assert.Equal allocates a comparer.
        int failed = 0;
        void Run()
        {
            long nnz;
            failed |= (int)CallBackward(TorchGradOutput, TorchIndices, TorchOffsets, Mean, null, ScaleGradByFreq, grad, 10);
            failed |= (int)CallBackward(TorchGradOutput, TorchIndices, TorchOffsets, Max, TorchMaxIndices, Accumulate, grad, 10);
            failed |= (int)CallSparse(TorchGradOutput, TorchIndices, TorchOffsets, Mean, ScaleGradByFreq, rows, values, 6, &nnz);
            failed |= (int)CallPerSampleWeights(pswGradOutput, weight, TorchIndices, pswOffsets, Sum, pswGrad, 6);
        }

        for (int i = 0; i < 10; i++)
        {
            Run();
        }

        Assert.Equal(0, TestAssert.AllocatedBytes(() =>
        {
            for (int i = 0; i < 100; i++)
            {
                Run();
            }
        }));
        Assert.Equal(0, failed);
    }

    private static EmbBags Bags(void* indices, int indexDtype, long numIndices, void* offsets, int offsetsDtype, long numOffsets, long bagSize, int includeLast, float* psw, long padding) => new()
    {
        Indices = indices,
        NumIndices = numIndices,
        IndexDtype = indexDtype,
        OffsetsDtype = offsetsDtype,
        Offsets = offsets,
        NumOffsets = numOffsets,
        BagSize = bagSize,
        IncludeLastOffset = includeLast,
        PerSampleWeights = psw,
        PaddingIdx = padding,
    };

    private static int Dtype<T>() => typeof(T) == typeof(int) ? Int32 : Int64;

    private static EmbStatus CallBackward<TIndex, TOffset>(
        float[] gradOutput, TIndex[] indices, TOffset[]? offsets, int mode, long[]? maxIndices, int flags, float[] grad, long capacity,
        long rows = 5, long dim = 2, long padding = -1, float[]? psw = null, int includeLast = 0, long bagSize = 0, int gradDtype = Float32)
        where TIndex : unmanaged
        where TOffset : unmanaged
    {
        fixed (float* gradient = gradOutput)
        fixed (TIndex* index = indices)
        fixed (TOffset* offset = offsets)
        fixed (long* max = maxIndices)
        fixed (float* weights = psw)
        fixed (float* weight = grad)
        {
            EmbBags bags = Bags(index, Dtype<TIndex>(), indices.Length, offset, Dtype<TOffset>(), offsets?.Length ?? 0, bagSize, includeLast, weights, padding);
            return (EmbStatus)Backward(gradient, gradDtype, rows, dim, &bags, mode, max, flags, weight, capacity);
        }
    }

    private static EmbStatus CallSparse<TIndex>(float[] gradOutput, TIndex[] indices, TIndex[] offsets, int mode, int flags, long[] rows, float[] values, long capacity, long* nnz, long padding = -1, float[]? psw = null)
        where TIndex : unmanaged
    {
        fixed (float* gradient = gradOutput)
        fixed (TIndex* index = indices)
        fixed (TIndex* offset = offsets)
        fixed (float* weights = psw)
        fixed (long* outRows = rows)
        fixed (float* outValues = values)
        {
            EmbBags bags = Bags(index, Dtype<TIndex>(), indices.Length, offset, Dtype<TIndex>(), offsets.Length, 0, 0, weights, padding);
            return (EmbStatus)Sparse(gradient, Float32, 5, 2, &bags, mode, flags, outRows, outValues, capacity, nnz);
        }
    }

    private static EmbStatus CallPerSampleWeights<TIndex>(float[] gradOutput, float[] weight, TIndex[] indices, TIndex[] offsets, int mode, float[] grad, long capacity, long padding = -1)
        where TIndex : unmanaged
    {
        fixed (float* gradient = gradOutput)
        fixed (float* table = weight)
        fixed (TIndex* index = indices)
        fixed (TIndex* offset = offsets)
        fixed (float* output = grad)
        {
            EmbBags bags = Bags(index, Dtype<TIndex>(), indices.Length, offset, Dtype<TIndex>(), offsets.Length, 0, 0, null, padding);
            return (EmbStatus)PerSampleWeights(gradient, Float32, table, 5, 2, &bags, mode, output, capacity);
        }
    }

    private static string LastMessage()
    {
        delegate* unmanaged<byte*> lastError = &NativeExports.LastErrorMessage;
        return Marshal.PtrToStringUTF8((nint)lastError())!;
    }
}
