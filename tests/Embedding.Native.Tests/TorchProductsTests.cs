using System;
using System.Runtime.CompilerServices;
using Xunit;

namespace Embedding.Native.Tests;

/// <summary>
/// The two roundings of torch's <c>a·b + c</c> (<see cref="ITorchProducts"/>): every multiply-add path that follows
/// torch's kernel set, run with <see cref="FusedProducts"/> and with <see cref="RoundedProducts"/> at every vector
/// width, against scalar models, bit for bit. The process picks one of the two from torch's CPU capability
/// (<see cref="TorchProducts.AreFused"/>), so without these tests the other would run only under
/// <c>ATEN_CPU_CAPABILITY=default</c> in the Python suite.
/// </summary>
public sealed class TorchProductsTests
{
    private static readonly VectorWidth[] Widths = [VectorWidth.Vector512, VectorWidth.Vector256, VectorWidth.Vector128, VectorWidth.Scalar];

    /// <summary>Operands whose fused and rounded results differ often: magnitudes spread over six decades.</summary>
    private static float[] Operands(int count, int seed)
    {
        var random = new Random(seed);
        var values = new float[count];
        for (int i = 0; i < values.Length; i++)
        {
            values[i] = (float)((random.NextDouble() * 2 - 1) * Math.Pow(10, random.Next(-3, 3)));
        }

        return values;
    }

