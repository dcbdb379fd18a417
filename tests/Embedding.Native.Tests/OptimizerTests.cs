using System;
using System.Linq;
using Xunit;

namespace Embedding.Native.Tests;

/// <summary>
/// The fused sparse optimizer steps against the scalar reference, bit for bit, at every width and
/// over several steps, plus hand-computed values, validation and allocation checks.
/// </summary>
public sealed class OptimizerTests
{
    public enum Optimizer { Sgd, SgdWeightDecay, Adagrad, RowwiseAdagrad, SparseAdam }

    public static TheoryData<VectorWidth, Optimizer> WidthsAndOptimizers()
    {
        var data = new TheoryData<VectorWidth, Optimizer>();
        foreach (VectorWidth width in KernelDispatch.SupportedWidths)
        {
            foreach (Optimizer optimizer in Enum.GetValues<Optimizer>())
            {
                data.Add(width, optimizer);
            }
        }

        return data;
    }

    [Theory]
    [MemberData(nameof(WidthsAndOptimizers))]
    public void Step_MatchesReferenceForEveryDimension(VectorWidth width, Optimizer optimizer)
    {
        foreach (int dim in TestData.Dims)
        {
            const int rows = 23;
            var expected = new Model(rows, dim, seed: dim);
            var actual = expected.Clone();
            for (int step = 1; step <= 3; step++)
            {
                (long[] touched, float[] values) = Gradient(rows, dim, seed: dim * 7 + step);
                Assert.Equal(-1, expected.ReferenceStep(optimizer, touched, values, step));
                actual.Step(optimizer, touched, values, step, width);
            }

            expected.AssertBitEqual(actual, $"{optimizer}, dim {dim}, width {width}");
        }
    }

    [Theory]
    [MemberData(nameof(WidthsAndOptimizers))]
    public void Step_LeavesRowsNotListedUnchanged(VectorWidth width, Optimizer optimizer)
    {
        const int rows = 12, dim = 21;
        var model = new Model(rows, dim, seed: 1);
        var original = model.Clone();
        long[] touched = [1, 4, 5, 11];
        model.Step(optimizer, touched, Gradient(touched, dim, seed: 2), 1, width);
        for (int r = 0; r < rows; r++)
        {
            bool listed = touched.Contains(r);
            Assert.Equal(!listed, model.Weight.AsSpan(r * dim, dim).SequenceEqual(original.Weight.AsSpan(r * dim, dim)));
            Assert.Equal(!listed || optimizer is not (Optimizer.Adagrad or Optimizer.SparseAdam), model.State1.AsSpan(r * dim, dim).SequenceEqual(original.State1.AsSpan(r * dim, dim)));
            Assert.Equal(!listed || optimizer is not Optimizer.SparseAdam, model.State2.AsSpan(r * dim, dim).SequenceEqual(original.State2.AsSpan(r * dim, dim)));
            Assert.Equal(!listed || optimizer is not Optimizer.RowwiseAdagrad, model.Momentum[r] == original.Momentum[r]);
        }
    }

    [Fact]
    public void Sgd_IsOneMultiplyAddPerElementRoundedAsTorchs()
    {
        float[] weight = [1, 2, 3, 4];
        EmbeddingPrimitives.SgdStep(weight, 2, [1], [0.5f, -1], 0.1);
        Assert.Equal([1, 2, TorchProducts.MultiplyAdd(0.5f, -0.1f, 3), TorchProducts.MultiplyAdd(-1, -0.1f, 4)], weight);

        weight = [1, 2, 3, 4];
        EmbeddingPrimitives.SgdStep(weight, 2, [0], [0.5f, -1], 0.1, weightDecay: 0.01);
        Assert.Equal(TorchProducts.MultiplyAdd(TorchProducts.MultiplyAdd(1, 0.01f, 0.5f), -0.1f, 1), weight[0]);
    }

