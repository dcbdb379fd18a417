using System;
using System.Linq;
using System.Runtime.InteropServices;
using Embedding.Native.Interop;
using Xunit;

namespace Embedding.Native.Tests;

/// <summary>
/// The renorm and optimizer-step C-ABI shims called in-process through unmanaged function
/// pointers: results equal the span API's, every invalid argument maps to its status, and a
/// failed call writes nothing.
/// </summary>
public sealed unsafe class TrainingExportTests
{
    private static readonly delegate* unmanaged<void*, int, long, long, void*, int, long, double, double, int> Renorm = &NativeExports.EmbeddingRenorm;
    private static readonly delegate* unmanaged<void*, int, long, long, long*, void*, long, double, double, int> Sgd = &NativeExports.SgdStep;
    private static readonly delegate* unmanaged<void*, void*, int, long, long, long*, void*, long, double, double, double, long, int> Adagrad = &NativeExports.AdagradStep;
    private static readonly delegate* unmanaged<void*, void*, int, long, long, long*, void*, long, double, double, int> RowwiseAdagrad = &NativeExports.RowwiseAdagradStep;
    private static readonly delegate* unmanaged<void*, void*, void*, int, long, long, long*, void*, long, double, double, double, double, long, int> SparseAdam = &NativeExports.SparseAdamStep;

    private const int Float32 = (int)EmbDtype.Float32, Float64 = (int)EmbDtype.Float64, Int32 = (int)EmbDtype.Int32, Int64 = (int)EmbDtype.Int64;

    [Fact]
    public void Renorm_MatchesTheSpanApiForBothIndexTypes()
    {
        const int rows = 30, dim = 45;
        float[] original = RenormTests<int>.SignedTable(rows, dim, seed: 2);
        int[] indices32 = TestData.Indices<int>(50, rows, seed: 3);
        long[] indices64 = indices32.Select(i => (long)i).ToArray();
        float[] expected = original.ToArray();
        EmbeddingPrimitives.EmbeddingRenorm(expected, dim, indices64, 3.0, 1.0);

        float[] viaInt32 = original.ToArray(), viaInt64 = original.ToArray();
        fixed (float* w32 = viaInt32)
        fixed (float* w64 = viaInt64)
        fixed (int* i32 = indices32)
        fixed (long* i64 = indices64)
        {
            Assert.Equal(0, Renorm(w32, Float32, rows, dim, i32, Int32, 50, 3.0, 1.0));
            Assert.Equal(0, Renorm(w64, Float32, rows, dim, i64, Int64, 50, 3.0, 1.0));
        }

        TestAssert.BitEqual(expected, viaInt32, "int32 indices");
        TestAssert.BitEqual(expected, viaInt64, "int64 indices");
    }

    [Fact]
    public void Renorm_GivesTorchsExampleForNormType3()
    {
        float[] weight = [3, -4];
        long[] indices = [0];
        fixed (float* w = weight)
        fixed (long* i = indices)
        {
            Assert.Equal(0, Renorm(w, Float32, 1, 2, i, Int64, 1, 1.0, 3.0));
        }

        TestAssert.BitEqual([0.6669718027114868f, -0.8892956972122192f], weight, "p=3");
    }

    [Fact]
    public void Renorm_ReportsEachInvalidArgumentAndChangesNothing()
    {
        float[] original = [3, 4, 6, 8, 1, 1];
        float[] weight = original.ToArray();
        long[] indices = [0, 1, 3];
        fixed (float* w = weight)
        fixed (long* i = indices)
        {
            Assert.Equal(EmbStatus.IndexOutOfRange, (EmbStatus)Renorm(w, Float32, 3, 2, i, Int64, 3, 1.0, 2.0));
            Assert.Equal("index 3 at position 2 is out of range: valid indices are 0 to 2 (num_embeddings = 3)", LastMessage());
            Assert.Equal(EmbStatus.UnsupportedDtype, (EmbStatus)Renorm(w, Int32, 3, 2, i, Int64, 2, 1.0, 2.0));
            Assert.Equal(EmbStatus.UnsupportedDtype, (EmbStatus)Renorm(w, Float32, 3, 2, i, Float32, 2, 1.0, 2.0));
            Assert.Equal(EmbStatus.InvalidArgument, (EmbStatus)Renorm(w, Float32, -3, 2, i, Int64, 2, 1.0, 2.0));
            Assert.Equal(EmbStatus.InvalidArgument, (EmbStatus)Renorm(w, Float32, 3, 2, i, Int64, -2, 1.0, 2.0));
            Assert.Equal(EmbStatus.SizeOverflow, (EmbStatus)Renorm(w, Float32, 3, (long)int.MaxValue + 1, i, Int64, 2, 1.0, 2.0));
            Assert.Equal(EmbStatus.SizeOverflow, (EmbStatus)Renorm(w, Float32, long.MaxValue / 4, 2, i, Int64, 2, 1.0, 2.0));
            Assert.Equal(EmbStatus.SizeOverflow, (EmbStatus)Renorm(w, Float32, 3, 2, i, Int64, (long)Array.MaxLength + 1, 1.0, 2.0));
            Assert.Equal(EmbStatus.NullPointer, (EmbStatus)Renorm(null, Float32, 3, 2, i, Int64, 2, 1.0, 2.0));
            Assert.Equal(EmbStatus.NullPointer, (EmbStatus)Renorm(w, Float32, 3, 2, null, Int64, 2, 1.0, 2.0));
            Assert.Equal(EmbStatus.InvalidArgument, (EmbStatus)Renorm(w, Float32, 3, 2, w + 2, Int32, 2, 1.0, 2.0));
            Assert.Contains("overlaps indices", LastMessage());
            Assert.Equal(original, weight);

            Assert.Equal(EmbStatus.Ok, (EmbStatus)Renorm(null, Float32, 0, 2, null, Int64, 0, 1.0, 2.0));
            Assert.Equal(EmbStatus.Ok, (EmbStatus)Renorm(w, Float32, 3, 2, null, Int64, 0, 1.0, 2.0));
            Assert.Equal(EmbStatus.Ok, (EmbStatus)Renorm(null, Float32, 3, 0, i, Int64, 2, 1.0, 2.0));
            Assert.Equal(original, weight);
        }
    }

