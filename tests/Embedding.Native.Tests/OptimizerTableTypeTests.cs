using System;
using System.Linq;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using Xunit;
using Optimizer = Embedding.Native.Tests.OptimizerTests.Optimizer;

namespace Embedding.Native.Tests;

/// <summary>
/// The fused sparse optimizer steps on float64, float16 and bfloat16 tables (float32 is
/// <see cref="OptimizerTests"/>): bit for bit against <see cref="OptimizerReference"/> at every width
/// the process accelerates, over dimensions that hit every tail, the same bits on more threads,
/// hand-computed values, validation and allocation checks.
/// </summary>
public abstract class OptimizerTableTypeTests<T>
    where T : unmanaged
{
    /// <summary>Dims 1 … 2 × (widest vector of this element) + 1, and larger ones.</summary>
    public static readonly int[] Dims = Enumerable.Range(1, 2 * (64 / Unsafe.SizeOf<T>()) + 1).Concat([64, 96, 128, 300, 1000]).Distinct().ToArray();

    public static TheoryData<VectorWidth, Optimizer> WidthsAndOptimizers() => OptimizerTests.WidthsAndOptimizers();

    public static TheoryData<Optimizer> Optimizers() => new(Enum.GetValues<Optimizer>());

    [Theory]
    [MemberData(nameof(WidthsAndOptimizers))]
    public void Step_MatchesReferenceForEveryDimension(VectorWidth width, Optimizer optimizer)
    {
        foreach (int dim in Dims)
        {
            const int rows = 23;
            var expected = new Model(rows, dim, seed: dim);
            var actual = expected.Clone();
            for (int step = 1; step <= 3; step++)
            {
                (long[] touched, T[] values) = Gradient(rows, dim, seed: dim * 7 + step);
                Assert.Equal(-1, expected.ReferenceStep(optimizer, touched, values, step));
                actual.Step(optimizer, touched, values, step, width);
            }

            expected.AssertBitEqual(actual, $"{optimizer}, dim {dim}, width {width}");
        }
    }

    [Theory]
    [InlineData(2)]
    [InlineData(3)]
    public void Step_IsBitIdenticalOnMoreThreads(int threads)
    {
        // Large enough that every step splits over the threads (EmbeddingThreads.MinBytesPerThread per thread).
        const int rows = 6000, dim = 64;
        foreach (Optimizer optimizer in Enum.GetValues<Optimizer>())
        {
            var one = new Model(rows, dim, seed: 5);
            var many = one.Clone();
            for (int step = 1; step <= 2; step++)
            {
                (long[] touched, T[] values) = Gradient(rows, dim, seed: 6 + step);
                one.Step(optimizer, touched, values, step, KernelDispatch.BestWidth, threads: 1);
                many.Step(optimizer, touched, values, step, KernelDispatch.BestWidth, threads);
            }

            one.AssertBitEqual(many, $"{optimizer}, {threads} threads");
        }
    }

    [Theory]
    [MemberData(nameof(Optimizers))]
    public void Step_LeavesRowsNotListedUnchanged(Optimizer optimizer)
    {
        const int rows = 12, dim = 21;
        var model = new Model(rows, dim, seed: 1);
        var original = model.Clone();
        long[] touched = [1, 4, 5, 11];
        model.Step(optimizer, touched, Gradient(touched, dim, seed: 2), 1, KernelDispatch.BestWidth);
        for (int r = 0; r < rows; r++)
        {
            bool listed = touched.Contains(r);
            Assert.Equal(!listed, Same(model.Weight.AsSpan(r * dim, dim), original.Weight.AsSpan(r * dim, dim)));
            Assert.Equal(!listed || optimizer is not (Optimizer.Adagrad or Optimizer.SparseAdam), Same(model.State1.AsSpan(r * dim, dim), original.State1.AsSpan(r * dim, dim)));
            Assert.Equal(!listed || optimizer is not Optimizer.SparseAdam, Same(model.State2.AsSpan(r * dim, dim), original.State2.AsSpan(r * dim, dim)));
            Assert.Equal(!listed || optimizer is not Optimizer.RowwiseAdagrad, Same(model.Momentum.AsSpan(r, 1), original.Momentum.AsSpan(r, 1)));
        }
    }

    [Theory]
    [MemberData(nameof(Optimizers))]
    public void PublicOverloadsMatchTheWidthCore(Optimizer optimizer)
    {
        const int rows = 17, dim = 45;
        var expected = new Model(rows, dim, seed: 8);
        var actual = expected.Clone();
        (long[] touched, T[] values) = Gradient(rows, dim, seed: 9);
        expected.Step(optimizer, touched, values, 2, KernelDispatch.BestWidth);
        actual.PublicStep(optimizer, touched, values, 2);
        expected.AssertBitEqual(actual, $"{optimizer}, public overload");
    }

    [Theory]
    [MemberData(nameof(Optimizers))]
    public void Step_RejectsBadRowsAndWritesNothing(Optimizer optimizer)
    {
        foreach (long[] rows in new long[][] { [0, 5, 2], [1, 1], [0, 3, 6], [-1, 3] })
        {
            foreach (VectorWidth width in KernelDispatch.SupportedWidths)
            {
                var model = new Model(6, 17, seed: 3);
                var original = model.Clone();
                T[] values = Gradient(rows, 17, seed: 4);
                var error = Assert.ThrowsAny<ArgumentException>(() => model.Step(optimizer, rows, values, 1, width));
                Assert.Equal("rows", error.ParamName);
                original.AssertBitEqual(model, $"{optimizer} after bad rows, width {width}");
            }
        }
    }

    [Fact]
    public void Step_RejectsBadShapesStatesAndOverlaps()
    {
        var model = new Model(4, 3, seed: 1);
        long[] rows = [0, 2];
        T[] values = Gradient(rows, 3, seed: 1);
        VectorWidth width = VectorWidth.Scalar;
        Assert.Equal("values", Assert.Throws<ArgumentException>(() => EmbeddingPrimitives.SgdStep<T>(model.Weight, 3, rows, values.AsSpan(..5), 0.1, 0, width)).ParamName);
        Assert.Throws<ArgumentOutOfRangeException>(() => EmbeddingPrimitives.SgdStep<T>(model.Weight, 0, rows, values, 0.1, 0, width));
        Assert.Equal("weight", Assert.Throws<ArgumentException>(() => EmbeddingPrimitives.SgdStep<T>(model.Weight, 5, rows, values.AsSpan(..0), 0.1, 0, width)).ParamName);
        Assert.Equal("weight", Assert.Throws<ArgumentException>(() => EmbeddingPrimitives.SgdStep<T>(model.Weight, 3, rows, model.Weight.AsSpan(0, 6), 0.1, 0, width)).ParamName);
        Assert.Equal("stateSum", Assert.Throws<ArgumentException>(() => EmbeddingPrimitives.AdagradStep<T>(model.Weight, model.State1.AsSpan(1..), 3, rows, values, 0.1, 0, 0, 1, width)).ParamName);
        Assert.Equal("weight", Assert.Throws<ArgumentException>(() => EmbeddingPrimitives.AdagradStep<T>(model.Weight, model.Weight, 3, rows, values, 0.1, 0, 0, 1, width)).ParamName);
        Assert.Equal("momentum", Assert.Throws<ArgumentException>(() => EmbeddingPrimitives.RowwiseAdagradStep<T>(model.Weight, model.State1, 3, rows, values, 0.1, 0, width)).ParamName);
        Assert.Equal("expAvgSq", Assert.Throws<ArgumentException>(() => EmbeddingPrimitives.SparseAdamStep<T>(model.Weight, model.State1, model.Momentum, 3, rows, values, 0.1, 0.9, 0.99, 1e-8, 1, width)).ParamName);
        Assert.Equal("expAvg", Assert.Throws<ArgumentException>(() => EmbeddingPrimitives.SparseAdamStep<T>(model.Weight, model.State1, model.State1, 3, rows, values, 0.1, 0.9, 0.99, 1e-8, 1, width)).ParamName);

        // rows inside the weight's bytes: the overlap check reads them as bytes, whatever the element size.
        T[] buffer = new T[64];
        var overlap = Assert.Throws<ArgumentException>(() => EmbeddingPrimitives.SgdStep<T>(
            buffer, 4, MemoryMarshal.Cast<T, long>(buffer.AsSpan(0, 16))[..1], new T[4], 0.1, 0, width));
        Assert.Equal("weight", overlap.ParamName);
        Assert.Throws<ArgumentOutOfRangeException>(() => EmbeddingPrimitives.SparseAdamStep<T>(model.Weight, model.State1, model.State2, 3, rows, values, 0.1, 0.9, 1, 1e-8, 1, width));
    }

    [Theory]
    [MemberData(nameof(WidthsAndOptimizers))]
    public void Step_AcceptsAnEmptyGradient(VectorWidth width, Optimizer optimizer)
    {
        var model = new Model(4, 3, seed: 1);
        var original = model.Clone();
        model.Step(optimizer, [], [], 1, width);
        original.AssertBitEqual(model, "empty gradient");
    }

    [Theory]
    [InlineData(Optimizer.Sgd, 37)]
    [InlineData(Optimizer.SgdWeightDecay, 64)]
    [InlineData(Optimizer.Adagrad, 37)]
    [InlineData(Optimizer.RowwiseAdagrad, 128)]
    [InlineData(Optimizer.SparseAdam, 300)]
    public void Step_AllocatesNothingAfterWarmUp(Optimizer optimizer, int dim)
    {
        var model = new Model(50, dim, seed: 1);
        (long[] rows, T[] values) = Gradient(50, dim, seed: 2);
        for (int i = 1; i <= 10; i++)
        {
            model.Step(optimizer, rows, values, i, KernelDispatch.BestWidth);
        }

        long step = 10;
        Assert.Equal(0, TestAssert.AllocatedBytes(() =>
        {
            for (int i = 0; i < 200; i++)
            {
                model.Step(optimizer, rows, values, ++step, KernelDispatch.BestWidth);
            }
        }));
    }

    /// <summary>The value as the type (double: exact; float16, bfloat16: rounded through float).</summary>
    internal static T From(double value) =>
        typeof(T) == typeof(double) ? Unsafe.BitCast<double, T>(value)
        : typeof(T) == typeof(Half) ? Unsafe.BitCast<Half, T>((Half)(float)value)
        : Unsafe.BitCast<BFloat16, T>((BFloat16)(float)value);

    internal static double ToDouble(T value) =>
        typeof(T) == typeof(double) ? Unsafe.BitCast<T, double>(value)
        : typeof(T) == typeof(Half) ? (double)Unsafe.BitCast<T, Half>(value)
        : (float)Unsafe.BitCast<T, BFloat16>(value);

    /// <summary>A random strictly ascending subset of the rows (both boundary rows included) and its values.</summary>
    internal static (long[] Rows, T[] Values) Gradient(int rows, int dim, int seed)
    {
        (long[] touched, _) = OptimizerTests.Gradient(rows, 1, seed);
        return (touched, Gradient(touched, dim, seed));
    }

    /// <summary>Signed values from 1e-3 to 10 in magnitude, about one in fifty zero.</summary>
    internal static T[] Gradient(long[] rows, int dim, int seed)
    {
        var random = new Random(seed);
        var values = new T[rows.Length * dim];
        for (int i = 0; i < values.Length; i++)
        {
            values[i] = random.Next(50) == 0 ? From(0) : From((random.NextDouble() * 2 - 1) * Math.Pow(10, random.Next(-3, 2)));
        }

        return values;
    }

    internal static void AssertBitEqual(ReadOnlySpan<T> expected, ReadOnlySpan<T> actual, string context)
    {
        Assert.True(expected.Length == actual.Length, $"{context}: length {actual.Length}, expected {expected.Length}");
        for (int i = 0; i < expected.Length; i++)
        {
            if (!Same(expected.Slice(i, 1), actual.Slice(i, 1)))
            {
                Assert.Fail($"{context}: element {i} is {ToDouble(actual[i]):R}, expected {ToDouble(expected[i]):R}");
            }
        }
    }

    private static bool Same(ReadOnlySpan<T> a, ReadOnlySpan<T> b) => MemoryMarshal.AsBytes(a).SequenceEqual(MemoryMarshal.AsBytes(b));

    /// <summary>A table of the type with every optimizer's state, so one test body can drive any optimizer.</summary>
    internal sealed class Model
    {
        public const double Lr = OptimizerTests.Model.Lr, WeightDecay = OptimizerTests.Model.WeightDecay, LrDecay = OptimizerTests.Model.LrDecay;
        public const double AdagradEps = OptimizerTests.Model.AdagradEps, RowwiseEps = OptimizerTests.Model.RowwiseEps;
        public const double Beta1 = OptimizerTests.Model.Beta1, Beta2 = OptimizerTests.Model.Beta2, AdamEps = OptimizerTests.Model.AdamEps;

        public Model(int rows, int dim, int seed)
        {
            var random = new Random(seed);
            Dim = dim;
            Weight = Fill(rows * dim, () => From(random.NextDouble() * 2 - 1));
            State1 = Fill(rows * dim, () => From(random.NextDouble() * 0.1));
            State2 = Fill(rows * dim, () => From(random.NextDouble() * 0.01));
            Momentum = Fill(rows, () => From(random.NextDouble()));
        }

        private Model(Model other)
        {
            Dim = other.Dim;
            Weight = other.Weight.ToArray();
            State1 = other.State1.ToArray();
            State2 = other.State2.ToArray();
            Momentum = other.Momentum.ToArray();
        }

        public int Dim { get; }

        public T[] Weight { get; }

        /// <summary>Adagrad's state_sum, or SparseAdam's exp_avg.</summary>
        public T[] State1 { get; }

        /// <summary>SparseAdam's exp_avg_sq.</summary>
        public T[] State2 { get; }

        /// <summary>Row-wise Adagrad's per-row momentum.</summary>
        public T[] Momentum { get; }

        public Model Clone() => new(this);

        public void Step(Optimizer optimizer, long[] rows, T[] values, long step, VectorWidth width, int threads = EmbeddingThreads.UseCount)
        {
            switch (optimizer)
            {
                case Optimizer.Sgd:
                    EmbeddingPrimitives.SgdStep<T>(Weight, Dim, rows, values, Lr, 0, width, threads);
                    break;
                case Optimizer.SgdWeightDecay:
                    EmbeddingPrimitives.SgdStep<T>(Weight, Dim, rows, values, Lr, WeightDecay, width, threads);
                    break;
                case Optimizer.Adagrad:
                    EmbeddingPrimitives.AdagradStep<T>(Weight, State1, Dim, rows, values, Lr, LrDecay, AdagradEps, step, width, threads);
                    break;
                case Optimizer.RowwiseAdagrad:
                    EmbeddingPrimitives.RowwiseAdagradStep<T>(Weight, Momentum, Dim, rows, values, Lr, RowwiseEps, width, threads);
                    break;
                default:
                    EmbeddingPrimitives.SparseAdamStep<T>(Weight, State1, State2, Dim, rows, values, Lr, Beta1, Beta2, AdamEps, step, width, threads);
                    break;
            }
        }

        /// <summary>The same step through the public overload for the type.</summary>
        public void PublicStep(Optimizer optimizer, long[] rows, T[] values, long step)
        {
            if (typeof(T) == typeof(double))
            {
                PublicStep(optimizer, Cast<double>(Weight), Cast<double>(State1), Cast<double>(State2), Cast<double>(Momentum), rows, Cast<double>(values), step);
            }
            else if (typeof(T) == typeof(Half))
            {
                PublicStep(optimizer, Cast<Half>(Weight), Cast<Half>(State1), Cast<Half>(State2), Cast<Half>(Momentum), rows, Cast<Half>(values), step);
            }
            else
            {
                PublicStep(optimizer, Cast<BFloat16>(Weight), Cast<BFloat16>(State1), Cast<BFloat16>(State2), Cast<BFloat16>(Momentum), rows, Cast<BFloat16>(values), step);
            }
        }

        public int ReferenceStep(Optimizer optimizer, long[] rows, T[] values, long step) => optimizer switch
        {
            Optimizer.Sgd => OptimizerReference.Sgd<T>(Weight, Dim, rows, values, Lr, 0),
            Optimizer.SgdWeightDecay => OptimizerReference.Sgd<T>(Weight, Dim, rows, values, Lr, WeightDecay),
            Optimizer.Adagrad => OptimizerReference.Adagrad<T>(Weight, State1, Dim, rows, values, Lr, LrDecay, AdagradEps, step),
            Optimizer.RowwiseAdagrad => OptimizerReference.RowwiseAdagrad<T>(Weight, Momentum, Dim, rows, values, Lr, RowwiseEps),
            _ => OptimizerReference.SparseAdam<T>(Weight, State1, State2, Dim, rows, values, Lr, Beta1, Beta2, AdamEps, step),
        };

        public void AssertBitEqual(Model actual, string context)
        {
            OptimizerTableTypeTests<T>.AssertBitEqual(Weight, actual.Weight, $"{context}: weight");
            OptimizerTableTypeTests<T>.AssertBitEqual(State1, actual.State1, $"{context}: state 1");
            OptimizerTableTypeTests<T>.AssertBitEqual(State2, actual.State2, $"{context}: state 2");
            OptimizerTableTypeTests<T>.AssertBitEqual(Momentum, actual.Momentum, $"{context}: momentum");
        }

        private static Span<TTo> Cast<TTo>(T[] array)
            where TTo : struct =>
            MemoryMarshal.Cast<T, TTo>(array.AsSpan());

        private void PublicStep(Optimizer optimizer, Span<double> weight, Span<double> state1, Span<double> state2, Span<double> momentum, long[] rows, Span<double> values, long step)
        {
            switch (optimizer)
            {
                case Optimizer.Sgd:
                    EmbeddingPrimitives.SgdStep(weight, Dim, rows, values, Lr);
                    break;
                case Optimizer.SgdWeightDecay:
                    EmbeddingPrimitives.SgdStep(weight, Dim, rows, values, Lr, WeightDecay);
                    break;
                case Optimizer.Adagrad:
                    EmbeddingPrimitives.AdagradStep(weight, state1, Dim, rows, values, Lr, LrDecay, AdagradEps, step);
                    break;
                case Optimizer.RowwiseAdagrad:
                    EmbeddingPrimitives.RowwiseAdagradStep(weight, momentum, Dim, rows, values, Lr, RowwiseEps);
                    break;
                default:
                    EmbeddingPrimitives.SparseAdamStep(weight, state1, state2, Dim, rows, values, Lr, Beta1, Beta2, AdamEps, step);
                    break;
            }
        }

        private void PublicStep(Optimizer optimizer, Span<Half> weight, Span<Half> state1, Span<Half> state2, Span<Half> momentum, long[] rows, Span<Half> values, long step)
        {
            switch (optimizer)
            {
                case Optimizer.Sgd:
                    EmbeddingPrimitives.SgdStep(weight, Dim, rows, values, Lr);
                    break;
                case Optimizer.SgdWeightDecay:
                    EmbeddingPrimitives.SgdStep(weight, Dim, rows, values, Lr, WeightDecay);
                    break;
                case Optimizer.Adagrad:
                    EmbeddingPrimitives.AdagradStep(weight, state1, Dim, rows, values, Lr, LrDecay, AdagradEps, step);
                    break;
                case Optimizer.RowwiseAdagrad:
                    EmbeddingPrimitives.RowwiseAdagradStep(weight, momentum, Dim, rows, values, Lr, RowwiseEps);
                    break;
                default:
                    EmbeddingPrimitives.SparseAdamStep(weight, state1, state2, Dim, rows, values, Lr, Beta1, Beta2, AdamEps, step);
                    break;
            }
        }

        private void PublicStep(Optimizer optimizer, Span<BFloat16> weight, Span<BFloat16> state1, Span<BFloat16> state2, Span<BFloat16> momentum, long[] rows, Span<BFloat16> values, long step)
        {
            switch (optimizer)
            {
                case Optimizer.Sgd:
                    EmbeddingPrimitives.SgdStep(weight, Dim, rows, values, Lr);
                    break;
                case Optimizer.SgdWeightDecay:
                    EmbeddingPrimitives.SgdStep(weight, Dim, rows, values, Lr, WeightDecay);
                    break;
                case Optimizer.Adagrad:
                    EmbeddingPrimitives.AdagradStep(weight, state1, Dim, rows, values, Lr, LrDecay, AdagradEps, step);
                    break;
                case Optimizer.RowwiseAdagrad:
                    EmbeddingPrimitives.RowwiseAdagradStep(weight, momentum, Dim, rows, values, Lr, RowwiseEps);
                    break;
                default:
                    EmbeddingPrimitives.SparseAdamStep(weight, state1, state2, Dim, rows, values, Lr, Beta1, Beta2, AdamEps, step);
                    break;
            }
        }

        private static T[] Fill(int length, Func<T> next)
        {
            var values = new T[length];
            for (int i = 0; i < values.Length; i++)
            {
                values[i] = next();
            }

            return values;
        }
    }
}