    [Fact]
    public void Sgd_WithoutWeightDecayKeepsInfiniteWeightsInfinite()
    {
        // torch skips `g + 0 * w` when weight_decay == 0; computing it would turn inf into NaN.
        float[] weight = [float.PositiveInfinity, 1];
        EmbeddingPrimitives.SgdStep(weight, 2, [0], [1, 1], 0.1);
        Assert.Equal(float.PositiveInfinity, weight[0]);
    }

    [Fact]
    public void Adagrad_MatchesHandComputedStep()
    {
        float[] weight = [1, -2], state = [0.5f, 0];
        EmbeddingPrimitives.AdagradStep(weight, state, 2, [0], [2, -1], lr: 0.1, lrDecay: 0.5, eps: 1e-10, step: 3);
        float clr = (float)-(0.1 / (1 + 2 * 0.5));
        Assert.Equal([4.5f, 1f], state);
        Assert.Equal(TorchProducts.MultiplyAdd(2 / (MathF.Sqrt(4.5f) + 1e-10f), clr, 1), weight[0]);
        Assert.Equal(TorchProducts.MultiplyAdd(-1 / (1 + 1e-10f), clr, -2), weight[1]);
    }

    [Fact]
    public void RowwiseAdagrad_AddsTheRowMeanOfSquares()
    {
        float[] weight = [1, 1, 1, 5, 5, 5], momentum = [0.25f, 7];
        EmbeddingPrimitives.RowwiseAdagradStep(weight, momentum, 3, [0], [1, 2, 2], lr: 0.5, eps: 0);
        Assert.Equal(3.25f, momentum[0]);
        Assert.Equal(7, momentum[1]);
        float step = 0.5f / MathF.Sqrt(3.25f);
        Assert.Equal([MathF.FusedMultiplyAdd(1, -step, 1), MathF.FusedMultiplyAdd(2, -step, 1), MathF.FusedMultiplyAdd(2, -step, 1)], weight[..3]);
    }

    [Fact]
    public void SparseAdam_FirstStepMovesByLearningRate()
    {
        // Step 1 with zero state: m = (1-b1) g, v = (1-b2) g², step_size = lr sqrt(1-b2) / (1-b1): w moves by ≈ lr · sign(g).
        float[] weight = [1, 1], m = new float[2], v = new float[2];
        EmbeddingPrimitives.SparseAdamStep(weight, m, v, 2, [0], [3, -0.5f], lr: 0.01, beta1: 0.9, beta2: 0.999, eps: 1e-8, step: 1);
        Assert.Equal(0.99f, weight[0], 1e-6f);
        Assert.Equal(1.01f, weight[1], 1e-6f);
        Assert.Equal((3 - 0f) * 0.1f, m[0]);
        Assert.Equal((9 - 0f) * (float)(1 - 0.999), v[0]);
    }

    public static TheoryData<Optimizer, string, string> InvalidHyperParameters => new()
    {
        { Optimizer.Sgd, "lr", "Invalid learning rate: -0.1" },
        { Optimizer.Sgd, "weightDecay", "Invalid weight_decay value: -1" },
        { Optimizer.Adagrad, "lr", "Invalid learning rate: NaN" },
        { Optimizer.Adagrad, "lrDecay", "Invalid lr_decay value: -0.5" },
        { Optimizer.Adagrad, "eps", "Invalid epsilon value: -1E-10" },
        { Optimizer.Adagrad, "step", "step is 0" },
        { Optimizer.RowwiseAdagrad, "lr", "Invalid learning rate: -1" },
        { Optimizer.RowwiseAdagrad, "eps", "Invalid epsilon value: -1" },
        { Optimizer.SparseAdam, "lr", "Invalid learning rate: 0" },
        { Optimizer.SparseAdam, "eps", "Invalid epsilon value: 0" },
        { Optimizer.SparseAdam, "beta1", "Invalid beta parameter at index 0: 1" },
        { Optimizer.SparseAdam, "beta2", "Invalid beta parameter at index 1: -0.1" },
        { Optimizer.SparseAdam, "step", "step is -3" },
    };

