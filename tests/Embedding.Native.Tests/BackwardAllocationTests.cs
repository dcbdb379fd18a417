using System;
using Xunit;

namespace Embedding.Native.Tests;

/// <summary>The backward hot paths allocate nothing once warmed up (the frequency counts and coalesce slots are pooled).</summary>
public sealed class BackwardAllocationTests
{
    [Theory]
    [InlineData(5)]
    [InlineData(64)]
    [InlineData(301)]
    public void Backward_AllocatesNothingAfterWarmUp(int dim)
    {
        const int rows = 50, count = 200;
        float[] gradOutput = BackwardKernelTests<int>.Gradient(count, dim, seed: dim);
        int[] indices32 = TestData.Indices<int>(count, rows, seed: 1);
        long[] indices64 = TestData.Indices<long>(count, rows, seed: 2);
        float[] gradWeight = new float[rows * dim];
        long[] sparseRows = new long[count];
        float[] values = new float[count * dim];
        long[] unique = new long[count];
        float[] sums = new float[count * dim];

        void Run()
        {
            EmbeddingPrimitives.EmbeddingBackward(gradOutput, indices32, dim, gradWeight);
            EmbeddingPrimitives.EmbeddingBackward(gradOutput, indices64, dim, gradWeight, 3, EmbeddingGradOptions.ScaleGradByFrequency | EmbeddingGradOptions.Accumulate);
            int nnz = EmbeddingPrimitives.EmbeddingSparseBackward(gradOutput, indices32, dim, rows, sparseRows, values, 3, EmbeddingGradOptions.ScaleGradByFrequency);
            EmbeddingPrimitives.SparseCoalesce(sparseRows.AsSpan(0, nnz), values.AsSpan(0, nnz * dim), dim, rows, unique, sums);
        }

        for (int i = 0; i < 10; i++)
        {
            Run();
        }

        Assert.Equal(0, TestAssert.AllocatedBytes(() =>
        {
            for (int i = 0; i < 200; i++)
            {
                Run();
            }
        }));
    }
}
