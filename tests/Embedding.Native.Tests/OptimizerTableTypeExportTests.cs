using System;
using System.Runtime.InteropServices;
using Embedding.Native.Interop;
using Xunit;
using Optimizer = Embedding.Native.Tests.OptimizerTests.Optimizer;

namespace Embedding.Native.Tests;

/// <summary>
/// <c>emb_sgd_step</c>, <c>emb_adagrad_step</c>, <c>emb_rowwise_adagrad_step</c> and <c>emb_sparse_adam_step</c>
/// on float64, float16 and bfloat16 tables, called in-process through unmanaged function pointers: the
/// same bits as the span API, the buffer checks sized by the element type, and refusal of dtypes that are
/// not table types.
/// </summary>
public sealed unsafe class OptimizerTableTypeExportTests
{
    private static readonly delegate* unmanaged<void*, int, long, long, long*, void*, long, double, double, int> Sgd = &NativeExports.SgdStep;
    private static readonly delegate* unmanaged<void*, void*, int, long, long, long*, void*, long, double, double, double, long, int> Adagrad = &NativeExports.AdagradStep;
    private static readonly delegate* unmanaged<void*, void*, int, long, long, long*, void*, long, double, double, int> RowwiseAdagrad = &NativeExports.RowwiseAdagradStep;
    private static readonly delegate* unmanaged<void*, void*, void*, int, long, long, long*, void*, long, double, double, double, double, long, int> SparseAdam = &NativeExports.SparseAdamStep;

    public static TheoryData<Optimizer> Optimizers() => new(Enum.GetValues<Optimizer>());

    [Theory]
    [MemberData(nameof(Optimizers))]
    public void Step_Float64MatchesTheSpanApi(Optimizer optimizer) => Check<double>(EmbDtype.Float64, optimizer);

    [Theory]
    [MemberData(nameof(Optimizers))]
    public void Step_Float16MatchesTheSpanApi(Optimizer optimizer) => Check<Half>(EmbDtype.Float16, optimizer);

    [Theory]
    [MemberData(nameof(Optimizers))]
    public void Step_BFloat16MatchesTheSpanApi(Optimizer optimizer) => Check<BFloat16>(EmbDtype.BFloat16, optimizer);

    [Theory]
    [MemberData(nameof(Optimizers))]
    public void Step_RefusesDtypesThatAreNotTableTypesAndWritesNothing(Optimizer optimizer)
    {
        var model = new OptimizerTableTypeTests<double>.Model(6, 5, seed: 1);
        var original = model.Clone();
        (long[] rows, double[] values) = OptimizerTableTypeTests<double>.Gradient(6, 5, seed: 2);
        foreach (int dtype in new[] { 0, (int)EmbDtype.Int32, (int)EmbDtype.Int64, 7, -1 })
        {
            Assert.Equal(EmbStatus.UnsupportedDtype, Call(optimizer, model, rows, values, 1, dtype));
            Assert.Contains($"not dtype {dtype}", LastMessage());
        }

        original.AssertBitEqual(model, $"{optimizer} after refused dtypes");
    }

    [Fact]
    public void Step_SizesTheOverlapChecksByTheElementType()
    {
        // Four float64 elements are 32 bytes: values starting at byte 24 overlap them.
        double[] wide = new double[8];
        long[] row = [0];
        fixed (double* w = wide)
        fixed (long* r = row)
        {
            Assert.Equal(EmbStatus.InvalidArgument, (EmbStatus)Sgd(w, (int)EmbDtype.Float64, 1, 4, r, w + 3, 1, 0.1, 0));
            Assert.Contains("values", LastMessage());
            Assert.Equal(EmbStatus.InvalidArgument, (EmbStatus)Adagrad(w, w + 2, (int)EmbDtype.Float64, 1, 3, r, w + 6, 1, 0.1, 0, 1e-10, 1));
            Assert.Contains("state_sum", LastMessage());
        }

        // Four bfloat16 elements are 8 bytes: values, state and rows right after them do not overlap.
        BFloat16[] narrow = new BFloat16[16];
        narrow.AsSpan(4, 4).Fill((BFloat16)1f);
        fixed (BFloat16* w = narrow)
        {
            *(long*)(w + 12) = 0;
            Assert.Equal(EmbStatus.Ok, (EmbStatus)Adagrad(w, w + 8, (int)EmbDtype.BFloat16, 1, 4, (long*)(w + 12), w + 4, 1, 0.5, 0, 1e-10, 1));
        }

        BFloat16[] expectedWeight = new BFloat16[4], expectedState = new BFloat16[4], ones = [(BFloat16)1f, (BFloat16)1f, (BFloat16)1f, (BFloat16)1f];
        EmbeddingPrimitives.AdagradStep(expectedWeight, expectedState, 4, [0], ones, 0.5, 0, 1e-10, 1);
        Assert.Equal(expectedWeight, narrow[..4]);
        Assert.Equal(expectedState, narrow[8..12]);
        Assert.Equal((BFloat16)(-0.5f), narrow[0]);
    }

