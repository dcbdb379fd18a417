using System;
using System.Linq;
using System.Runtime.InteropServices;
using Embedding.Native.Interop;
using Xunit;

namespace Embedding.Native.Tests;

/// <summary>The backward C-ABI shims called in-process through unmanaged function pointers.</summary>
public sealed unsafe class BackwardNativeExportTests
{
    private static readonly delegate* unmanaged<void*, int, long, long, void*, int, long, long, int, void*, long, int> Backward = &NativeExports.EmbeddingBackward;
    private static readonly delegate* unmanaged<void*, int, long, long, void*, int, long, long, int, long*, void*, long, long*, int> Sparse = &NativeExports.EmbeddingBackwardSparse;
    private static readonly delegate* unmanaged<long*, void*, int, long, long, long, long*, void*, long, long*, int> Coalesce = &NativeExports.SparseCoalesce;

    private const int Float32 = (int)EmbDtype.Float32, Int32 = (int)EmbDtype.Int32, Int64 = (int)EmbDtype.Int64;
    private const int ScaleGradByFreq = 1, Accumulate = 2;

    private static readonly long[] TorchIndices = [0, 2, 2, 1, 2, 0];
    private static readonly float[] TorchGrad = Enumerable.Range(0, 18).Select(i => (float)i).ToArray();

    [Fact]
    public void EmbeddingBackward_MatchesTorchAndTheSpanApi()
    {
        float[] grad = TestData.Guarded(12);
        Assert.Equal(EmbStatus.Ok, CallBackward(TorchGrad, 6, 3, TorchIndices, Int64, 4, -1, 0, grad, 12));
        Assert.Equal([15f, 17, 19, 9, 10, 11, 21, 24, 27, 0, 0, 0], grad[..12]);
        BackwardKernelTests<int>.AssertSentinels(grad, 12);

        Assert.Equal(EmbStatus.Ok, CallBackward(TorchGrad, 6, 3, TorchIndices.Select(i => (int)i).ToArray(), Int32, 4, 2, Accumulate, grad, 12));
        Assert.Equal([30f, 34, 38, 18, 20, 22, 21, 24, 27, 0, 0, 0], grad[..12]);

        int[] indices = TestData.Indices<int>(200, 7, seed: 5);
        float[] gradOutput = BackwardKernelTests<int>.Gradient(200, 37, seed: 6);
        float[] expected = new float[7 * 37];
        EmbeddingPrimitives.EmbeddingBackward(gradOutput, indices, 37, expected, 3, EmbeddingGradOptions.ScaleGradByFrequency);
        float[] actual = new float[7 * 37];
        Assert.Equal(EmbStatus.Ok, CallBackward(gradOutput, 200, 37, indices, Int32, 7, 3, ScaleGradByFreq, actual, actual.Length));
        TestAssert.BitEqual(expected, actual, "C ABI vs span API");
    }

    [Fact]
    public void EmbeddingBackward_ReportsEachInvalidArgumentAndWritesNothing()
    {
        float[] grad = TestData.Guarded(12, guard: 0);
        Assert.Equal(EmbStatus.UnsupportedDtype, CallBackward(TorchGrad, 6, 3, TorchIndices, Int64, 4, -1, 0, grad, 12, gradDtype: (int)EmbDtype.Int32));
        Assert.Equal(EmbStatus.UnsupportedDtype, CallBackward(TorchGrad, 6, 3, TorchIndices, Float32, 4, -1, 0, grad, 12));
        Assert.Equal(EmbStatus.InvalidArgument, CallBackward(TorchGrad, -6, 3, TorchIndices, Int64, 4, -1, 0, grad, 12));
        Assert.Equal(EmbStatus.InvalidArgument, CallBackward(TorchGrad, 6, 3, TorchIndices, Int64, 4, -1, 8, grad, 12));
        Assert.Equal(EmbStatus.IndexOutOfRange, CallBackward(TorchGrad, 6, 3, TorchIndices, Int64, 4, 4, 0, grad, 12));
        Assert.StartsWith("padding_idx 4 is not a row", LastMessage());
        Assert.Equal(EmbStatus.IndexOutOfRange, CallBackward(TorchGrad, 6, 3, TorchIndices, Int64, 4, -2, 0, grad, 12));
        Assert.Equal(EmbStatus.SizeOverflow, CallBackward(TorchGrad, 6, (long)int.MaxValue + 1, TorchIndices, Int64, 4, -1, 0, grad, 12));
        Assert.Equal(EmbStatus.BufferTooSmall, CallBackward(TorchGrad, 6, 3, TorchIndices, Int64, 4, -1, 0, grad, 11));
        Assert.Equal(EmbStatus.IndexOutOfRange, CallBackward(TorchGrad, 6, 3, new long[] { 0, 2, 2, 1, 2, 4 }, Int64, 4, -1, 0, grad, 12));
        Assert.Equal("index 4 at position 5 is out of range: valid indices are 0 to 3 (num_embeddings = 4)", LastMessage());
        Assert.Equal(EmbStatus.IndexOutOfRange, CallBackward(TorchGrad, 6, 3, new long[] { 0, 2, 2, 1, 2, 4 }, Int64, 4, -1, ScaleGradByFreq, grad, 12));
        Assert.All(grad, value => Assert.True(float.IsNaN(value)));

        fixed (float* gradient = TorchGrad)
        fixed (long* index = TorchIndices)
        fixed (float* weight = grad)
        {
            Assert.Equal(EmbStatus.NullPointer, (EmbStatus)Backward(null, Float32, 6, 3, index, Int64, 4, -1, 0, weight, 12));
            Assert.Equal(EmbStatus.NullPointer, (EmbStatus)Backward(gradient, Float32, 6, 3, null, Int64, 4, -1, 0, weight, 12));
            Assert.Equal(EmbStatus.NullPointer, (EmbStatus)Backward(gradient, Float32, 6, 3, index, Int64, 4, -1, 0, null, 12));
            Assert.Equal(EmbStatus.InvalidArgument, (EmbStatus)Backward(gradient, Float32, 4, 3, index, Int64, 4, -1, 0, gradient + 6, 12));
            Assert.Contains("overlaps grad_output", LastMessage());
            Assert.Equal(EmbStatus.Ok, (EmbStatus)Backward(null, Float32, 0, 3, null, Int64, 0, -1, 0, null, 0));
            Assert.Equal(EmbStatus.Ok, (EmbStatus)Backward(null, Float32, 6, 0, index, Int64, 4, -1, ScaleGradByFreq, null, 0));
        }
    }

