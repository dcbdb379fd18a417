using System;

namespace Embedding.Native;

/// <summary>
/// A table of kernels specialised for a fixed set of embedding dimensions. The generator derives
/// every <see cref="EmbeddingKernelsAttribute"/> class from this type and fills in the lookups;
/// a lookup returns <see langword="null"/> for a (dimension, width) pair the set does not hold.
/// </summary>
public abstract class EmbeddingKernelSet
{
    /// <summary>The dimensions this set specialises, ascending.</summary>
    public abstract ReadOnlySpan<int> Dimensions { get; }

    /// <summary>The gather kernel for int32 indices, or <see langword="null"/>.</summary>
    /// <param name="embeddingDim">Columns per row.</param>
    /// <param name="width">The vector width the kernel body uses.</param>
    public abstract GatherKernel<int>? GetGatherInt32(int embeddingDim, VectorWidth width);

    /// <summary>The gather kernel for int64 indices, or <see langword="null"/>.</summary>
    /// <param name="embeddingDim">Columns per row.</param>
    /// <param name="width">The vector width the kernel body uses.</param>
    public abstract GatherKernel<long>? GetGatherInt64(int embeddingDim, VectorWidth width);

    /// <summary>The scatter-add (backward) kernel for int32 indices, or <see langword="null"/>.</summary>
    /// <remarks>Virtual, not abstract, so kernel sets written before the backward existed keep compiling.</remarks>
    /// <param name="embeddingDim">Columns per row.</param>
    /// <param name="width">The vector width the kernel body uses.</param>
    public virtual ScatterAddKernel<int>? GetScatterAddInt32(int embeddingDim, VectorWidth width) => null;

    /// <summary>The scatter-add (backward) kernel for int64 indices, or <see langword="null"/>.</summary>
    /// <remarks>Virtual, not abstract, so kernel sets written before the backward existed keep compiling.</remarks>
    /// <param name="embeddingDim">Columns per row.</param>
    /// <param name="width">The vector width the kernel body uses.</param>
    public virtual ScatterAddKernel<long>? GetScatterAddInt64(int embeddingDim, VectorWidth width) => null;

    /// <summary>The bag-forward kernel for int32 indices, or <see langword="null"/>.</summary>
    /// <remarks>Virtual, not abstract, so kernel sets written before the bag forward existed keep compiling.</remarks>
    /// <param name="mode">The reduction.</param>
    /// <param name="weighted">True for the per-sample-weighted sum (only with <see cref="EmbeddingBagMode.Sum"/>).</param>
    /// <param name="embeddingDim">Columns per row.</param>
    /// <param name="width">The vector width the kernel body uses.</param>
    public virtual BagKernel<int>? GetBagInt32(EmbeddingBagMode mode, bool weighted, int embeddingDim, VectorWidth width) => null;

    /// <summary>The bag-forward kernel for int64 indices, or <see langword="null"/>.</summary>
    /// <remarks>Virtual, not abstract, so kernel sets written before the bag forward existed keep compiling.</remarks>
    /// <param name="mode">The reduction.</param>
    /// <param name="weighted">True for the per-sample-weighted sum (only with <see cref="EmbeddingBagMode.Sum"/>).</param>
    /// <param name="embeddingDim">Columns per row.</param>
    /// <param name="width">The vector width the kernel body uses.</param>
    public virtual BagKernel<long>? GetBagInt64(EmbeddingBagMode mode, bool weighted, int embeddingDim, VectorWidth width) => null;
}
