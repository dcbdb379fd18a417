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
internal static class GenericScatterAdd
{
    /// <summary>Runs the body for <paramref name="width"/>; the caller picked a width whose vector fits in a row.</summary>
    public static void Run<TIndex>(VectorWidth width, ref float source, int dimension, ref TIndex indices, nint count, long paddingIndex, ref int counts, ref float destination)
        where TIndex : unmanaged, IBinaryInteger<TIndex>
    {
        switch (width)
        {
            case VectorWidth.Vector512:
                ScatterAdd<TIndex, Width512>(ref source, dimension, ref indices, count, paddingIndex, ref counts, ref destination);
                break;
            case VectorWidth.Vector256:
                ScatterAdd<TIndex, Width256>(ref source, dimension, ref indices, count, paddingIndex, ref counts, ref destination);
                break;
            case VectorWidth.Vector128:
                ScatterAdd<TIndex, Width128>(ref source, dimension, ref indices, count, paddingIndex, ref counts, ref destination);
                break;
            default:
                ScatterAdd<TIndex, WidthScalar>(ref source, dimension, ref indices, count, paddingIndex, ref counts, ref destination);
                break;
        }
    }

    private static void ScatterAdd<TIndex, TWidth>(ref float source, int dimension, ref TIndex indices, nint count, long paddingIndex, ref int counts, ref float destination)
        where TIndex : unmanaged, IBinaryInteger<TIndex>
        where TWidth : IVectorWidth
    {
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
