using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace Embedding.Native;

/// <summary>
/// Σ x·x of a float32 row in torch 1.13's order and rounding: the sum under <c>row.norm(2)</c>, the
/// vectorised last-dimension kernel of <c>norm_kernel_tensor_iterator_impl</c>
/// (aten/src/ATen/native/cpu/ReduceOpsKernel.cpp) as GCC 12 compiled it for each
/// <see cref="TorchCpuCapability"/>:
/// <code>
/// acc[0..L) = 0;  for each whole block of L columns: acc[l] += x[l] * x[l]     (L lanes)
/// s = acc[0]; for j in 1..L-1: s = s + acc[j]                                   (left to right)
/// for the last D mod L columns: s += x * x                                       (in order)
/// </code>
/// L is 8 for the AVX2 and default kernels, 16 for AVX-512. With FMA (AVX2, AVX-512) the block
/// products are fused (<c>fma(x, x, acc)</c>), and so is the tail, except that GCC vectorised the
/// tail loop with a half-width epilogue: when L/2 or more columns are left, the first L/2 of them
/// are squared in a vector (rounded) and then added in order, and only the rest are fused. The
/// default kernels fuse nothing. Confirmed against torch bit for bit (docs/exactness.md#max_norm):
/// AVX2 and default for every D = 1 … 1100, AVX-512 on 172 rows of D = 1 … 1100.
/// </summary>
/// <remarks>
/// The same bits at every ISA tier: a lane is one chain of correctly rounded float operations, and
/// <see cref="Vector128.FusedMultiplyAdd(Vector128{float}, Vector128{float}, Vector128{float})"/> is
/// a single rounding with or without FMA hardware (in software without it). The lanes are held in
/// 128-bit vectors so the SSE tier runs them in registers too.
/// </remarks>
internal static class TorchFloatSquareSum
{
    /// <summary>The sum for <paramref name="capability"/>'s kernels.</summary>
    public static float Of(ref float row, int dimension, TorchCpuCapability capability) =>
        capability switch
        {
            TorchCpuCapability.Avx512 => Fused16(ref row, dimension),
            TorchCpuCapability.Avx2 => Fused8(ref row, dimension),
            _ => Separate8(ref row, dimension),
        };

    /// <summary>AVX2: 8 fused lanes; a tail of 4 or more columns has its first 4 squares rounded.</summary>
    private static float Fused8(ref float row, int dimension)
    {
        Vector128<float> low = Vector128<float>.Zero, high = Vector128<float>.Zero;
        nuint end = (nuint)dimension, whole = end & ~(nuint)7, c = 0;
        for (; c < whole; c += 8)
        {
            Vector128<float> x0 = Vector128.LoadUnsafe(ref row, c), x1 = Vector128.LoadUnsafe(ref row, c + 4);
            low = Vector128.FusedMultiplyAdd(x0, x0, low);
            high = Vector128.FusedMultiplyAdd(x1, x1, high);
        }

        float sum = LeftToRight(low, 0);
        sum = LeftToRight(high, sum);
        return Tail(ref row, c, end, sum, separate: 4);
    }

    /// <summary>AVX-512: 16 fused lanes; a tail of 8 or more columns has its first 8 squares rounded.</summary>
    private static float Fused16(ref float row, int dimension)
    {
        Vector128<float> a0 = Vector128<float>.Zero, a1 = Vector128<float>.Zero, a2 = Vector128<float>.Zero, a3 = Vector128<float>.Zero;
        nuint end = (nuint)dimension, whole = end & ~(nuint)15, c = 0;
        for (; c < whole; c += 16)
        {
            Vector128<float> x0 = Vector128.LoadUnsafe(ref row, c), x1 = Vector128.LoadUnsafe(ref row, c + 4);
            Vector128<float> x2 = Vector128.LoadUnsafe(ref row, c + 8), x3 = Vector128.LoadUnsafe(ref row, c + 12);
            a0 = Vector128.FusedMultiplyAdd(x0, x0, a0);
            a1 = Vector128.FusedMultiplyAdd(x1, x1, a1);
            a2 = Vector128.FusedMultiplyAdd(x2, x2, a2);
            a3 = Vector128.FusedMultiplyAdd(x3, x3, a3);
        }

        float sum = LeftToRight(a0, 0);
        sum = LeftToRight(a1, sum);
        sum = LeftToRight(a2, sum);
        sum = LeftToRight(a3, sum);
        return Tail(ref row, c, end, sum, separate: 8);
    }

    /// <summary>Default kernels: 8 lanes, every product rounded before its add, the tail too.</summary>
    private static float Separate8(ref float row, int dimension)
    {
        Vector128<float> low = Vector128<float>.Zero, high = Vector128<float>.Zero;
        nuint end = (nuint)dimension, whole = end & ~(nuint)7, c = 0;
        for (; c < whole; c += 8)
        {
            Vector128<float> x0 = Vector128.LoadUnsafe(ref row, c), x1 = Vector128.LoadUnsafe(ref row, c + 4);
            low += x0 * x0;
            high += x1 * x1;
        }

        float sum = LeftToRight(low, 0);
        sum = LeftToRight(high, sum);
        for (; c < end; c++)
        {
            float x = Unsafe.Add(ref row, c);
            sum += x * x;
        }

        return sum;
    }

    /// <summary>
    /// <paramref name="sum"/> continued over columns <paramref name="c"/> … <paramref name="end"/> in order:
    /// when at least <paramref name="separate"/> are left, the first <paramref name="separate"/> squares
    /// are rounded before they are added (GCC's vector epilogue); every other column is fused.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static float Tail(ref float row, nuint c, nuint end, float sum, int separate)
    {
        if (end - c >= (nuint)separate)
        {
            for (nuint stop = c + (nuint)separate; c < stop; c++)
            {
                float x = Unsafe.Add(ref row, c);
                float square = x * x;
                sum += square;
            }
        }

        for (; c < end; c++)
        {
            float x = Unsafe.Add(ref row, c);
            sum = float.FusedMultiplyAdd(x, x, sum);
        }

        return sum;
    }

    /// <summary><paramref name="sum"/> + v[0] + v[1] + v[2] + v[3], left to right; the first lane starts the sum when it is +0.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static float LeftToRight(Vector128<float> v, float sum) =>
        sum + v.GetElement(0) + v.GetElement(1) + v.GetElement(2) + v.GetElement(3);
}
