using System;
using System.Runtime.InteropServices;
using Embedding.Native.Interop;
using Xunit;

namespace Embedding.Native.Tests;

/// <summary>
/// <c>emb_embedding_backward</c>, <c>emb_embedding_backward_sparse</c> and <c>emb_sparse_coalesce</c>
/// with float64, float16 and bfloat16 gradients, called in-process through unmanaged function
/// pointers: the same bits as the span API (whose arithmetic <see cref="BackwardTableTypeTests{T}"/>
/// checks against the model), sizes counted in elements of the type, and every other dtype refused.
/// </summary>
public abstract unsafe class BackwardTableTypeExportTests<T>
    where T : unmanaged
{
    private static readonly delegate* unmanaged<void*, int, long, long, void*, int, long, long, int, void*, long, int> Backward = &NativeExports.EmbeddingBackward;
    private static readonly delegate* unmanaged<void*, int, long, long, void*, int, long, long, int, long*, void*, long, long*, int> Sparse = &NativeExports.EmbeddingBackwardSparse;
    private static readonly delegate* unmanaged<long*, void*, int, long, long, long, long*, void*, long, long*, int> Coalesce = &NativeExports.SparseCoalesce;

    private const int Int32 = (int)EmbDtype.Int32, Int64 = (int)EmbDtype.Int64;
    private const int ScaleGradByFreq = 1, Accumulate = 2;
    private const int Rows = 9, Count = 40;

    private static readonly int Dtype = (int)TableElements.TypeOf<T>();

    [Theory]
    [InlineData(1, 0, -1)]
    [InlineData(33, ScaleGradByFreq, -1)]
    [InlineData(35, ScaleGradByFreq | Accumulate, 4)]
    [InlineData(64, Accumulate, 0)]
    public void EmbeddingBackward_MatchesTheSpanApi(int dim, int flags, long padding)
    {
        T[] gradOutput = Values(Count * dim, seed: dim);
        long[] indices64 = TestData.Indices<long>(Count, Rows, seed: dim + 1);
        int[] indices32 = Array.ConvertAll(indices64, index => (int)index);
        T[] start = Values(Rows * dim, seed: 3);

        T[] expected = (T[])start.Clone();
        EmbeddingPrimitives.EmbeddingBackward<T, long>(gradOutput, indices64, dim, expected, padding, (EmbeddingGradOptions)flags, KernelDispatch.BestWidth);
        foreach (bool wide in new[] { false, true })
        {
            T[] actual = Guarded(Rows * dim, 4);
            start.CopyTo(actual, 0);
            fixed (T* gradient = gradOutput)
            fixed (long* index64 = indices64)
            fixed (int* index32 = indices32)
            fixed (T* weight = actual)
            {
                void* index = wide ? index64 : index32;
                Assert.Equal(EmbStatus.Ok, (EmbStatus)Backward(gradient, Dtype, Count, dim, index, wide ? Int64 : Int32, Rows, padding, flags, weight, Rows * dim));
            }

            AssertBytesEqual(expected, actual.AsSpan(0, Rows * dim), $"D={dim}, flags {flags}, padding {padding}, int{(wide ? 64 : 32)}");
            AssertGuard(actual, Rows * dim);
        }
    }

    [Fact]
    public void EmbeddingBackward_CountsBuffersInElementsOfTheType()
    {
        const int dim = 3, count = 4, rows = 2;
        long[] indices = [0, 1, 1, 0];
        T[] block = Values(count * dim + rows * dim + 1, seed: 1);
        fixed (T* gradient = block)
        fixed (long* index = indices)
        {
            // grad_weight directly behind grad_output touches it without overlapping; one element earlier overlaps.
            Assert.Equal(EmbStatus.Ok, (EmbStatus)Backward(gradient, Dtype, count, dim, index, Int64, rows, -1, 0, gradient + count * dim, rows * dim));
            Assert.Equal(EmbStatus.InvalidArgument, (EmbStatus)Backward(gradient, Dtype, count, dim, index, Int64, rows, -1, 0, gradient + count * dim - 1, rows * dim));
            Assert.Contains("grad_weight overlaps grad_output", LastMessage());
            Assert.Equal(EmbStatus.BufferTooSmall, (EmbStatus)Backward(gradient, Dtype, count, dim, index, Int64, rows, -1, 0, gradient + count * dim, rows * dim - 1));
        }
    }

    [Theory]
    [InlineData(0)]
    [InlineData(Int32)]
    [InlineData(Int64)]
    [InlineData(7)]
    public void Backward_RefusesEveryOtherDtypeAndWritesNothing(int dtype)
    {
        T[] gradOutput = Values(6, seed: 2);
        long[] indices = [0, 1, 1];
        T[] grad = Guarded(0, 4);
        long[] rows = [-7, -7, -7];
        long nnz = -7;
        fixed (T* gradient = gradOutput)
        fixed (long* index = indices)
        fixed (T* weight = grad)
        fixed (long* outRows = rows)
        {
            Assert.Equal(EmbStatus.UnsupportedDtype, (EmbStatus)Backward(gradient, dtype, 3, 2, index, Int64, 2, -1, 0, weight, 4));
            Assert.Equal($"grad_dtype must be EMB_DTYPE_FLOAT32, _FLOAT64, _FLOAT16 or _BFLOAT16 (1 to 4), not dtype {dtype}", LastMessage());
            Assert.Equal(EmbStatus.UnsupportedDtype, (EmbStatus)Sparse(gradient, dtype, 3, 2, index, Int64, 2, -1, 0, outRows, weight, 3, &nnz));
            Assert.Equal(EmbStatus.UnsupportedDtype, (EmbStatus)Coalesce(index, gradient, dtype, 3, 2, 2, outRows, weight, 2, &nnz));
            Assert.Equal($"values_dtype must be EMB_DTYPE_FLOAT32, _FLOAT64, _FLOAT16 or _BFLOAT16 (1 to 4), not dtype {dtype}", LastMessage());
        }

        AssertGuard(grad, 0);
        Assert.Equal([-7L, -7, -7], rows);
        Assert.Equal(-7, nnz);
    }

    [Theory]
    [InlineData(5, 0, -1)]
    [InlineData(33, ScaleGradByFreq, 2)]
    public void EmbeddingBackwardSparseAndCoalesce_MatchTheSpanApi(int dim, int flags, long padding)
    {
        T[] gradOutput = Values(Count * dim, seed: dim);
        int[] indices = TestData.Indices<int>(Count, Rows, seed: dim);
        long[] expectedRows = new long[Count];
        T[] expectedValues = new T[Count * dim];
        int expectedNnz = EmbeddingPrimitives.EmbeddingSparseBackward<T, int>(gradOutput, indices, dim, Rows, expectedRows, expectedValues, padding, (EmbeddingGradOptions)flags);

        long[] rows = new long[Count];
        T[] values = Guarded(Count * dim, 4);
        long nnz = -1;
        fixed (T* gradient = gradOutput)
        fixed (int* index = indices)
        fixed (long* outRows = rows)
        fixed (T* outValues = values)
        {
            Assert.Equal(EmbStatus.Ok, (EmbStatus)Sparse(gradient, Dtype, Count, dim, index, Int32, Rows, padding, flags, outRows, outValues, Count, &nnz));
            Assert.Equal(EmbStatus.BufferTooSmall, (EmbStatus)Sparse(gradient, Dtype, Count, dim, index, Int32, Rows, padding, flags, outRows, outValues, expectedNnz - 1, &nnz));
        }

        Assert.Equal(expectedNnz, nnz);
        Assert.Equal(expectedRows[..expectedNnz], rows[..expectedNnz]);
        AssertBytesEqual(expectedValues.AsSpan(0, expectedNnz * dim).ToArray(), values.AsSpan(0, expectedNnz * dim), $"sparse D={dim}");
        AssertGuard(values, Count * dim);

        long[] expectedUnique = new long[expectedNnz];
        T[] expectedSums = new T[expectedNnz * dim];
        int expectedCount = EmbeddingPrimitives.SparseCoalesce<T>(rows.AsSpan(0, expectedNnz), values.AsSpan(0, expectedNnz * dim), dim, Rows, expectedUnique, expectedSums, KernelDispatch.BestWidth);
        long[] unique = new long[expectedNnz];
        T[] sums = Guarded(expectedNnz * dim, 4);
        long numRows = -1;
        fixed (long* row = rows)
        fixed (T* value = values)
        fixed (long* outRows = unique)
        fixed (T* outValues = sums)
        {
            Assert.Equal(EmbStatus.Ok, (EmbStatus)Coalesce(row, value, Dtype, expectedNnz, dim, Rows, outRows, outValues, expectedNnz, &numRows));
            Assert.Equal(EmbStatus.InvalidArgument, (EmbStatus)Coalesce(row, value, Dtype, expectedNnz, dim, Rows, outRows, value + 1, expectedNnz, &numRows));
        }

        Assert.Equal(expectedCount, numRows);
        Assert.Equal(expectedUnique[..expectedCount], unique[..expectedCount]);
        AssertBytesEqual(expectedSums.AsSpan(0, expectedCount * dim).ToArray(), sums.AsSpan(0, expectedCount * dim), $"coalesce D={dim}");
        AssertGuard(sums, expectedNnz * dim);
    }

    /// <summary>Finite values of mixed sign and magnitude in the type (random bits with the exponent kept small).</summary>
    private static T[] Values(int length, int seed)
    {
        var random = new Random(seed);
        var values = new T[length];
        for (int i = 0; i < length; i++)
        {
            double value = (random.NextDouble() - 0.5) * Math.Pow(2, random.Next(-5, 6));
            values[i] = typeof(T) == typeof(double) ? (T)(object)value
                : typeof(T) == typeof(Half) ? (T)(object)(Half)(float)value
                : (T)(object)(BFloat16)(float)value;
        }

        return values;
    }

    private static T[] Guarded(int length, int guard)
    {
        var values = new T[length + guard];
        MemoryMarshal.AsBytes(values.AsSpan(length)).Fill(0xA5);
        return values;
    }

    private static void AssertGuard(T[] values, int length) =>
        Assert.True(MemoryMarshal.AsBytes(values.AsSpan(length)).IndexOfAnyExcept((byte)0xA5) < 0, "written past the output");

    private static void AssertBytesEqual(T[] expected, ReadOnlySpan<T> actual, string context) =>
        Assert.True(MemoryMarshal.AsBytes(expected.AsSpan()).SequenceEqual(MemoryMarshal.AsBytes(actual)), context);

    private static string LastMessage()
    {
        delegate* unmanaged<byte*> lastError = &NativeExports.LastErrorMessage;
        return Marshal.PtrToStringUTF8((nint)lastError())!;
    }
}

public sealed class BackwardFloat64ExportTests : BackwardTableTypeExportTests<double>;

public sealed class BackwardFloat16ExportTests : BackwardTableTypeExportTests<Half>;

public sealed class BackwardBFloat16ExportTests : BackwardTableTypeExportTests<BFloat16>;
