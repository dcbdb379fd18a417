using System;
using Xunit;

namespace Embedding.Native.Tests;

/// <summary>The forward hot path allocates nothing once warmed up, for specialised and generic dimensions.</summary>
public sealed class AllocationTests
{
    [Theory]
    [InlineData(5)]
    [InlineData(64)]
    [InlineData(300)]
    [InlineData(301)]
    [InlineData(4096)]
    public void Embedding_AllocatesNothingAfterWarmUp(int dim)
    {
        float[] table = TestData.Table(50, dim, seed: dim);
        int[] indices32 = TestData.Indices<int>(33, 50, seed: 1);
        long[] indices64 = TestData.Indices<long>(33, 50, seed: 2);
        float[] destination = new float[33 * dim];

        for (int i = 0; i < 10; i++)
        {
            EmbeddingPrimitives.Embedding(indices32, table, dim, destination);
            EmbeddingPrimitives.Embedding(indices64, table, dim, destination);
        }

        Assert.Equal(0, TestAssert.AllocatedBytes(() =>
        {
            for (int i = 0; i < 1000; i++)
            {
                EmbeddingPrimitives.Embedding(indices32, table, dim, destination);
                EmbeddingPrimitives.Embedding(indices64, table, dim, destination);
            }
        }));
    }
}
