using System;
using System.Threading;

namespace Embedding.Native;

/// <summary>
/// The kernel sets the dispatcher consults, newest first. Generated sets register themselves
/// from a module initializer; the library's own <c>DefaultEmbeddingKernels</c> registers the
/// same way, so a consumer's set loaded later takes precedence for the dimensions it names.
/// </summary>
/// <remarks>Thread-safe: registration swaps an immutable array; lookups read a snapshot.</remarks>
public static class EmbeddingKernelRegistry
{
    private static EmbeddingKernelSet[] s_sets = [];

    /// <summary>Adds <paramref name="set"/> ahead of the sets already registered. A second set of the same type is ignored.</summary>
    /// <param name="set">The kernel set, usually a generated one.</param>
    public static void Register(EmbeddingKernelSet set)
    {
        ArgumentNullException.ThrowIfNull(set);
        while (true)
        {
            EmbeddingKernelSet[] current = Volatile.Read(ref s_sets);
            if (Array.Exists(current, existing => existing.GetType() == set.GetType()))
            {
                return;
            }

            EmbeddingKernelSet[] updated = [set, .. current];
            if (Interlocked.CompareExchange(ref s_sets, updated, current) == current)
            {
                return;
            }
        }
    }

    /// <summary>The registered sets, newest first.</summary>
    public static ReadOnlySpan<EmbeddingKernelSet> Sets => Volatile.Read(ref s_sets);

    /// <summary>True when some registered set specialises <paramref name="embeddingDim"/>.</summary>
    /// <param name="embeddingDim">Columns per row.</param>
    public static bool IsSpecialised(int embeddingDim)
    {
        foreach (EmbeddingKernelSet set in Sets)
        {
            if (set.Dimensions.Contains(embeddingDim))
            {
                return true;
            }
        }

        return false;
    }
}
