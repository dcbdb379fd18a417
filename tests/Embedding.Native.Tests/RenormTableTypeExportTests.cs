using System;
using System.Linq;
using Embedding.Native.Interop;
using Xunit;

namespace Embedding.Native.Tests;

/// <summary>
/// <c>emb_embedding_renorm</c> on float64, float16 and bfloat16 tables, called in-process through an
/// unmanaged function pointer: the same bits as the span API for both index types, the buffer checks
/// sized by the element type, and refusal of element types torch cannot renormalise.
/// </summary>
public sealed unsafe class RenormTableTypeExportTests
{
    private static readonly delegate* unmanaged<void*, int, long, long, void*, int, long, double, double, int> Renorm = &NativeExports.EmbeddingRenorm;

    private const int Int32 = (int)EmbDtype.Int32, Int64 = (int)EmbDtype.Int64;

    [Theory]
    [InlineData(2.0)]
    [InlineData(1.0)]
    [InlineData(0.0)]
    [InlineData(3.0)]
    [InlineData(double.PositiveInfinity)]
    public void Renorm_Float64MatchesTheSpanApi(double p) => Check<double>(EmbDtype.Float64, p);

    [Theory]
    [InlineData(2.0)]
    [InlineData(1.0)]
    [InlineData(0.0)]
    [InlineData(0.5)]
    [InlineData(double.PositiveInfinity)]
    public void Renorm_Float16MatchesTheSpanApi(double p) => Check<Half>(EmbDtype.Float16, p);

    [Theory]
    [InlineData(2.0)]
    [InlineData(1.0)]
    [InlineData(0.0)]
    [InlineData(3.0)]
    [InlineData(double.PositiveInfinity)]
    public void Renorm_BFloat16MatchesTheSpanApi(double p) => Check<BFloat16>(EmbDtype.BFloat16, p);

    [Fact]
    public void Renorm_SizesTheOverlapCheckByTheElementType()
    {
        // Four float64 elements are 32 bytes: indices at byte 24 overlap them.
        double[] wide = new double[8];
        fixed (double* w = wide)
        {
            *(long*)(w + 3) = 0;
            Assert.Equal(EmbStatus.InvalidArgument, (EmbStatus)Renorm(w, (int)EmbDtype.Float64, 2, 2, w + 3, Int64, 1, 1.0, 2.0));
        }

        // Four float16 elements are 8 bytes: indices right after them do not overlap.
        Half[] narrow = [(Half)3, (Half)4, (Half)6, (Half)8, default, default, default, default];
        fixed (Half* w = narrow)
        {
            *(int*)(w + 4) = 1;
            Assert.Equal(EmbStatus.Ok, (EmbStatus)Renorm(w, (int)EmbDtype.Float16, 2, 2, w + 4, Int32, 1, 1.0, 2.0));
        }

        Half[] expected = [(Half)6, (Half)8];
        EmbeddingPrimitives.EmbeddingRenorm(expected, 2, [0], 1.0);
        Assert.Equal(expected, narrow[2..4]);
        Assert.Equal((Half)3, narrow[0]);
    }

    [Fact]
    public void Renorm_RefusesNonFloatingWeightTypes()
    {
        double[] weight = [3, 4];
        long[] indices = [0];
        fixed (double* w = weight)
        fixed (long* i = indices)
        {
            foreach (int dtype in new[] { 0, Int32, Int64, 7 })
            {
                Assert.Equal(EmbStatus.UnsupportedDtype, (EmbStatus)Renorm(w, dtype, 1, 2, i, Int64, 1, 1.0, 2.0));
                Assert.Contains($"not dtype {dtype}", LastMessage());
            }
        }

        Assert.Equal([3.0, 4.0], weight);
    }

    private static void Check<TElement>(EmbDtype dtype, double p)
        where TElement : unmanaged
    {
        const int rows = 30, dim = 45;
        TElement[] original = RenormTableTypeTests<TElement>.Table(rows, dim, seed: 2);
        int[] indices32 = TestData.Indices<int>(50, rows, seed: 3);
        long[] indices64 = indices32.Select(i => (long)i).ToArray();
        TElement[] expected = original.ToArray();
        EmbeddingPrimitives.EmbeddingRenorm<TElement, long>(expected, dim, indices64, 2.0, p, KernelDispatch.BestWidth);
        Assert.False(System.Runtime.InteropServices.MemoryMarshal.AsBytes(expected.AsSpan()).SequenceEqual(System.Runtime.InteropServices.MemoryMarshal.AsBytes(original.AsSpan())), "some rows are rescaled");

        TElement[] viaInt32 = original.ToArray(), viaInt64 = original.ToArray();
        fixed (TElement* w32 = viaInt32)
        fixed (TElement* w64 = viaInt64)
        fixed (int* i32 = indices32)
        fixed (long* i64 = indices64)
        {
            Assert.Equal(EmbStatus.Ok, (EmbStatus)Renorm(w32, (int)dtype, rows, dim, i32, Int32, 50, 2.0, p));
            Assert.Equal(EmbStatus.Ok, (EmbStatus)Renorm(w64, (int)dtype, rows, dim, i64, Int64, 50, 2.0, p));

            // A bad index changes nothing.
            TElement[] before = viaInt64.ToArray();
            i64[7] = rows;
            Assert.Equal(EmbStatus.IndexOutOfRange, (EmbStatus)Renorm(w64, (int)dtype, rows, dim, i64, Int64, 50, 0.5, p));
            i64[7] = indices32[7];
            RenormTableTypeTests<TElement>.AssertBitEqual(before, viaInt64, "after a bad index");
        }

        RenormTableTypeTests<TElement>.AssertBitEqual(expected, viaInt32, $"{dtype}, int32 indices, p {p}");
        RenormTableTypeTests<TElement>.AssertBitEqual(expected, viaInt64, $"{dtype}, int64 indices, p {p}");
    }

    private static string LastMessage()
    {
        delegate* unmanaged<byte*> lastError = &NativeExports.LastErrorMessage;
        return System.Runtime.InteropServices.Marshal.PtrToStringUTF8((nint)lastError())!;
    }
}