    [Fact]
    public void EmbeddingBackwardSparse_WritesTorchsLayoutAndCount()
    {
        long[] rows = new long[6];
        float[] values = TestData.Guarded(18);
        long nnz = -1;
        Assert.Equal(EmbStatus.Ok, CallSparse(TorchGrad, TorchIndices, Int64, 2, 0, rows, values, 6, &nnz));
        Assert.Equal(3, nnz);
        Assert.Equal([0L, 1, 0], rows[..3]);
        Assert.Equal([0f, 1, 2, 9, 10, 11, 15, 16, 17], values[..9]);
        BackwardKernelTests<int>.AssertSentinels(values, 9);

        Assert.Equal(EmbStatus.BufferTooSmall, CallSparse(TorchGrad, TorchIndices, Int64, -1, 0, rows, values, 5, &nnz));
        Assert.Contains("6 non-padding positions", LastMessage());
        Assert.Equal(EmbStatus.InvalidArgument, CallSparse(TorchGrad, TorchIndices, Int64, -1, Accumulate, rows, values, 6, &nnz));
        Assert.Equal(EmbStatus.NullPointer, CallSparse(TorchGrad, TorchIndices, Int64, -1, 0, rows, values, 6, null));
        Assert.Equal(3, nnz);

        Assert.Equal(EmbStatus.Ok, CallSparse(TorchGrad, TorchIndices, Int64, -1, ScaleGradByFreq, rows, values, 6, &nnz));
        Assert.Equal(6, nnz);
        Assert.Equal(1f / 3 * 3, values[3]);
        Assert.Equal(TorchGrad[0] * 0.5f, values[0]);
    }

    [Fact]
    public void SparseCoalesce_SortsAndSumsOrReportsShortOutput()
    {
        long[] rows = [4, 1, 4, 0];
        float[] values = [1, 2, 3, 4, 5, 6, 7, 8];
        long[] unique = [-1, -1, -1];
        float[] sums = TestData.Guarded(6);
        long count = -1;
        fixed (long* row = rows)
        fixed (float* value = values)
        fixed (long* outRows = unique)
        fixed (float* outValues = sums)
        {
            Assert.Equal(EmbStatus.Ok, (EmbStatus)Coalesce(row, value, Float32, 4, 2, 5, outRows, outValues, 3, &count));
            Assert.Equal(3, count);
            Assert.Equal([0L, 1, 4], unique);
            Assert.Equal([7f, 8, 3, 4, 6, 8], sums[..6]);
            BackwardKernelTests<int>.AssertSentinels(sums, 6);

            Assert.Equal(EmbStatus.BufferTooSmall, (EmbStatus)Coalesce(row, value, Float32, 4, 2, 5, outRows, outValues, 2, &count));
            Assert.Equal(EmbStatus.IndexOutOfRange, (EmbStatus)Coalesce(row, value, Float32, 4, 2, 4, outRows, outValues, 3, &count));
            Assert.Equal("rows: index 4 at position 0 is out of range: valid indices are 0 to 3 (num_embeddings = 4)", LastMessage());
            Assert.Equal(EmbStatus.InvalidArgument, (EmbStatus)Coalesce(row, value, Float32, 4, 2, 5, outRows, value + 2, 3, &count));
            Assert.Equal(EmbStatus.UnsupportedDtype, (EmbStatus)Coalesce(row, value, Int64, 4, 2, 5, outRows, outValues, 3, &count));
            Assert.Equal(EmbStatus.NotSupported, (EmbStatus)Coalesce(row, value, Float32, 4, 2, long.MaxValue, outRows, outValues, 3, &count));
            Assert.Equal(EmbStatus.Ok, (EmbStatus)Coalesce(null, null, Float32, 0, 2, 5, null, null, 0, &count));
            Assert.Equal(0, count);
        }
    }

