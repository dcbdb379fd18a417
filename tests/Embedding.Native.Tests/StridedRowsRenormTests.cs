using System;
using Embedding.Native.Interop;
using Xunit;

namespace Embedding.Native.Tests;

/// <summary>
/// Renorm of a table torch sees with strided rows (<see cref="StridedRowsRenorm{TElement, TSum, TBase}"/>,
/// <c>emb_embedding_renorm_strided_rows</c>): the float32 and bfloat16 2-norms are torch's scalar
/// column sums, against plain loops; every other norm and type is the contiguous table's.
/// </summary>
public sealed unsafe class StridedRowsRenormTests
{
    private static readonly delegate* unmanaged<void*, int, long, long, void*, int, long, double, double, int> Renorm = &NativeExports.EmbeddingRenorm;
    private static readonly delegate* unmanaged<void*, int, long, long, void*, int, long, double, double, int> RenormStridedRows = &NativeExports.EmbeddingRenormStridedRows;

    private static readonly double[] NormTypes = [2, 1, 3, 0.5, double.PositiveInfinity, 0, -1];

    [Fact]
    public void Float32TwoNorm_IsOneColumnSumFusedAsTorchsKernels()
    {
        bool fused = TorchCpuCapabilities.Fuses(TorchCpuCapabilities.Current);
        for (int dim = 1; dim <= 140; dim++)
        {
            float[] row = RenormTests<int>.SignedTable(1, dim, seed: dim);
            float acc = 0;
            foreach (float x in row)
            {
                if (fused)
                {
                    acc = MathF.FusedMultiplyAdd(x, x, acc);
                }
                else
                {
                    float square = x * x;
                    acc += square;
                }
            }

            double actual = RowNorms<float, float, StridedRowsRenorm<float, float, Float32Renorm>>.Of(ref row[0], dim, 2.0);
            Assert.Equal((double)MathF.Sqrt(acc), actual);
        }
    }

    [Fact]
    public void BFloat16TwoNorm_RoundsEverySquareAndSum()
    {
        static float Rd(float x) => (float)(BFloat16)x;
        for (int dim = 1; dim <= 140; dim++)
        {
            float[] values = RenormTests<int>.SignedTable(1, dim, seed: dim + 7);
            BFloat16[] row = Array.ConvertAll(values, x => (BFloat16)x);
            float acc = 0;
            foreach (BFloat16 b in row)
            {
                float x = (float)b;
                acc = Rd(acc + Rd(x * x));
            }

            double actual = RowNorms<BFloat16, float, StridedRowsRenorm<BFloat16, float, BFloat16Renorm>>.Of(ref row[0], dim, 2.0);
            Assert.Equal((double)Rd(MathF.Sqrt(acc)), actual);
        }
    }

    [Fact]
    public void OtherNorms_AreTheContiguousTables()
    {
        for (int dim = 1; dim <= 70; dim++)
        {
            float[] row = RenormTests<int>.SignedTable(1, dim, seed: dim + 3);
            BFloat16[] half = Array.ConvertAll(row, x => (BFloat16)x);
            foreach (double p in NormTypes)
            {
                if (p == 2)
                {
                    continue;
                }

                Assert.Equal(RowNorms<float, float, Float32Renorm>.Of(ref row[0], dim, p), RowNorms<float, float, StridedRowsRenorm<float, float, Float32Renorm>>.Of(ref row[0], dim, p));
                Assert.Equal(RowNorms<BFloat16, float, BFloat16Renorm>.Of(ref half[0], dim, p), RowNorms<BFloat16, float, StridedRowsRenorm<BFloat16, float, BFloat16Renorm>>.Of(ref half[0], dim, p));
            }
        }
    }

    [Fact]
    public void Export_RescalesByTheStridedNorm()
    {
        const int rows = 40, dim = 37;
        float[] original = RenormTests<int>.SignedTable(rows, dim, seed: 11);
        long[] indices = [3, 9, 3, 0, 39, 17];
        float[] contiguous = (float[])original.Clone(), strided = (float[])original.Clone();
        fixed (float* c = contiguous, s = strided)
        fixed (long* i = indices)
        {
            Assert.Equal(0, Renorm(c, (int)EmbDtype.Float32, rows, dim, i, (int)EmbDtype.Int64, indices.Length, 1.0, 2.0));
            Assert.Equal(0, RenormStridedRows(s, (int)EmbDtype.Float32, rows, dim, i, (int)EmbDtype.Int64, indices.Length, 1.0, 2.0));
        }

        foreach (long k in indices)
        {
            ReadOnlySpan<float> row = original.AsSpan((int)k * dim, dim);
            double norm = RowNorms<float, float, StridedRowsRenorm<float, float, Float32Renorm>>.Of(ref original[(int)k * dim], dim, 2.0);
            float scale = (float)(1.0 / (norm + 1e-7));
            for (int c = 0; c < dim; c++)
            {
                Assert.Equal(row[c] * scale, strided[(int)k * dim + c]);
            }
        }

        // The two exports differ on some element of these rows (the norms' rounding).
        Assert.NotEqual(contiguous, strided);
    }
}