public sealed class OptimizerFloat64Tests : OptimizerTableTypeTests<double>
{
    [Fact]
    public void Steps_AreTheFloat32FormulasInDouble()
    {
        double[] weight = [1, 2, 3, 4];
        EmbeddingPrimitives.SgdStep(weight, 2, [1], [0.5, -1], 0.1, weightDecay: 0.01);
        Assert.Equal([1, 2, Math.FusedMultiplyAdd(Math.FusedMultiplyAdd(3, 0.01, 0.5), -0.1, 3), Math.FusedMultiplyAdd(Math.FusedMultiplyAdd(4, 0.01, -1), -0.1, 4)], weight);

        weight = [1, -2];
        double[] state = [0.5, 0];
        EmbeddingPrimitives.AdagradStep(weight, state, 2, [0], [2, -1], lr: 0.1, lrDecay: 0.5, eps: 1e-10, step: 3);
        double clr = -(0.1 / (1 + 2 * 0.5));
        Assert.Equal([4.5, 1], state);
        Assert.Equal(Math.FusedMultiplyAdd(2 / (Math.Sqrt(4.5) + 1e-10), clr, 1), weight[0]);
        Assert.Equal(Math.FusedMultiplyAdd(-1 / (1 + 1e-10), clr, -2), weight[1]);

        weight = [1, 1, 1, 5, 5, 5];
        double[] momentum = [0.25, 7];
        EmbeddingPrimitives.RowwiseAdagradStep(weight, momentum, 3, [0], [1, 2, 2], lr: 0.5, eps: 0);
        Assert.Equal([3.25, 7], momentum);
        double step = 0.5 / Math.Sqrt(3.25);
        Assert.Equal([Math.FusedMultiplyAdd(1, -step, 1), Math.FusedMultiplyAdd(2, -step, 1), Math.FusedMultiplyAdd(2, -step, 1)], weight[..3]);

        weight = [1, 1];
        double[] m = new double[2], v = new double[2];
        EmbeddingPrimitives.SparseAdamStep(weight, m, v, 2, [0], [3, -0.5], lr: 0.01, beta1: 0.9, beta2: 0.999, eps: 1e-8, step: 1);
        Assert.Equal([3 * (1 - 0.9), -0.5 * (1 - 0.9)], m);
        Assert.Equal(9 * (1 - 0.999), v[0]);
        double stepSize = 0.01 * Math.Sqrt(1 - 0.999) / (1 - 0.9);
        Assert.Equal(1 + m[0] / (Math.Sqrt(v[0]) + 1e-8) * -stepSize, weight[0]);
    }
}

