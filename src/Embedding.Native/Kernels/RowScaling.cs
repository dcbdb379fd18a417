using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace Embedding.Native;

/// <summary>
/// <c>row[c] = rd(row[c] · s)</c> in place: the rescale of renormalisation, one loop for the IEEE
/// types the vector registers hold and one for the 16-bit types.
/// </summary>
internal static class RowScaling
{
    /// <summary>
    /// <c>row[c] *= scale</c> for float and double: whole vectors of the register <typeparamref name="TWidth"/>
    /// names, then one column at a time (not an overlapping last vector: the overlapped columns would be
    /// scaled twice). Each product is one correctly rounded multiply at every width.
    /// </summary>
    public static void Multiply<T, TWidth>(ref T row, int dimension, T scale)
        where T : unmanaged, IFloatingPointIeee754<T>
        where TWidth : IElementwiseWidth
    {
        nuint end = (nuint)dimension, column = 0;
        if (TWidth.Lanes == Vector512<float>.Count)
        {
            for (; column + (nuint)Vector512<T>.Count <= end; column += (nuint)Vector512<T>.Count)
            {
                (Vector512.LoadUnsafe(ref row, column) * scale).StoreUnsafe(ref row, column);
            }
        }
        else if (TWidth.Lanes == Vector256<float>.Count)
        {
            for (; column + (nuint)Vector256<T>.Count <= end; column += (nuint)Vector256<T>.Count)
            {
                (Vector256.LoadUnsafe(ref row, column) * scale).StoreUnsafe(ref row, column);
            }
        }
        else if (TWidth.Lanes == Vector128<float>.Count)
        {
            for (; column + (nuint)Vector128<T>.Count <= end; column += (nuint)Vector128<T>.Count)
            {
                (Vector128.LoadUnsafe(ref row, column) * scale).StoreUnsafe(ref row, column);
            }
        }

        for (; column < end; column++)
        {
            Unsafe.Add(ref row, column) *= scale;
        }
    }

    /// <summary>
    /// <c>row[c] = rd(float(row[c]) · float(s))</c> for float16 and bfloat16, with <c>s = rd((float)quotient)</c>:
    /// the double quotient converted as torch's <c>Scalar.to&lt;Half&gt;()</c> / <c>to&lt;BFloat16&gt;()</c>
    /// does (through float). Two 16-bit significands multiply exactly in float, so the one rounding is
    /// the store's. One column at a time at every width.
    /// </summary>
    public static void MultiplyRounded<TElement, TArithmetic>(ref TElement row, int dimension, double quotient)
        where TElement : unmanaged
        where TArithmetic : IRenormArithmetic<TElement, float>
    {
        float scale = TArithmetic.Widen(TArithmetic.Narrow((float)quotient));
        for (int c = 0; c < dimension; c++)
        {
            ref TElement x = ref Unsafe.Add(ref row, c);
            x = TArithmetic.Narrow(TArithmetic.Widen(x) * scale);
        }
    }
}
