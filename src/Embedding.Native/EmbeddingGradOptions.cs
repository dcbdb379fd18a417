using System;

namespace Embedding.Native;

/// <summary>
/// Options of the embedding backward. Values are pinned to the C flags <c>EMB_SCALE_GRAD_BY_FREQ</c>
/// and <c>EMB_ACCUMULATE</c> in embedding_native.h.
/// </summary>
[Flags]
public enum EmbeddingGradOptions
{
    /// <summary>Overwrite the gradient with the plain sum of each row's contributions.</summary>
    None = 0,

    /// <summary>
    /// torch's <c>scale_grad_by_freq</c>: each contribution to row k is multiplied by <c>fl(1/c[k])</c>,
    /// where <c>c[k]</c> counts the positions naming k in the whole call (padding positions included),
    /// and fused into the sum: <c>acc = fma(g, fl(1/c[k]), acc)</c>.
    /// </summary>
    ScaleGradByFrequency = 1,

    /// <summary>Dense gradient only: add into the existing gradient (as autograd does across backward calls) instead of zeroing it first.</summary>
    Accumulate = 2,
}
