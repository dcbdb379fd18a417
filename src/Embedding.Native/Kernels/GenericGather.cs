using System.Numerics;
using System.Runtime.CompilerServices;

namespace Embedding.Native;

/// <summary>
/// The gather for any dimension without a specialised kernel: per row, a loop of whole vectors
/// and one last vector that ends at the row end, overlapping the one before it when the
/// dimension is not a multiple of the width (a copy writes the same bits twice, so overlap is safe).
/// </summary>
internal static class GenericGather
{
    /// <summary>Runs the body for <paramref name="width"/>; the caller picked a width whose vector fits in a row.</summary>
    public static void Run<TIndex>(VectorWidth width, ref float weight, int dimension, ref TIndex indices, nint count, ref float destination)
        where TIndex : unmanaged, IBinaryInteger<TIndex>
    {
        switch (width)
        {
            case VectorWidth.Vector512:
                Gather<TIndex, Width512>(ref weight, dimension, ref indices, count, ref destination);
                break;
            case VectorWidth.Vector256:
                Gather<TIndex, Width256>(ref weight, dimension, ref indices, count, ref destination);
                break;
            case VectorWidth.Vector128:
                Gather<TIndex, Width128>(ref weight, dimension, ref indices, count, ref destination);
                break;
            default:
                Gather<TIndex, WidthScalar>(ref weight, dimension, ref indices, count, ref destination);
                break;
        }
    }

    private static void Gather<TIndex, TWidth>(ref float weight, int dimension, ref TIndex indices, nint count, ref float destination)
        where TIndex : unmanaged, IBinaryInteger<TIndex>
        where TWidth : IVectorWidth
    {
        nuint lanes = (nuint)TWidth.Lanes;
        nuint lastVector = (nuint)dimension - lanes;
        ref float target = ref destination;
        for (nint i = 0; i < count; i++)
        {
            KernelHints.PrefetchRow(ref Unsafe.Add(ref weight, nint.CreateTruncating(Unsafe.Add(ref indices, KernelHints.Ahead(i, count, dimension))) * dimension), dimension);
            ref float source = ref Unsafe.Add(ref weight, nint.CreateTruncating(Unsafe.Add(ref indices, i)) * dimension);
            for (nuint column = 0; column < lastVector; column += lanes)
            {
                TWidth.Copy(ref source, ref target, column);
            }

            TWidth.Copy(ref source, ref target, lastVector);
            target = ref Unsafe.Add(ref target, dimension);
        }
    }
}