    [Theory]
    [MemberData(nameof(InvalidHyperParameters))]
    public void Step_RejectsInvalidHyperParametersWithTorchsMessageAndWritesNothing(Optimizer optimizer, string parameter, string message)
    {
        var model = new Model(4, 3, seed: 1);
        var original = model.Clone();
        long[] rows = [0, 2];
        float[] values = Gradient(rows, 3, seed: 1);
        Action call = (optimizer, parameter) switch
        {
            (Optimizer.Sgd, "lr") => () => EmbeddingPrimitives.SgdStep(model.Weight, 3, rows, values, -0.1),
            (Optimizer.Sgd, _) => () => EmbeddingPrimitives.SgdStep(model.Weight, 3, rows, values, 0.1, -1),
            (Optimizer.Adagrad, "lr") => () => EmbeddingPrimitives.AdagradStep(model.Weight, model.State1, 3, rows, values, double.NaN, 0, 1e-10, 1),
            (Optimizer.Adagrad, "lrDecay") => () => EmbeddingPrimitives.AdagradStep(model.Weight, model.State1, 3, rows, values, 0.1, -0.5, 1e-10, 1),
            (Optimizer.Adagrad, "eps") => () => EmbeddingPrimitives.AdagradStep(model.Weight, model.State1, 3, rows, values, 0.1, 0, -1e-10, 1),
            (Optimizer.Adagrad, _) => () => EmbeddingPrimitives.AdagradStep(model.Weight, model.State1, 3, rows, values, 0.1, 0, 1e-10, 0),
            (Optimizer.RowwiseAdagrad, "lr") => () => EmbeddingPrimitives.RowwiseAdagradStep(model.Weight, model.Momentum, 3, rows, values, -1, 0),
            (Optimizer.RowwiseAdagrad, _) => () => EmbeddingPrimitives.RowwiseAdagradStep(model.Weight, model.Momentum, 3, rows, values, 1, -1),
            (Optimizer.SparseAdam, "lr") => () => EmbeddingPrimitives.SparseAdamStep(model.Weight, model.State1, model.State2, 3, rows, values, 0, 0.9, 0.999, 1e-8, 1),
            (Optimizer.SparseAdam, "eps") => () => EmbeddingPrimitives.SparseAdamStep(model.Weight, model.State1, model.State2, 3, rows, values, 0.1, 0.9, 0.999, 0, 1),
            (Optimizer.SparseAdam, "beta1") => () => EmbeddingPrimitives.SparseAdamStep(model.Weight, model.State1, model.State2, 3, rows, values, 0.1, 1, 0.999, 1e-8, 1),
            (Optimizer.SparseAdam, "beta2") => () => EmbeddingPrimitives.SparseAdamStep(model.Weight, model.State1, model.State2, 3, rows, values, 0.1, 0.9, -0.1, 1e-8, 1),
            _ => () => EmbeddingPrimitives.SparseAdamStep(model.Weight, model.State1, model.State2, 3, rows, values, 0.1, 0.9, 0.999, 1e-8, -3),
        };

        var error = Assert.Throws<ArgumentOutOfRangeException>(call);
        Assert.Equal(parameter, error.ParamName);
        Assert.StartsWith(message, error.Message);
        original.AssertBitEqual(model, "after a rejected step");
    }

    public static TheoryData<Optimizer, long[], string> BadRows()
    {
        var data = new TheoryData<Optimizer, long[], string>();
        foreach (Optimizer optimizer in Enum.GetValues<Optimizer>())
        {
            data.Add(optimizer, [0, 5, 2], "row 2 at position 2 is not above the row before it (5)");
            data.Add(optimizer, [1, 1], "row 1 at position 1 is not above the row before it (1)");
            data.Add(optimizer, [0, 3, 6], "index 6 at position 2 is out of range: valid indices are 0 to 5");
            data.Add(optimizer, [-1, 3], "index -1 at position 0 is out of range");
            data.Add(optimizer, [2, long.MaxValue], $"index {long.MaxValue} at position 1 is out of range");
        }

        return data;
    }

