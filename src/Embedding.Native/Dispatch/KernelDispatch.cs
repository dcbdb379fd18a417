using System;
using System.Runtime.Intrinsics;

namespace Embedding.Native;

/// <summary>
/// Picks the kernel for one call from its <see cref="KernelKey"/>: the newest registered set that
/// specialises the key, else the generic kernel at that width. It always answers, so no caller
/// chooses a fallback itself.
/// </summary>
internal static class KernelDispatch
{
    /// <summary>The widest vector width the running code accelerates (a constant under NativeAOT).</summary>
    public static VectorWidth BestWidth { get; } =
        Vector512.IsHardwareAccelerated ? VectorWidth.Vector512 :
        Vector256.IsHardwareAccelerated ? VectorWidth.Vector256 :
        Vector128.IsHardwareAccelerated ? VectorWidth.Vector128 :
        VectorWidth.Scalar;

    /// <summary>Every width up to <see cref="BestWidth"/>, widest first: the widths tests force.</summary>
    public static VectorWidth[] SupportedWidths { get; } = Array.FindAll(
        [VectorWidth.Vector512, VectorWidth.Vector256, VectorWidth.Vector128, VectorWidth.Scalar],
        width => width <= BestWidth);

    /// <summary>
    /// The widest width, not above <paramref name="requested"/>, whose vector of
    /// <paramref name="elementBytes"/>-byte elements fits in a row of <paramref name="dimension"/>.
    /// </summary>
    public static VectorWidth FitWidth(VectorWidth requested, int dimension, int elementBytes = sizeof(float))
    {
        VectorWidth width = requested;
        while (width != VectorWidth.Scalar && !new KernelShape(dimension, KernelShape.LanesFor((int)width, elementBytes)).Fits)
        {
            width = Narrower(width);
        }

        return width;
    }

    /// <summary>The kernel for <paramref name="key"/>: the newest registered set's, else <paramref name="generic"/>.</summary>
    /// <typeparam name="TKernel">The operation's delegate type.</typeparam>
    public static TKernel Find<TKernel>(KernelKey key, TKernel generic)
        where TKernel : Delegate =>
        Specialised(key) as TKernel ?? generic;

    /// <summary>The newest registered set's kernel for <paramref name="key"/>, or null when no set specialises it.</summary>
    public static Delegate? Specialised(KernelKey key)
    {
        foreach (EmbeddingKernelSet set in EmbeddingKernelRegistry.Sets)
        {
            if (set.Find(key) is { } kernel)
            {
                return kernel;
            }
        }

        return null;
    }

    /// <summary>The index type of <typeparamref name="TIndex"/> (<see cref="int"/> or <see cref="long"/>).</summary>
    public static EmbeddingIndexType IndexTypeOf<TIndex>() =>
        typeof(TIndex) == typeof(int) ? EmbeddingIndexType.Int32 : EmbeddingIndexType.Int64;

    private static VectorWidth Narrower(VectorWidth width) => width switch
    {
        VectorWidth.Vector512 => VectorWidth.Vector256,
        VectorWidth.Vector256 => VectorWidth.Vector128,
        _ => VectorWidth.Scalar,
    };
}
