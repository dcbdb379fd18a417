using System;
using Xunit;

namespace Embedding.Native.Tests;

/// <summary>padding_idx normalisation, as torch.nn.Embedding(4, 3, padding_idx=...) does it.</summary>
public sealed class PaddingIndexTests
{
    [Theory]
    [InlineData(-4, 0)]
    [InlineData(-1, 3)]
    [InlineData(0, 0)]
    [InlineData(3, 3)]
    public void NormalizePaddingIndex_CountsNegativeValuesFromTheEnd(long paddingIndex, long expected) =>
        Assert.Equal(expected, EmbeddingPrimitives.NormalizePaddingIndex(paddingIndex, 4));

    [Theory]
    [InlineData(-6)]
    [InlineData(-5)]
    [InlineData(4)]
    [InlineData(5)]
    public void NormalizePaddingIndex_ThrowsOutsideTheTable(long paddingIndex)
    {
        var error = Assert.Throws<ArgumentOutOfRangeException>(() => EmbeddingPrimitives.NormalizePaddingIndex(paddingIndex, 4));
        Assert.StartsWith("Padding_idx must be within num_embeddings", error.Message);
    }

    [Fact]
    public void NormalizePaddingIndex_AcceptsZeroForAnEmptyTable() =>
        Assert.Equal(0, EmbeddingPrimitives.NormalizePaddingIndex(0, 0));
}