public sealed class OptimizerFloat16Tests : OptimizerTableTypeTests<Half>
{
    [Fact]
    public void Sgd_RoundsTheProductAndTheSumToHalf()
    {
        // rd(w + rd(g · fl(-lr))), fl(-lr) = -0.1 rounded to float, then to half.
        Half[] weight = [(Half)1, (Half)2048];
        EmbeddingPrimitives.SgdStep(weight, 2, [0], [(Half)0.3f, (Half)1], 0.1);
        float negativeLr = (float)(Half)(float)-0.1;
        Assert.Equal((Half)(1 + (float)(Half)((float)(Half)0.3f * negativeLr)), weight[0]);

        // 2048 - 0.1 rounds back to 2048 in half: the update is below half an ulp.
        Assert.Equal((Half)2048, weight[1]);
    }

    [Fact]
    public void Adagrad_DefaultEpsIsZeroInHalf()
    {
        // fl(1e-10) = 0 in float16, so a zero gradient on a zero state divides 0 by 0, as the
        // bfloat16 formula rounded to half must; a non-zero gradient is unaffected.
        Half[] weight = [(Half)1, (Half)1], state = [(Half)0, (Half)0];
        EmbeddingPrimitives.AdagradStep(weight, state, 2, [0], [(Half)0, (Half)0.5f], lr: 0.1, lrDecay: 0, eps: 1e-10, step: 1);
        Assert.True(Half.IsNaN(weight[0]));
        Assert.Equal((Half)(1 + (float)(Half)(1 * (float)(Half)(float)-0.1)), weight[1]);
        Assert.Equal((Half)0.25f, state[1]);
    }
}

