using System;
using System.Runtime.Intrinsics;

namespace Embedding.Native;

/// <summary>
/// Picks the kernel for one call from (operation, index type, dimension, width): the newest
/// registered set that specialises the dimension at the widest width whose vector fits in a
/// row, else the generic kernel at that width.
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

    /// <summary>The widest width, not above <paramref name="requested"/>, whose vector fits in a row of <paramref name="dimension"/>.</summary>
    public static VectorWidth FitWidth(VectorWidth requested, int dimension)
    {
        VectorWidth width = requested;
        while (width != VectorWidth.Scalar && !new KernelShape(dimension, KernelShape.LanesFor((int)width)).Fits)
        {
            width = Narrower(width);
        }

        return width;
    }

    /// <summary>The specialised int32 gather kernel for this dimension and width, or null for the generic one.</summary>
    public static GatherKernel<int>? GatherInt32(int dimension, VectorWidth width)
    {
        foreach (EmbeddingKernelSet set in EmbeddingKernelRegistry.Sets)
        {
            if (set.GetGatherInt32(dimension, width) is { } kernel)
            {
                return kernel;
            }
        }

        return null;
    }

    /// <summary>The specialised int64 gather kernel for this dimension and width, or null for the generic one.</summary>
    public static GatherKernel<long>? GatherInt64(int dimension, VectorWidth width)
    {
        foreach (EmbeddingKernelSet set in EmbeddingKernelRegistry.Sets)
        {
            if (set.GetGatherInt64(dimension, width) is { } kernel)
            {
                return kernel;
            }
        }

        return null;
    }

    /// <summary>The specialised int32 scatter-add kernel for this dimension and width, or null for the generic one.</summary>
    public static ScatterAddKernel<int>? ScatterAddInt32(int dimension, VectorWidth width)
    {
        foreach (EmbeddingKernelSet set in EmbeddingKernelRegistry.Sets)
        {
            if (set.GetScatterAddInt32(dimension, width) is { } kernel)
            {
                return kernel;
            }
        }

        return null;
    }

    /// <summary>The specialised int64 scatter-add kernel for this dimension and width, or null for the generic one.</summary>
    public static ScatterAddKernel<long>? ScatterAddInt64(int dimension, VectorWidth width)
    {
        foreach (EmbeddingKernelSet set in EmbeddingKernelRegistry.Sets)
        {
            if (set.GetScatterAddInt64(dimension, width) is { } kernel)
            {
                return kernel;
            }
        }

        return null;
    }

    /// <summary>The specialised int32 bag-forward kernel for this reduction, dimension and width, or null for the generic one.</summary>
    public static BagKernel<int>? BagInt32(EmbeddingBagMode mode, bool weighted, int dimension, VectorWidth width)
    {
        foreach (EmbeddingKernelSet set in EmbeddingKernelRegistry.Sets)
        {
            if (set.GetBagInt32(mode, weighted, dimension, width) is { } kernel)
            {
                return kernel;
            }
        }

        return null;
    }

    /// <summary>The specialised int64 bag-forward kernel for this reduction, dimension and width, or null for the generic one.</summary>
    public static BagKernel<long>? BagInt64(EmbeddingBagMode mode, bool weighted, int dimension, VectorWidth width)
    {
        foreach (EmbeddingKernelSet set in EmbeddingKernelRegistry.Sets)
        {
            if (set.GetBagInt64(mode, weighted, dimension, width) is { } kernel)
            {
                return kernel;
            }
        }

        return null;
    }

    private static VectorWidth Narrower(VectorWidth width) => width switch
    {
        VectorWidth.Vector512 => VectorWidth.Vector256,
        VectorWidth.Vector256 => VectorWidth.Vector128,
        _ => VectorWidth.Scalar,
    };
}