    [Fact]
    public void ProcessChoice_IsTorchs()
    {
        bool arm64 = System.Runtime.InteropServices.RuntimeInformation.ProcessArchitecture == System.Runtime.InteropServices.Architecture.Arm64;
        Assert.Equal(TorchCpuCapabilities.Fuses(TorchCpuCapabilities.Current) || arm64, TorchProducts.AreFused);
        Assert.True(FusedProducts.AreFused);
        Assert.False(RoundedProducts.AreFused);
        float a = 1 + MathF.Pow(2, -12), c = -1 - MathF.Pow(2, -11);
        Assert.Equal(MathF.Pow(2, -24), FusedProducts.MultiplyAdd(a, a, c));   // a·a = 1 + 2^-11 + 2^-24 exactly
        Assert.Equal(0f, RoundedProducts.MultiplyAdd(a, a, c));                 // rd(a·a) = 1 + 2^-11
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void FrequencyScaledScatterAdd_Float32_RoundsAsTorchsKernels(bool fused)
    {
        const int Rows = 5, Positions = 40;
        foreach (VectorWidth width in Widths)
        {
            foreach (int dimension in new[] { 1, 3, 4, 7, 8, 15, 16, 17, 33, 64, 100 })
            {
                float[] gradients = Operands(Positions * dimension, dimension);
                int[] indices = new int[Positions];
                int[] counts = new int[Rows];
                for (int i = 0; i < Positions; i++)
                {
                    indices[i] = (i * 7 + dimension) % Rows;
                    counts[indices[i]]++;
                }

                float[] expected = new float[Rows * dimension], actual = new float[Rows * dimension];
                for (int i = 0; i < Positions; i++)
                {
                    float scale = (float)(1.0 / counts[indices[i]]);
                    for (int column = 0; column < dimension; column++)
                    {
                        ref float acc = ref expected[indices[i] * dimension + column];
                        float g = gradients[i * dimension + column];
                        acc = fused ? MathF.FusedMultiplyAdd(g, scale, acc) : g * scale + acc;
                    }
                }

                VectorWidth fitted = KernelDispatch.FitWidth(width, dimension, sizeof(float));
                ScatterAddKernel<float, int> kernel = fused
                    ? GenericScatterAdd<float, int>.At<FusedProducts>(fitted)
                    : GenericScatterAdd<float, int>.At<RoundedProducts>(fitted);
                kernel(in gradients[0], dimension, in indices[0], in Unsafe.NullRef<int>(), Positions, -1, in counts[0], ref actual[0]);
                TestAssert.BitEqual(expected, actual, $"{width} D={dimension} fused={fused}");
            }
        }
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void FrequencyScaledRowUpdate_EveryTableType_RoundsAsTorchsKernels(bool fused)
    {
        foreach (int dimension in new[] { 1, 2, 5, 8, 9, 31, 32, 33, 64, 65, 70, 130 })
        {
            float[] g = Operands(dimension, dimension), t = Operands(dimension, dimension + 1000);
            const float Scale = 1 / 3f;

            double[] gd = Array.ConvertAll(g, x => (double)x), td = Array.ConvertAll(t, x => (double)x);
            double[] wantDoubles = new double[dimension];
            BFloat16[] gb = Array.ConvertAll(g, x => (BFloat16)x), tb = Array.ConvertAll(t, x => (BFloat16)x);
            BFloat16[] wantBFloat16 = new BFloat16[dimension];
            BFloat16 scaleB = (BFloat16)Scale;
            int fusedColumns = fused ? dimension - dimension % RowUpdate.BFloat16FusedChunk : 0;
            for (int c = 0; c < dimension; c++)
            {
                wantDoubles[c] = fused ? Math.FusedMultiplyAdd(gd[c], 1.0 / 3, td[c]) : gd[c] * (1.0 / 3) + td[c];
                wantBFloat16[c] = c < fusedColumns
                    ? (BFloat16)MathF.FusedMultiplyAdd((float)gb[c], (float)scaleB, (float)tb[c])
                    : (BFloat16)((float)tb[c] + (float)(BFloat16)((float)gb[c] * (float)scaleB));
            }

            RunEveryWidth(fused, gd, 1.0 / 3, td, dimension, wantDoubles, BitConverter.DoubleToInt64Bits);
            RunEveryWidth(fused, gb, scaleB, tb, dimension, wantBFloat16, x => x.Bits);
        }
    }

    private static void RunEveryWidth<T>(bool fused, T[] gradient, T scale, T[] target, int dimension, T[] expected, Func<T, long> bits)
        where T : unmanaged
    {
        foreach (VectorWidth width in Widths)
        {
            T[] actual = (T[])target.Clone();
            switch (KernelDispatch.FitWidth(width, dimension, typeof(T) == typeof(double) ? sizeof(double) : sizeof(float)))
            {
                case VectorWidth.Vector512:
                    Update<Width512, T>(fused, gradient, scale, actual, dimension);
                    break;
                case VectorWidth.Vector256:
                    Update<Width256, T>(fused, gradient, scale, actual, dimension);
                    break;
                case VectorWidth.Vector128:
                    Update<Width128, T>(fused, gradient, scale, actual, dimension);
                    break;
                default:
                    Update<WidthScalar, T>(fused, gradient, scale, actual, dimension);
                    break;
            }

            for (int c = 0; c < dimension; c++)
            {
                Assert.True(bits(expected[c]) == bits(actual[c]), $"{typeof(T).Name} {width} D={dimension} column {c} fused={fused}");
            }
        }
    }

    private static void Update<TWidth, T>(bool fused, T[] gradient, T scale, T[] target, int dimension)
        where TWidth : IVectorWidth
        where T : unmanaged
    {
        if (fused)
        {
            RowUpdate.MultiplyAdd<TWidth, T, FusedProducts>(ref gradient[0], scale, ref target[0], dimension);
        }
        else
        {
            RowUpdate.MultiplyAdd<TWidth, T, RoundedProducts>(ref gradient[0], scale, ref target[0], dimension);
        }
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void OptimizerMultiplyAdds_RoundAsTorchsKernels(bool fused)
    {
        // SGD's add_(d, alpha=-lr) and its weight decay, Adagrad's final multiply-add: one vector at each width.
        float[] w = Operands(16, 1), g = Operands(16, 2);
        const float NegativeLr = -0.0123f, WeightDecay = 0.031f;
        float[] want = new float[16];
        for (int c = 0; c < 16; c++)
        {
            float d = fused ? MathF.FusedMultiplyAdd(w[c], WeightDecay, g[c]) : w[c] * WeightDecay + g[c];
            want[c] = fused ? MathF.FusedMultiplyAdd(d, NegativeLr, w[c]) : d * NegativeLr + w[c];
        }

        TestAssert.BitEqual(want, Decayed<Elementwise512>(fused, w, g, NegativeLr, WeightDecay), "512");
        TestAssert.BitEqual(want, Decayed<Elementwise256>(fused, w, g, NegativeLr, WeightDecay), "256");
        TestAssert.BitEqual(want, Decayed<Elementwise128>(fused, w, g, NegativeLr, WeightDecay), "128");
        TestAssert.BitEqual(want, Decayed<ElementwiseScalar>(fused, w, g, NegativeLr, WeightDecay), "scalar");
    }

    private static float[] Decayed<TWidth>(bool fused, float[] weight, float[] gradient, float negativeLr, float weightDecay)
        where TWidth : IElementwiseWidth
    {
        float[] w = (float[])weight.Clone();
        for (nuint column = 0; column < (nuint)w.Length; column += (nuint)TWidth.Lanes)
        {
            if (fused)
            {
                TWidth.SgdWeightDecay<float, FusedProducts>(ref w[0], ref gradient[0], column, negativeLr, weightDecay);
            }
            else
            {
                TWidth.SgdWeightDecay<float, RoundedProducts>(ref w[0], ref gradient[0], column, negativeLr, weightDecay);
            }
        }

        return w;
    }
}