    [Theory]
    [InlineData(OptimizerTests.Optimizer.Sgd)]
    [InlineData(OptimizerTests.Optimizer.SgdWeightDecay)]
    [InlineData(OptimizerTests.Optimizer.Adagrad)]
    [InlineData(OptimizerTests.Optimizer.RowwiseAdagrad)]
    [InlineData(OptimizerTests.Optimizer.SparseAdam)]
    public void Step_MatchesTheSpanApi(OptimizerTests.Optimizer optimizer)
    {
        foreach (int dim in new[] { 1, 7, 16, 37, 300 })
        {
            var expected = new OptimizerTests.Model(20, dim, seed: dim);
            var actual = expected.Clone();
            for (int step = 1; step <= 3; step++)
            {
                (long[] rows, float[] values) = OptimizerTests.Gradient(20, dim, seed: step);
                expected.Step(optimizer, rows, values, step, KernelDispatch.BestWidth);
                Assert.Equal(EmbStatus.Ok, Call(optimizer, actual, rows, values, step));
            }

            expected.AssertBitEqual(actual, $"{optimizer}, dim {dim}");
        }
    }

    [Theory]
    [InlineData(OptimizerTests.Optimizer.Sgd)]
    [InlineData(OptimizerTests.Optimizer.Adagrad)]
    [InlineData(OptimizerTests.Optimizer.RowwiseAdagrad)]
    [InlineData(OptimizerTests.Optimizer.SparseAdam)]
    public void Step_ReportsBadRowsAndHyperParametersAndWritesNothing(OptimizerTests.Optimizer optimizer)
    {
        var model = new OptimizerTests.Model(6, 5, seed: 1);
        var original = model.Clone();
        float[] values = OptimizerTests.Gradient(new long[3], 5, seed: 2);

        Assert.Equal(EmbStatus.InvalidArgument, Call(optimizer, model, [0, 4, 4], values, 1));
        Assert.Equal("row 4 at position 2 is not above the row before it (4); rows must be strictly ascending (coalesce the gradient first)", LastMessage());
        Assert.Equal(EmbStatus.IndexOutOfRange, Call(optimizer, model, [0, 4, 6], values, 1));
        Assert.StartsWith("index 6 at position 2 is out of range", LastMessage());
        Assert.Equal(EmbStatus.IndexOutOfRange, Call(optimizer, model, [-2, 4, 5], values, 1));
        Assert.Equal(EmbStatus.InvalidArgument, Call(optimizer, model, [0, 1, 2], values, 1, lr: -1));
        Assert.StartsWith("Invalid learning rate: -1", LastMessage());
        if (optimizer is not OptimizerTests.Optimizer.Sgd and not OptimizerTests.Optimizer.RowwiseAdagrad)
        {
            Assert.Equal(EmbStatus.InvalidArgument, Call(optimizer, model, [0, 1, 2], values, 0));
            Assert.StartsWith("step is 0", LastMessage());
        }

        Assert.Equal(EmbStatus.UnsupportedDtype, Call(optimizer, model, [0, 1, 2], values, 1, dtype: 7));
        Assert.Equal(EmbStatus.InvalidArgument, Call(optimizer, model, [0, 1, 2], values, 1, numRows: -1));
        Assert.Equal(EmbStatus.SizeOverflow, Call(optimizer, model, [0, 1, 2], values, 1, numRows: long.MaxValue / 2));
        original.AssertBitEqual(model, $"{optimizer} after failures");
    }

