using System.Numerics;
using System.Runtime.CompilerServices;

namespace Embedding.Native;

/// <summary>
/// The gather for any dimension without a specialised kernel: per row, a loop of whole vectors
/// and one last vector that ends at the row end, overlapping the one before it when the
/// dimension is not a multiple of the width (a copy writes the same bits twice, so overlap is safe).
/// </summary>
/// <typeparam name="TElement">An element of the table's size: <see cref="ushort"/>, <see cref="float"/> or <see cref="double"/>.</typeparam>
/// <typeparam name="TIndex"><see cref="int"/> or <see cref="long"/>.</typeparam>
internal static class GenericGather<TElement, TIndex>
    where TElement : unmanaged
    where TIndex : unmanaged, IBinaryInteger<TIndex>
{
    /// <summary>The kernel for <paramref name="width"/>.</summary>
    public static GatherKernel<TElement, TIndex> At(VectorWidth width) =>
        WidthLadder.Select<GatherKernel<TElement, TIndex>>(width, Gather<Width512>, Gather<Width256>, Gather<Width128>, Gather<WidthScalar>);

    /// <summary>The body for <typeparamref name="TWidth"/>; the caller picked a width whose vector fits in a row.</summary>
    private static void Gather<TWidth>(ref readonly TElement weight, int dimension, ref readonly TIndex indices, nint count, ref TElement destination)
        where TWidth : IVectorWidth
    {
        nuint lanes = (nuint)TWidth.LanesOf<TElement>();
        nuint lastVector = (nuint)dimension - lanes;
        ref TElement table = ref Unsafe.AsRef(in weight);
        ref TIndex index = ref Unsafe.AsRef(in indices);
        ref TElement target = ref destination;
        for (nint i = 0; i < count; i++)
        {
            if (KernelHints.IssuesPrefetches)
            {
                KernelHints.PrefetchRow(ref KernelRows.Of(in table, KernelRows.Index(in index, KernelHints.Ahead<TElement>(i, count, dimension)), dimension), dimension);
            }

            ref TElement source = ref KernelRows.Of(in table, KernelRows.Index(in index, i), dimension);
            for (nuint column = 0; column < lastVector; column += lanes)
            {
                TWidth.Copy(ref source, ref target, column);
            }

            TWidth.Copy(ref source, ref target, lastVector);
            target = ref Unsafe.Add(ref target, dimension);
        }
    }
}