    [Theory]
    [MemberData(nameof(BadRows))]
    public void Step_RejectsBadRowsAndWritesNothing(Optimizer optimizer, long[] rows, string message)
    {
        foreach (VectorWidth width in KernelDispatch.SupportedWidths)
        {
            var model = new Model(6, 17, seed: 3);
            var original = model.Clone();
            float[] values = Gradient(rows, 17, seed: 4);
            var error = Assert.ThrowsAny<ArgumentException>(() => model.Step(optimizer, rows, values, 1, width));
            Assert.Equal("rows", error.ParamName);
            Assert.Equal(message.StartsWith("index", StringComparison.Ordinal), error is ArgumentOutOfRangeException);
            Assert.StartsWith(message, error.Message);
            original.AssertBitEqual(model, $"{optimizer} after bad rows, width {width}");
        }
    }

    [Theory]
    [InlineData(Optimizer.Sgd)]
    [InlineData(Optimizer.Adagrad)]
    [InlineData(Optimizer.RowwiseAdagrad)]
    [InlineData(Optimizer.SparseAdam)]
    public void Step_RejectsBadShapesAndOverlaps(Optimizer optimizer)
    {
        var model = new Model(4, 3, seed: 1);
        long[] rows = [0, 2];
        float[] values = Gradient(rows, 3, seed: 1);
        Assert.Equal("values", Assert.Throws<ArgumentException>(() => model.Step(optimizer, rows, values[..5], 1, VectorWidth.Scalar)).ParamName);
        Assert.Throws<ArgumentOutOfRangeException>(() => EmbeddingPrimitives.SgdStep(model.Weight, 0, rows, values, 0.1));
        Assert.Equal("weight", Assert.Throws<ArgumentException>(() => EmbeddingPrimitives.SgdStep(model.Weight, 5, rows, values[..0], 0.1)).ParamName);

        // A state buffer of the wrong length, or one that is the weight itself.
        switch (optimizer)
        {
            case Optimizer.Adagrad:
                Assert.Equal("stateSum", Assert.Throws<ArgumentException>(() => EmbeddingPrimitives.AdagradStep(model.Weight, model.State1[1..], 3, rows, values, 0.1, 0, 0, 1)).ParamName);
                Assert.Equal("weight", Assert.Throws<ArgumentException>(() => EmbeddingPrimitives.AdagradStep(model.Weight, model.Weight, 3, rows, values, 0.1, 0, 0, 1)).ParamName);
                break;
            case Optimizer.RowwiseAdagrad:
                Assert.Equal("momentum", Assert.Throws<ArgumentException>(() => EmbeddingPrimitives.RowwiseAdagradStep(model.Weight, model.State1, 3, rows, values, 0.1, 0)).ParamName);
                break;
            case Optimizer.SparseAdam:
                Assert.Equal("expAvgSq", Assert.Throws<ArgumentException>(() => EmbeddingPrimitives.SparseAdamStep(model.Weight, model.State1, model.Momentum, 3, rows, values, 0.1, 0.9, 0.99, 1e-8, 1)).ParamName);
                Assert.Equal("expAvg", Assert.Throws<ArgumentException>(() => EmbeddingPrimitives.SparseAdamStep(model.Weight, model.State1, model.State1, 3, rows, values, 0.1, 0.9, 0.99, 1e-8, 1)).ParamName);
                break;
            default:
                Assert.Equal("weight", Assert.Throws<ArgumentException>(() => EmbeddingPrimitives.SgdStep(model.Weight, 3, rows, model.Weight.AsSpan(0, 6), 0.1)).ParamName);
                break;
        }
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
        (long[] rows, float[] values) = Gradient(50, dim, seed: 2);
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

    /// <summary>A random strictly ascending subset of the rows (both boundary rows included) and its values.</summary>
    internal static (long[] Rows, float[] Values) Gradient(int rows, int dim, int seed)
    {
        var random = new Random(seed);
        long[] touched = Enumerable.Range(0, rows).Where(r => r == 0 || r == rows - 1 || random.Next(3) != 0).Select(r => (long)r).ToArray();
        return (touched, Gradient(touched, dim, seed));
    }

    internal static float[] Gradient(long[] rows, int dim, int seed)
    {
        var random = new Random(seed);
        var values = new float[rows.Length * dim];
        for (int i = 0; i < values.Length; i++)
        {
            values[i] = random.Next(50) == 0 ? 0 : (float)((random.NextDouble() * 2 - 1) * Math.Pow(10, random.Next(-3, 2)));
        }

        return values;
    }

    /// <summary>A table with every optimizer's state, so one test body can drive any optimizer.</summary>
    internal sealed class Model
    {
        public const double Lr = 0.0123, WeightDecay = 0.031, LrDecay = 0.07, AdagradEps = 1e-10, RowwiseEps = 1e-6, Beta1 = 0.9, Beta2 = 0.999, AdamEps = 1e-8;

        public Model(int rows, int dim, int seed)
        {
            var random = new Random(seed);
            Dim = dim;
            Weight = Fill(rows * dim, () => (float)(random.NextDouble() * 2 - 1));
            State1 = Fill(rows * dim, () => (float)(random.NextDouble() * 0.1));
            State2 = Fill(rows * dim, () => (float)(random.NextDouble() * 0.01));
            Momentum = Fill(rows, () => (float)random.NextDouble());
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

        public float[] Weight { get; }

        /// <summary>Adagrad's state_sum, or SparseAdam's exp_avg.</summary>
        public float[] State1 { get; }

        /// <summary>SparseAdam's exp_avg_sq.</summary>
        public float[] State2 { get; }

        /// <summary>Row-wise Adagrad's per-row momentum.</summary>
        public float[] Momentum { get; }

        public Model Clone() => new(this);

        public void Step(Optimizer optimizer, long[] rows, float[] values, long step, VectorWidth width)
        {
            switch (optimizer)
            {
                case Optimizer.Sgd:
                    EmbeddingPrimitives.SgdStep(Weight, Dim, rows, values, Lr, 0, width);
                    break;
                case Optimizer.SgdWeightDecay:
                    EmbeddingPrimitives.SgdStep(Weight, Dim, rows, values, Lr, WeightDecay, width);
                    break;
                case Optimizer.Adagrad:
                    EmbeddingPrimitives.AdagradStep(Weight, State1, Dim, rows, values, Lr, LrDecay, AdagradEps, step, width);
                    break;
                case Optimizer.RowwiseAdagrad:
                    EmbeddingPrimitives.RowwiseAdagradStep(Weight, Momentum, Dim, rows, values, Lr, RowwiseEps, width);
                    break;
                default:
                    EmbeddingPrimitives.SparseAdamStep(Weight, State1, State2, Dim, rows, values, Lr, Beta1, Beta2, AdamEps, step, width);
                    break;
            }
        }

        public int ReferenceStep(Optimizer optimizer, long[] rows, float[] values, long step) => optimizer switch
        {
            Optimizer.Sgd => OptimizerReference.Sgd(Weight, Dim, rows, values, Lr, 0),
            Optimizer.SgdWeightDecay => OptimizerReference.Sgd(Weight, Dim, rows, values, Lr, WeightDecay),
            Optimizer.Adagrad => OptimizerReference.Adagrad(Weight, State1, Dim, rows, values, Lr, LrDecay, AdagradEps, step),
            Optimizer.RowwiseAdagrad => OptimizerReference.RowwiseAdagrad(Weight, Momentum, Dim, rows, values, Lr, RowwiseEps),
            _ => OptimizerReference.SparseAdam(Weight, State1, State2, Dim, rows, values, Lr, Beta1, Beta2, AdamEps, step),
        };

        public void AssertBitEqual(Model actual, string context)
        {
            TestAssert.BitEqual(Weight, actual.Weight, $"{context}: weight");
            TestAssert.BitEqual(State1, actual.State1, $"{context}: state 1");
            TestAssert.BitEqual(State2, actual.State2, $"{context}: state 2");
            TestAssert.BitEqual(Momentum, actual.Momentum, $"{context}: momentum");
        }

        private static float[] Fill(int length, Func<float> next)
        {
            var values = new float[length];
            for (int i = 0; i < values.Length; i++)
            {
                values[i] = next();
            }

            return values;
        }
    }
}