    [Fact]
    public void Step_ReportsNullAndOverlappingBuffers()
    {
        float[] weight = new float[12], state = new float[12], momentum = new float[4], values = new float[6];
        long[] rows = [1, 3];
        fixed (float* w = weight)
        fixed (float* s = state)
        fixed (float* m = momentum)
        fixed (float* v = values)
        fixed (long* r = rows)
        {
            Assert.Equal(EmbStatus.NullPointer, (EmbStatus)Sgd(null, Float32, 4, 3, r, v, 2, 0.1, 0));
            Assert.Equal(EmbStatus.NullPointer, (EmbStatus)Sgd(w, Float32, 4, 3, null, v, 2, 0.1, 0));
            Assert.Equal(EmbStatus.NullPointer, (EmbStatus)Sgd(w, Float32, 4, 3, r, null, 2, 0.1, 0));
            Assert.Equal(EmbStatus.NullPointer, (EmbStatus)Adagrad(w, null, Float32, 4, 3, r, v, 2, 0.1, 0, 1e-10, 1));
            Assert.Equal(EmbStatus.NullPointer, (EmbStatus)RowwiseAdagrad(w, null, Float32, 4, 3, r, v, 2, 0.1, 1e-10));
            Assert.Equal(EmbStatus.NullPointer, (EmbStatus)SparseAdam(w, s, null, Float32, 4, 3, r, v, 2, 0.1, 0.9, 0.999, 1e-8, 1));

            Assert.Equal(EmbStatus.InvalidArgument, (EmbStatus)Sgd(w, Float32, 4, 3, r, w + 6, 2, 0.1, 0));
            Assert.Contains("weight overlaps values", LastMessage());
            Assert.Equal(EmbStatus.InvalidArgument, (EmbStatus)Adagrad(w, w + 11, Float32, 4, 3, r, v, 2, 0.1, 0, 1e-10, 1));
            Assert.Equal(EmbStatus.InvalidArgument, (EmbStatus)RowwiseAdagrad(w, s, Float32, 4, 3, r, s + 1, 2, 0.1, 1e-10));
            Assert.Contains("momentum overlaps values", LastMessage());
            Assert.Equal(EmbStatus.InvalidArgument, (EmbStatus)SparseAdam(w, s, s + 3, Float32, 4, 3, r, v, 2, 0.1, 0.9, 0.999, 1e-8, 1));
            Assert.Contains("exp_avg overlaps exp_avg_sq", LastMessage());
            Assert.Equal(EmbStatus.InvalidArgument, (EmbStatus)SparseAdam(w, s, m, Float32, 4, 3, (long*)s, v, 2, 0.1, 0.9, 0.999, 1e-8, 1));
            Assert.All(weight, value => Assert.Equal(0, value));

            // Empty gradients may pass NULL; an empty table too.
            Assert.Equal(EmbStatus.Ok, (EmbStatus)Sgd(w, Float32, 4, 3, null, null, 0, 0.1, 0));
            Assert.Equal(EmbStatus.Ok, (EmbStatus)SparseAdam(null, null, null, Float32, 0, 3, null, null, 0, 0.1, 0.9, 0.999, 1e-8, 1));
            Assert.Equal(EmbStatus.Ok, (EmbStatus)RowwiseAdagrad(w, m, Float32, 4, 3, r, v, 2, 0.1, 1e-10));
        }
    }

    [Fact]
    public void Exports_AreTheFunctionsTheHeaderDeclares()
    {
        HeaderDeclarations.AssertExportedAndDeclared("emb_embedding_renorm", "emb_embedding_renorm_strided_rows", "emb_sgd_step", "emb_adagrad_step", "emb_rowwise_adagrad_step", "emb_sparse_adam_step");
    }

    private static EmbStatus Call(OptimizerTests.Optimizer optimizer, OptimizerTests.Model model, long[] rows, float[] values, long step,
        double lr = OptimizerTests.Model.Lr, int dtype = Float32, long? numRows = null)
    {
        long count = numRows ?? rows.Length, tableRows = model.Momentum.Length, dim = model.Dim;
        fixed (float* w = model.Weight)
        fixed (float* s1 = model.State1)
        fixed (float* s2 = model.State2)
        fixed (float* m = model.Momentum)
        fixed (long* r = rows)
        fixed (float* v = values)
        {
            return (EmbStatus)(optimizer switch
            {
                OptimizerTests.Optimizer.Sgd => Sgd(w, dtype, tableRows, dim, r, v, count, lr, 0),
                OptimizerTests.Optimizer.SgdWeightDecay => Sgd(w, dtype, tableRows, dim, r, v, count, lr, OptimizerTests.Model.WeightDecay),
                OptimizerTests.Optimizer.Adagrad => Adagrad(w, s1, dtype, tableRows, dim, r, v, count, lr, OptimizerTests.Model.LrDecay, OptimizerTests.Model.AdagradEps, step),
                OptimizerTests.Optimizer.RowwiseAdagrad => RowwiseAdagrad(w, m, dtype, tableRows, dim, r, v, count, lr, OptimizerTests.Model.RowwiseEps),
                _ => SparseAdam(w, s1, s2, dtype, tableRows, dim, r, v, count, lr, OptimizerTests.Model.Beta1, OptimizerTests.Model.Beta2, OptimizerTests.Model.AdamEps, step),
            });
        }
    }

    private static string LastMessage()
    {
        delegate* unmanaged<byte*> lastError = &NativeExports.LastErrorMessage;
        return Marshal.PtrToStringUTF8((nint)lastError())!;
    }
}