    private static void Check<T>(EmbDtype dtype, Optimizer optimizer)
        where T : unmanaged
    {
        const int rows = 30, dim = 45;
        var expected = new OptimizerTableTypeTests<T>.Model(rows, dim, seed: 2);
        var actual = expected.Clone();
        for (int step = 1; step <= 2; step++)
        {
            (long[] touched, T[] values) = OptimizerTableTypeTests<T>.Gradient(rows, dim, seed: 3 + step);
            expected.Step(optimizer, touched, values, step, KernelDispatch.BestWidth);
            Assert.Equal(EmbStatus.Ok, Call(optimizer, actual, touched, values, step, (int)dtype));
        }

        expected.AssertBitEqual(actual, $"{dtype} {optimizer} through the C ABI");

        // A bad row changes nothing.
        var before = actual.Clone();
        (long[] bad, T[] badValues) = OptimizerTableTypeTests<T>.Gradient(rows, dim, seed: 9);
        bad[^1] = rows;
        Assert.Equal(EmbStatus.IndexOutOfRange, Call(optimizer, actual, bad, badValues, 3, (int)dtype));
        before.AssertBitEqual(actual, $"{dtype} {optimizer} after a bad row");
    }

    private static EmbStatus Call<T>(Optimizer optimizer, OptimizerTableTypeTests<T>.Model model, long[] rows, T[] values, long step, int dtype)
        where T : unmanaged
    {
        long count = rows.Length, tableRows = model.Momentum.Length, dim = model.Dim;
        fixed (T* w = model.Weight)
        fixed (T* s1 = model.State1)
        fixed (T* s2 = model.State2)
        fixed (T* m = model.Momentum)
        fixed (long* r = rows)
        fixed (T* v = values)
        {
            return (EmbStatus)(optimizer switch
            {
                Optimizer.Sgd => Sgd(w, dtype, tableRows, dim, r, v, count, OptimizerTests.Model.Lr, 0),
                Optimizer.SgdWeightDecay => Sgd(w, dtype, tableRows, dim, r, v, count, OptimizerTests.Model.Lr, OptimizerTests.Model.WeightDecay),
                Optimizer.Adagrad => Adagrad(w, s1, dtype, tableRows, dim, r, v, count, OptimizerTests.Model.Lr, OptimizerTests.Model.LrDecay, OptimizerTests.Model.AdagradEps, step),
                Optimizer.RowwiseAdagrad => RowwiseAdagrad(w, m, dtype, tableRows, dim, r, v, count, OptimizerTests.Model.Lr, OptimizerTests.Model.RowwiseEps),
                _ => SparseAdam(w, s1, s2, dtype, tableRows, dim, r, v, count, OptimizerTests.Model.Lr, OptimizerTests.Model.Beta1, OptimizerTests.Model.Beta2, OptimizerTests.Model.AdamEps, step),
            });
        }
    }

    private static string LastMessage()
    {
        delegate* unmanaged<byte*> lastError = &NativeExports.LastErrorMessage;
        return Marshal.PtrToStringUTF8((nint)lastError())!;
    }
}
