using System.Numerics;
using System.Runtime.CompilerServices;

namespace Embedding.Native;

/// <summary>
/// The scatter-add for any dimension without a specialised kernel: per position, a loop of whole
/// vectors and, when the dimension is not a multiple of the width, one masked vector that ends at the
/// row end. The overlapping-last-vector trick of the gather would add the overlapped columns twice,
/// so the tail vector updates only the columns the loop has not reached and stores the others back
/// unchanged.
/// </summary>
/// <typeparam name="TIndex"><see cref="int"/> or <see cref="long"/>.</typeparam>
internal static class GenericScatterAdd<TIndex>
    where TIndex : unmanaged, IBinaryInteger<TIndex>
{
    /// <summary>The kernel for <paramref name="width"/>.</summary>
    public static ScatterAddKernel<TIndex> At(VectorWidth width) =>
        WidthLadder.Select<ScatterAddKernel<TIndex>>(width, ScatterAdd<Width512>, ScatterAdd<Width256>, ScatterAdd<Width128>, ScatterAdd<WidthScalar>);

    /// <summary>The body for <typeparamref name="TWidth"/>; the caller picked a width whose vector fits in a row.</summary>
    private static void ScatterAdd<TWidth>(ref readonly float gradients, int dimension, ref readonly TIndex positions, nint count, long paddingIndex, ref readonly int rowCounts, ref float destination)
        where TWidth : IVectorWidth
    {
        ref float source = ref Unsafe.AsRef(in gradients);
        ref TIndex indices = ref Unsafe.AsRef(in positions);
        ref int counts = ref Unsafe.AsRef(in rowCounts);
        bool scaled = !Unsafe.IsNullRef(ref counts);

        // Serial in position order: duplicates accumulate in torch's order, and the result cannot
        // depend on how work is split. A parallel version must partition by destination row.
        for (nint i = 0; i < count; i++)
        {
            KernelHints.PrefetchRow(ref Unsafe.Add(ref destination, nint.CreateTruncating(Unsafe.Add(ref indices, KernelHints.Ahead(i, count, dimension))) * dimension), dimension);
            nint row = nint.CreateTruncating(Unsafe.Add(ref indices, i));
            if (row == paddingIndex)
            {
                continue;
            }

            ref float gradient = ref Unsafe.Add(ref source, i * dimension);
            ref float target = ref Unsafe.Add(ref destination, row * dimension);
            if (scaled)
            {
                RowUpdate.MultiplyAdd<TWidth>(ref gradient, (float)(1.0 / Unsafe.Add(ref counts, row)), ref target, dimension);
            }
            else
            {
                RowUpdate.Add<TWidth>(ref gradient, ref target, dimension);
            }
        }
    }
}