    [Theory]
    [InlineData("grad_output", 2)]
    [InlineData("indices", 4)]
    [InlineData("out_rows", 4)]
    [InlineData("out_values", 6)]
    public void EmbeddingBackwardSparse_RefusesAnNnzInsideAnotherBufferAndWritesNothing(string buffer, int element)
    {
        float[] grad = (float[])TorchGrad.Clone();
        long[] indices = (long[])TorchIndices.Clone();
        long[] rows = [-7, -7, -7, -7, -7, -7];
        float[] values = TestData.Guarded(18, guard: 0);
        fixed (float* gradient = grad)
        fixed (long* index = indices)
        fixed (long* outRows = rows)
        fixed (float* outValues = values)
        {
            long* nnz = buffer switch
            {
                "grad_output" => (long*)(gradient + element),
                "indices" => index + element,
                "out_rows" => outRows + element,
                _ => (long*)(outValues + element),
            };
            Assert.Equal(EmbStatus.InvalidArgument, (EmbStatus)Sparse(gradient, Float32, 6, 3, index, Int64, 4, -1, 0, outRows, outValues, 6, nnz));
            Assert.Equal($"nnz overlaps {buffer}; the output must be a separate buffer", LastMessage());
        }

        Assert.Equal(TorchGrad, grad);
        Assert.Equal(TorchIndices, indices);
        Assert.All(rows, row => Assert.Equal(-7, row));
        BackwardKernelTests<int>.AssertSentinels(values, 0);
    }

    [Theory]
    [InlineData("rows", 3)]
    [InlineData("values", 2)]
    [InlineData("out_rows", 1)]
    [InlineData("out_values", 4)]
    public void SparseCoalesce_RefusesANumRowsInsideAnotherBufferAndWritesNothing(string buffer, int element)
    {
        long[] rows = [4, 1, 4, 0];
        float[] values = [1, 2, 3, 4, 5, 6, 7, 8];
        long[] unique = [-1, -1, -1];
        float[] sums = TestData.Guarded(6, guard: 0);
        fixed (long* row = rows)
        fixed (float* value = values)
        fixed (long* outRows = unique)
        fixed (float* outValues = sums)
        {
            long* numRows = buffer switch
            {
                "rows" => row + element,
                "values" => (long*)(value + element),
                "out_rows" => outRows + element,
                _ => (long*)(outValues + element),
            };
            Assert.Equal(EmbStatus.InvalidArgument, (EmbStatus)Coalesce(row, value, Float32, 4, 2, 5, outRows, outValues, 3, numRows));
            Assert.Equal($"num_rows overlaps {buffer}; the output must be a separate buffer", LastMessage());
        }

        Assert.Equal([4L, 1, 4, 0], rows);
        Assert.Equal([1f, 2, 3, 4, 5, 6, 7, 8], values);
        Assert.Equal([-1L, -1, -1], unique);
        BackwardKernelTests<int>.AssertSentinels(sums, 0);
    }

    private static EmbStatus CallBackward<TIndex>(float[] gradOutput, long count, long dim, TIndex[] indices, int indexDtype, long rows, long padding, int flags, float[] grad, long capacity, int gradDtype = Float32)
        where TIndex : unmanaged
    {
        fixed (float* gradient = gradOutput)
        fixed (TIndex* index = indices)
        fixed (float* weight = grad)
        {
            return (EmbStatus)Backward(gradient, gradDtype, count, dim, index, indexDtype, rows, padding, flags, weight, capacity);
        }
    }

    private static EmbStatus CallSparse<TIndex>(float[] gradOutput, TIndex[] indices, int indexDtype, long padding, int flags, long[] rows, float[] values, long capacity, long* nnz)
        where TIndex : unmanaged
    {
        fixed (float* gradient = gradOutput)
        fixed (TIndex* index = indices)
        fixed (long* outRows = rows)
        fixed (float* outValues = values)
        {
            return (EmbStatus)Sparse(gradient, Float32, indices.Length, 3, index, indexDtype, 4, padding, flags, outRows, outValues, capacity, nnz);
        }
    }

    private static string LastMessage()
    {
        delegate* unmanaged<byte*> lastError = &NativeExports.LastErrorMessage;
        return Marshal.PtrToStringUTF8((nint)lastError())!;
    }
}
