using System;
using System.Linq;
using System.Numerics;
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

    [Fact]
    public void Lookups_FuseWhereTheCpuHasAvx2AndFma()
    {
        // caffe2's lookup kernels: AVX2 + FMA (and the OS's YMM state) by CPUID; ATEN_CPU_CAPABILITY plays no part.
        const uint Fma = 1u << 12, Avx = 1u << 28, Avx2 = 1u << 5;
        Assert.True(TorchCpuCapabilities.HasAvx2AndFma(new CpuFeatures(Fma | Avx, Avx2, 0, 0x7)));
        Assert.False(TorchCpuCapabilities.HasAvx2AndFma(new CpuFeatures(Avx, Avx2, 0, 0x7)));          // no FMA
        Assert.False(TorchCpuCapabilities.HasAvx2AndFma(new CpuFeatures(Fma | Avx, 0, 0, 0x7)));       // no AVX2 (Sandy Bridge)
        Assert.False(TorchCpuCapabilities.HasAvx2AndFma(new CpuFeatures(Fma | Avx, Avx2, 0, 0x3)));    // the OS saves no YMM state
        bool x64 = System.Runtime.InteropServices.RuntimeInformation.ProcessArchitecture == System.Runtime.InteropServices.Architecture.X64;
        Assert.Equal(x64 && TorchCpuCapabilities.HasAvx2AndFma(CpuFeatures.Read()), TorchProducts.LookupsAreFused);
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
        // SGD's add_(d, alpha=-lr) with and without its weight decay, and Adagrad's final multiply-add, in float and
        // double: whole vectors of every width against the scalar formulas.
        OptimizerSteps(fused, Operands(32, 1), Operands(32, 2), Operands(32, 3), -0.0123f, 0.031f, 1e-3f);
        OptimizerSteps(fused, Array.ConvertAll(Operands(32, 4), x => x * (1 + 1e-9)), Array.ConvertAll(Operands(32, 5), x => (double)x / 3),
            Array.ConvertAll(Operands(32, 6), x => Math.Abs((double)x)), -0.0123, 0.031, 1e-3);
    }

    private static void OptimizerSteps<T>(bool fused, T[] weight, T[] gradient, T[] state, T negativeLr, T weightDecay, T eps)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        T Madd(T a, T b, T c) => fused ? T.FusedMultiplyAdd(a, b, c) : a * b + c;
        int n = weight.Length;
        T[] sgd = new T[n], decayed = new T[n], adagradWeight = new T[n], adagradState = new T[n];
        for (int c = 0; c < n; c++)
        {
            sgd[c] = Madd(gradient[c], negativeLr, weight[c]);
            decayed[c] = Madd(Madd(weight[c], weightDecay, gradient[c]), negativeLr, weight[c]);
            adagradState[c] = state[c] + gradient[c] * gradient[c];
            adagradWeight[c] = Madd(gradient[c] / (T.Sqrt(adagradState[c]) + eps), negativeLr, weight[c]);
        }

        // The operands tell the two roundings apart, so a kernel that took the other one would fail.
        Assert.Contains(Enumerable.Range(0, n), c => decayed[c] != (fused
            ? (weight[c] * weightDecay + gradient[c]) * negativeLr + weight[c]
            : T.FusedMultiplyAdd(T.FusedMultiplyAdd(weight[c], weightDecay, gradient[c]), negativeLr, weight[c])));

        AssertSteps<T, Elementwise512>(fused, weight, gradient, state, negativeLr, weightDecay, eps, sgd, decayed, adagradWeight, adagradState);
        AssertSteps<T, Elementwise256>(fused, weight, gradient, state, negativeLr, weightDecay, eps, sgd, decayed, adagradWeight, adagradState);
        AssertSteps<T, Elementwise128>(fused, weight, gradient, state, negativeLr, weightDecay, eps, sgd, decayed, adagradWeight, adagradState);
        AssertSteps<T, ElementwiseScalar>(fused, weight, gradient, state, negativeLr, weightDecay, eps, sgd, decayed, adagradWeight, adagradState);
    }

    private static void AssertSteps<T, TWidth>(bool fused, T[] weight, T[] gradient, T[] state, T negativeLr, T weightDecay, T eps,
        T[] sgd, T[] decayed, T[] adagradWeight, T[] adagradState)
        where T : unmanaged, IFloatingPointIeee754<T>
        where TWidth : IElementwiseWidth
    {
        T[] w1 = (T[])weight.Clone(), w2 = (T[])weight.Clone(), w3 = (T[])weight.Clone(), s3 = (T[])state.Clone();
        for (nuint column = 0; column < (nuint)weight.Length; column += (nuint)TWidth.LanesOf<T>())
        {
            if (fused)
            {
                TWidth.MultiplyAdd<T, FusedProducts>(ref w1[0], ref gradient[0], column, negativeLr);
                TWidth.SgdWeightDecay<T, FusedProducts>(ref w2[0], ref gradient[0], column, negativeLr, weightDecay);
                TWidth.Adagrad<T, FusedProducts>(ref w3[0], ref s3[0], ref gradient[0], column, negativeLr, eps);
            }
            else
            {
                TWidth.MultiplyAdd<T, RoundedProducts>(ref w1[0], ref gradient[0], column, negativeLr);
                TWidth.SgdWeightDecay<T, RoundedProducts>(ref w2[0], ref gradient[0], column, negativeLr, weightDecay);
                TWidth.Adagrad<T, RoundedProducts>(ref w3[0], ref s3[0], ref gradient[0], column, negativeLr, eps);
            }
        }

        string context = $"{typeof(T).Name} {typeof(TWidth).Name} fused={fused}";
        Assert.Equal(sgd, w1);
        Assert.Equal(decayed, w2);
        Assert.Equal(adagradState, s3);
        Assert.True(adagradWeight.AsSpan().SequenceEqual(w3), context);
    }
}
