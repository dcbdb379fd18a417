using System.Runtime.CompilerServices;

namespace Embedding.Native;

/// <summary>
/// One gradient row added into one destination row: the update every scatter makes (the embedding and
/// bag backward, on one thread or split by row range). Whole vectors, then, when the dimension is not a
/// multiple of the width, one masked vector that ends at the row end and updates only the columns the
/// loop did not reach: adding an overlapped column twice would be wrong, not merely redundant.
/// </summary>
internal static class RowUpdate
{
    /// <summary><c>target[c] = target[c] + gradient[c]</c> for every column.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Add<TWidth>(ref float gradient, ref float target, int dimension)
        where TWidth : IVectorWidth
    {
        nuint lanes = (nuint)TWidth.Lanes;
        nuint wholeColumns = (nuint)dimension - (nuint)dimension % lanes;
        for (nuint column = 0; column < wholeColumns; column += lanes)
        {
            TWidth.Add(ref gradient, ref target, column);
        }

        if (wholeColumns != (nuint)dimension)
        {
            nuint lastVector = (nuint)dimension - lanes;
            TWidth.AddMasked(ref gradient, ref target, lastVector, (int)(wholeColumns - lastVector));
        }
    }

    /// <summary><c>target[c] = fma(gradient[c], scale, target[c])</c> for every column, one rounding each.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void MultiplyAdd<TWidth>(ref float gradient, float scale, ref float target, int dimension)
        where TWidth : IVectorWidth
    {
        nuint lanes = (nuint)TWidth.Lanes;
        nuint wholeColumns = (nuint)dimension - (nuint)dimension % lanes;
        for (nuint column = 0; column < wholeColumns; column += lanes)
        {
            TWidth.MultiplyAdd(ref gradient, scale, ref target, column);
        }

        if (wholeColumns != (nuint)dimension)
        {
            nuint lastVector = (nuint)dimension - lanes;
            TWidth.MultiplyAddMasked(ref gradient, scale, ref target, lastVector, (int)(wholeColumns - lastVector));
        }
    }
}
