namespace Embedding.Native;

/// <summary>
/// How <see cref="EmbeddingPrimitives.EmbeddingBag{TIndex, TOffset}(System.ReadOnlySpan{TIndex}, System.ReadOnlySpan{TOffset}, System.ReadOnlySpan{float}, int, EmbeddingBagMode, System.Span{float}, bool, System.ReadOnlySpan{float}, long, System.Span{long})"/>
/// reduces the rows of a bag. Values match torch's mode numbering, <c>emb_bag_mode</c> in the C header
/// and the Python package.
/// </summary>
public enum EmbeddingBagMode
{
    /// <summary>The sum of the rows (optionally weighted by per-sample weights).</summary>
    Sum = 0,

    /// <summary>The sum divided by the number of non-padding rows (at least 1).</summary>
    Mean = 1,

    /// <summary>The per-column maximum; the first maximum wins.</summary>
    Max = 2,
}
