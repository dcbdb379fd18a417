using System.Numerics;
using System.Runtime.CompilerServices;

namespace Embedding.Native;

/// <summary>
/// The scatter-add for any table type and dimension without a specialised kernel: per position, one
/// <see cref="RowUpdate"/> of the destination row its index names. For float32 that is a loop of whole
/// vectors and, when the dimension is not a multiple of the width, one masked vector that ends at the
/// row end (the overlapping-last-vector trick of the gather would add the overlapped columns twice);
/// float64 finishes the row one column at a time instead; float16 and bfloat16 run per element with
/// torch's roundings.
/// </summary>
/// <typeparam name="TElement"><see cref="float"/>, <see cref="double"/>, <see cref="System.Half"/> or <see cref="BFloat16"/>.</typeparam>
/// <typeparam name="TIndex"><see cref="int"/> or <see cref="long"/>.</typeparam>
internal static class GenericScatterAdd<TElement, TIndex>
    where TElement : unmanaged
    where TIndex : unmanaged, IBinaryInteger<TIndex>
{
    /// <summary>The kernel for <paramref name="width"/>, its frequency-scaled updates rounded as <typeparamref name="TProducts"/>.</summary>
    public static ScatterAddKernel<TElement, TIndex> At<TProducts>(VectorWidth width)
        where TProducts : ITorchProducts =>
        WidthLadder.Select<ScatterAddKernel<TElement, TIndex>>(width, ScatterAdd<Width512, TProducts>, ScatterAdd<Width256, TProducts>, ScatterAdd<Width128, TProducts>, ScatterAdd<WidthScalar, TProducts>);

    /// <summary>The body for <typeparamref name="TWidth"/>; the caller picked a width whose vector fits in a row.</summary>
    private static void ScatterAdd<TWidth, TProducts>(ref readonly TElement gradients, int dimension, ref readonly TIndex indices, ref readonly int positions, nint count, long paddingIndex, ref readonly int rowCounts, ref TElement destination)
        where TWidth : IVectorWidth
        where TProducts : ITorchProducts
    {
        ref int counts = ref Unsafe.AsRef(in rowCounts);
        bool scaled = !Unsafe.IsNullRef(ref counts);

        // Serial in position order: duplicates accumulate in torch's order, and the result cannot
        // depend on how work is split. The parallel backward gives each thread the positions of its rows.
        for (nint k = 0; k < count; k++)
        {
            if (KernelHints.IssuesPrefetches)
            {
                KernelHints.PrefetchRow(ref KernelRows.Of(in destination, KernelRows.Index(in indices, KernelRows.Position(in positions, KernelHints.Ahead<TElement>(k, count, dimension))), dimension), dimension);
            }

            nint i = KernelRows.Position(in positions, k);
            nint row = KernelRows.Index(in indices, i);
            if (row == paddingIndex)
            {
                continue;
            }

            ref TElement gradient = ref KernelRows.Of(in gradients, i, dimension);
            ref TElement target = ref KernelRows.Of(in destination, row, dimension);
            if (scaled)
            {
                RowUpdate.MultiplyAdd<TWidth, TElement, TProducts>(ref gradient, RowUpdate.FrequencyScale<TElement>(Unsafe.Add(ref counts, row)), ref target, dimension);
            }
            else
            {
                RowUpdate.Add<TWidth, TElement>(ref gradient, ref target, dimension);
            }
        }
    }
}
