using System;
using System.Linq;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
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
    [MemberData(nameof(WidthsAndOptimizers))]
    public void Step_MatchesReferenceOnSpecialValues(VectorWidth width, Optimizer optimizer)
    {
        // NaNs with payloads, infinities, signed zeros, subnormals and the largest finite values (whose
        // updates overflow) in the weight, the state and the gradient, in every lane position of every
        // width. Where two different NaNs meet, which payload survives is not pinned: NaN equals NaN here.
        const int rows = 9, dim = 67;
        var expected = new Model(rows, dim, seed: 31);
        Sprinkle(expected.Weight, seed: 32);
        Sprinkle(expected.State1, seed: 33);
        Sprinkle(expected.State2, seed: 34);
        Sprinkle(expected.Momentum, seed: 35);
        var actual = expected.Clone();
        for (int step = 1; step <= 2; step++)
        {
            (long[] touched, T[] values) = Gradient(rows, dim, seed: 36 + step);
            Sprinkle(values, seed: 38 + step);
            Assert.Equal(-1, expected.ReferenceStep(optimizer, touched, values, step));
            actual.Step(optimizer, touched, values, step, width);
        }

        AssertSameOrBothNaN(expected.Weight, actual.Weight, $"{optimizer}, width {width}: weight");
        AssertSameOrBothNaN(expected.State1, actual.State1, $"{optimizer}, width {width}: state 1");
        AssertSameOrBothNaN(expected.State2, actual.State2, $"{optimizer}, width {width}: state 2");
        AssertSameOrBothNaN(expected.Momentum, actual.Momentum, $"{optimizer}, width {width}: momentum");
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

    private static void AssertSameOrBothNaN(ReadOnlySpan<T> expected, ReadOnlySpan<T> actual, string context)
    {
        for (int i = 0; i < expected.Length; i++)
        {
            if (!Same(expected.Slice(i, 1), actual.Slice(i, 1)) && !(double.IsNaN(ToDouble(expected[i])) && double.IsNaN(ToDouble(actual[i]))))
            {
                Assert.Fail($"{context}: element {i} is {ToDouble(actual[i]):R}, expected {ToDouble(expected[i]):R}");
            }
        }
    }

    /// <summary>Replaces about one element in four with a special value of the type.</summary>
    private static void Sprinkle(T[] values, int seed)
    {
        ulong[] specials = Unsafe.SizeOf<T>() == sizeof(double)
            ? [0x7FF8_0000_0000_1234, 0xFFF0_0000_0000_0001, 0x7FF0_0000_0000_0000, 0xFFF0_0000_0000_0000, 0x8000_0000_0000_0000, 0x0000_0000_0000_0001, 0x7FEF_FFFF_FFFF_FFFF, 0x0010_0000_0000_0000]
            : typeof(T) == typeof(Half)
                ? [0x7E01, 0xFC01, 0x7C00, 0xFC00, 0x8000, 0x0001, 0x03FF, 0x7BFF, 0xFBFF, 0x0400]
                : [0x7FC1, 0xFF81, 0x7F80, 0xFF80, 0x8000, 0x0001, 0x007F, 0x7F7F, 0xFF7F, 0x0080];
        var random = new Random(seed);
        for (int i = 0; i < values.Length; i++)
        {
            if (random.Next(4) == 0)
            {
                ulong bits = specials[random.Next(specials.Length)];
                values[i] = Unsafe.SizeOf<T>() == sizeof(double) ? Unsafe.BitCast<ulong, T>(bits) : Unsafe.BitCast<ushort, T>((ushort)bits);
            }
        }
    }

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
        Assert.Equal([1, 2, TorchProducts.MultiplyAdd(TorchProducts.MultiplyAdd(3, 0.01, 0.5), -0.1, 3), TorchProducts.MultiplyAdd(TorchProducts.MultiplyAdd(4, 0.01, -1), -0.1, 4)], weight);

        weight = [1, -2];
        double[] state = [0.5, 0];
        EmbeddingPrimitives.AdagradStep(weight, state, 2, [0], [2, -1], lr: 0.1, lrDecay: 0.5, eps: 1e-10, step: 3);
        double clr = -(0.1 / (1 + 2 * 0.5));
        Assert.Equal([4.5, 1], state);
        Assert.Equal(TorchProducts.MultiplyAdd(2 / (Math.Sqrt(4.5) + 1e-10), clr, 1), weight[0]);
        Assert.Equal(TorchProducts.MultiplyAdd(-1 / (1 + 1e-10), clr, -2), weight[1]);

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
    public void Conversions_EqualHalfsOwnAtEveryRoundingBoundary()
    {
        // Widening: every float16 bit pattern (NaN payloads included).
        for (int h = 0; h <= ushort.MaxValue; h++)
        {
            Half value = BitConverter.UInt16BitsToHalf((ushort)h);
            Assert.Equal(BitConverter.SingleToUInt32Bits((float)value), BitConverter.SingleToUInt32Bits(Float16Arithmetic.Widen(value)));
        }

        // Narrowing: each float16 value, the midpoints to its neighbours, and the floats next to both.
        for (int h = 0; h < 0x7C00; h++)
        {
            float low = (float)BitConverter.UInt16BitsToHalf((ushort)h), high = (float)BitConverter.UInt16BitsToHalf((ushort)(h + 1));
            float middle = (float)(((double)low + high) / 2);
            foreach (float x in new[] { low, middle, high })
            {
                foreach (float y in new[] { x, MathF.BitIncrement(x), MathF.BitDecrement(x) })
                {
                    CheckNarrow(y);
                    CheckNarrow(-y);
                }
            }
        }

        // Past the largest float16, infinities and NaNs (quiet and signalling, with payloads), and random floats.
        foreach (uint bits in new uint[] { 0x477FE000, 0x477FEFFF, 0x477FF000, 0x47800000, 0x7F7FFFFF, 0x7F800000, 0x7F800001, 0x7FC00000, 0x7FC12345, 0x7FFFFFFF, 0x7F802000, 0x7F801FFF })
        {
            CheckNarrow(BitConverter.UInt32BitsToSingle(bits));
            CheckNarrow(BitConverter.UInt32BitsToSingle(bits | 0x8000_0000));
        }

        var random = new Random(17);
        for (int i = 0; i < 1_000_000; i++)
        {
            CheckNarrow(BitConverter.UInt32BitsToSingle((uint)random.NextInt64(0, 1L << 32)));
        }

        static void CheckNarrow(float x)
        {
            ushort expected = BitConverter.HalfToUInt16Bits((Half)x), actual = Float16Arithmetic.NarrowBits(x);
            Assert.True(expected == actual, $"{x:R} (0x{BitConverter.SingleToUInt32Bits(x):X8}): 0x{actual:X4}, Half gives 0x{expected:X4}");
        }
    }

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

/// <summary>
/// The vector conversions of <see cref="IReducedArithmetic{T}"/> against its scalar ones, lane by lane:
/// every 16-bit pattern widened, and rounding and narrowing of the values at every rounding boundary,
/// special values and random floats, at each vector size.
/// </summary>
public sealed class ReducedArithmeticTests
{
    [Fact]
    public void Float16VectorsMatchTheScalarConversions() => VectorsMatchScalar<Half, Float16Arithmetic>();

    [Fact]
    public void BFloat16VectorsMatchTheScalarConversions() => VectorsMatchScalar<BFloat16, BFloat16Arithmetic>();

    private static void VectorsMatchScalar<T, TArithmetic>()
        where T : unmanaged
        where TArithmetic : IReducedArithmetic<T>
    {
        // Widening: all 65536 patterns, sixteen at a time.
        T[] all = new T[65536];
        for (int i = 0; i < all.Length; i++)
        {
            all[i] = Unsafe.BitCast<ushort, T>((ushort)i);
        }

        for (int i = 0; i < all.Length; i += 16)
        {
            float[] expected = new float[16];
            for (int j = 0; j < 16; j++)
            {
                expected[j] = TArithmetic.Widen(all[i + j]);
            }

            CheckFloats(expected, TArithmetic.Load512(ref all[0], (nuint)i), "Load512", i);
            CheckFloats(expected.AsSpan(0, 8), TArithmetic.Load256(ref all[0], (nuint)i), "Load256", i);
            CheckFloats(expected.AsSpan(8, 8), TArithmetic.Load256(ref all[0], (nuint)i + 8), "Load256", i + 8);
            CheckFloats(expected.AsSpan(4, 4), TArithmetic.Load128(ref all[0], (nuint)i + 4), "Load128", i + 4);
        }

        // Rounding and narrowing: each value of the type, the midpoints to its neighbours and the floats
        // next to both, then random floats; sixteen lanes at a time.
        var inputs = new System.Collections.Generic.List<float>();
        for (int i = 0; i < 65535; i++)
        {
            float low = TArithmetic.Widen(all[i]), high = TArithmetic.Widen(all[i + 1]);
            float middle = (float)(((double)low + high) / 2);
            foreach (float x in new[] { low, middle })
            {
                inputs.Add(x);
                inputs.Add(MathF.BitIncrement(x));
                inputs.Add(MathF.BitDecrement(x));
            }
        }

        var random = new Random(23);
        for (int i = 0; i < 200_000; i++)
        {
            inputs.Add(BitConverter.UInt32BitsToSingle((uint)random.NextInt64(0, 1L << 32)));
        }

        float[] values = inputs.ToArray();
        T[] narrowed = new T[16];
        for (int i = 0; i + 16 <= values.Length; i += 16)
        {
            var x = Vector512.Create(values.AsSpan(i, 16));
            float[] rounded = new float[16];
            T[] expectedNarrow = new T[16];
            for (int j = 0; j < 16; j++)
            {
                rounded[j] = TArithmetic.R(values[i + j]);
                expectedNarrow[j] = TArithmetic.Narrow(values[i + j]);
            }

            CheckFloats(rounded, TArithmetic.R(x), "R512", i);
            CheckFloats(rounded.AsSpan(0, 8), TArithmetic.R(x.GetLower()), "R256", i);
            CheckFloats(rounded.AsSpan(0, 4), TArithmetic.R(x.GetLower().GetLower()), "R128", i);

            TArithmetic.Store(x, ref narrowed[0], 0);
            CheckBits(expectedNarrow, narrowed, "Store512", i);
            Array.Clear(narrowed);
            TArithmetic.Store(x.GetLower(), ref narrowed[0], 0);
            TArithmetic.Store(x.GetUpper().GetLower(), ref narrowed[0], 8);
            CheckBits(expectedNarrow.AsSpan(0, 12), narrowed.AsSpan(0, 12), "Store256 and Store128", i);
            Assert.True(Unsafe.BitCast<T, ushort>(narrowed[12]) == 0, "Store128 wrote past its fourth element");
        }
    }

    private static void CheckFloats<TVector>(ReadOnlySpan<float> expected, TVector actual, string what, int at)
        where TVector : struct
    {
        ReadOnlySpan<float> lanes = MemoryMarshal.Cast<TVector, float>(new ReadOnlySpan<TVector>(in actual));
        for (int j = 0; j < expected.Length; j++)
        {
            uint want = BitConverter.SingleToUInt32Bits(expected[j]), got = BitConverter.SingleToUInt32Bits(lanes[j]);
            Assert.True(want == got, $"{what} at {at + j}: 0x{got:X8}, scalar 0x{want:X8}");
        }
    }

    private static void CheckBits<T>(ReadOnlySpan<T> expected, ReadOnlySpan<T> actual, string what, int at)
        where T : unmanaged
    {
        for (int j = 0; j < expected.Length; j++)
        {
            ushort want = Unsafe.BitCast<T, ushort>(expected[j]), got = Unsafe.BitCast<T, ushort>(actual[j]);
            Assert.True(want == got, $"{what} at {at + j}: 0x{got:X4}, scalar 0x{want:X4}");
        }
    }
}