public sealed class OptimizerBFloat16Tests : OptimizerTableTypeTests<BFloat16>
{
    [Fact]
    public void SparseAdam_RoundsEveryOperationToBFloat16()
    {
        static float R(float x) => (float)(BFloat16)x;
        static float Fl(double x) => R((float)x);

        BFloat16[] weight = [(BFloat16)1f], m = [(BFloat16)0.25f], v = [(BFloat16)0.5f];
        EmbeddingPrimitives.SparseAdamStep(weight, m, v, 1, [0], [(BFloat16)0.3f], lr: 0.01, beta1: 0.9, beta2: 0.999, eps: 1e-8, step: 2);

        float g = (float)(BFloat16)0.3f;
        float mUpdate = R(R(g - 0.25f) * Fl(1 - 0.9));
        float vUpdate = R(R(R(g * g) - 0.5f) * Fl(1 - 0.999));
        float mNew = R(0.25f + mUpdate), vNew = R(0.5f + vUpdate);
        double stepSize = 0.01 * Math.Sqrt(1 - Math.Pow(0.999, 2)) / (1 - Math.Pow(0.9, 2));
        float update = R(R(mNew / R(R(MathF.Sqrt(vNew)) + Fl(1e-8))) * Fl(-stepSize));
        Assert.Equal((BFloat16)mNew, m[0]);
        Assert.Equal((BFloat16)vNew, v[0]);
        Assert.Equal((BFloat16)(1 + update), weight[0]);
    }
}
