using System;
using System.Globalization;
using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace Embedding.Native;

public static partial class EmbeddingPrimitives
{
    // Fused sparse optimizer steps. Each takes a coalesced sparse gradient — `rows` strictly
    // ascending, `values` one row of embeddingDim elements per entry — and updates only those rows
    // of the weight and of the optimizer state, in place. Weight, values and state share the table's
    // element type (float32, float64, float16 or bfloat16). Python float hyper-parameters become
    // scalars of that type where torch multiplies a tensor by them (float16 and bfloat16 through
    // float, as c10 converts a double); scalar schedules (Adagrad's clr, SparseAdam's step size) are
    // computed in double first, as torch does in Python.
    //
    // float32 and float64 share one generic path over vectors of the width; float16 and bfloat16
    // widen to float vectors of the width and round to the type after every operation torch rounds.
    // Every column is updated independently (no horizontal reduction except row-wise Adagrad's
    // documented row mean), so results are bit-identical at every vector width.

    /// <summary>
    /// One step of <c>torch.optim.SGD(lr, weight_decay)</c> without momentum on a coalesced sparse gradient.
    /// </summary>
    /// <remarks>
    /// <code>
    /// D = embeddingDim
    /// require rows strictly ascending, 0 &lt;= rows[j] &lt; weight.Length / D   // else throws, nothing written
    /// for j in 0 .. rows.Length-1:  r = rows[j];  g = values[j*D .. j*D+D-1]
    ///     for c in 0 .. D-1:
    ///         d = weightDecay != 0 ? fma(w[r][c], (float)weightDecay, g[c]) : g[c]
    ///         w[r][c] = fma(d, (float)(-lr), w[r][c])
    /// </code>
    /// <para>
    /// One line: <c>W[rows] += fl32(-lr) · (G + fl32(wd) · W[rows])</c>, each multiply-add fused (torch adds
    /// a sparse gradient through BLAS axpy, which fuses; its dense <c>add(alpha=)</c> fuses too).
    /// With <paramref name="weightDecay"/> = 0 this equals torch 1.13 bit for bit. torch refuses weight
    /// decay with sparse gradients and, with a dense gradient, decays <em>every</em> row; this step
    /// decays only the listed rows (lazy weight decay), so untouched rows keep their values.
    /// </para>
    /// </remarks>
    /// <param name="weight">The table, <c>num_embeddings × embeddingDim</c> floats; updated in place.</param>
    /// <param name="embeddingDim">Columns per row; positive.</param>
    /// <param name="rows">The gradient's rows, strictly ascending (coalesced).</param>
    /// <param name="values">The gradient's values, <c>rows.Length × embeddingDim</c> floats.</param>
    /// <param name="lr">Learning rate, ≥ 0.</param>
    /// <param name="weightDecay">L2 penalty applied to the listed rows, ≥ 0.</param>
    /// <exception cref="ArgumentOutOfRangeException">A row is out of range, a hyper-parameter is invalid (torch's message), or <paramref name="embeddingDim"/> is not positive.</exception>
    /// <exception cref="ArgumentException">Rows are not strictly ascending, lengths do not fit, or a written buffer overlaps another.</exception>
    public static void SgdStep(Span<float> weight, int embeddingDim, ReadOnlySpan<long> rows, ReadOnlySpan<float> values, double lr, double weightDecay = 0) =>
        SgdStep<float>(weight, embeddingDim, rows, values, lr, weightDecay, KernelDispatch.BestWidth);

    /// <summary>
    /// One step of <c>torch.optim.Adagrad(lr, lr_decay, eps)</c> (its sparse-gradient path) on a coalesced sparse gradient.
    /// </summary>
    /// <remarks>
    /// <code>
    /// clr = lr / (1 + (step - 1) * lrDecay)                   // double
    /// for j in 0 .. rows.Length-1:  r = rows[j];  g = values[j*D .. j*D+D-1]
    ///     for c in 0 .. D-1:
    ///         s = stateSum[r][c] + g[c] * g[c];  stateSum[r][c] = s
    ///         w[r][c] = fma(g[c] / (sqrt(s) + (float)eps), (float)(-clr), w[r][c])
    /// </code>
    /// <para>
    /// One line: <c>S[rows] += G²; W[rows] += fl32(-clr) · G / (√S[rows] + fl32(eps))</c>; equals torch 1.13
    /// bit for bit (torch's final add is BLAS axpy, fused). <paramref name="step"/> is the step being
    /// taken, 1 for the first (torch increments its counter before computing <c>clr</c>).
    /// </para>
    /// </remarks>
    /// <param name="weight">The table; updated in place.</param>
    /// <param name="stateSum">Adagrad's <c>sum</c> state, the weight's shape (torch starts it at <c>initial_accumulator_value</c>); updated in place.</param>
    /// <param name="embeddingDim">Columns per row; positive.</param>
    /// <param name="rows">The gradient's rows, strictly ascending (coalesced).</param>
    /// <param name="values">The gradient's values, <c>rows.Length × embeddingDim</c> floats.</param>
    /// <param name="lr">Learning rate, ≥ 0.</param>
    /// <param name="lrDecay">Learning-rate decay, ≥ 0.</param>
    /// <param name="eps">Added to the denominator, ≥ 0 (torch's default is 1e-10).</param>
    /// <param name="step">The 1-based number of this step.</param>
    /// <exception cref="ArgumentOutOfRangeException">A row is out of range, a hyper-parameter is invalid, or <paramref name="step"/> &lt; 1.</exception>
    /// <exception cref="ArgumentException">Rows are not strictly ascending, lengths do not fit, or a written buffer overlaps another.</exception>
    public static void AdagradStep(Span<float> weight, Span<float> stateSum, int embeddingDim, ReadOnlySpan<long> rows, ReadOnlySpan<float> values,
        double lr, double lrDecay, double eps, long step) =>
        AdagradStep<float>(weight, stateSum, embeddingDim, rows, values, lr, lrDecay, eps, step, KernelDispatch.BestWidth);

    /// <summary>
    /// One step of row-wise Adagrad (FBGEMM's <c>rowwise_sparse_adagrad</c>: one accumulator per row) on a coalesced sparse gradient.
    /// </summary>
    /// <remarks>
    /// <code>
    /// for j in 0 .. rows.Length-1:  r = rows[j];  g = values[j*D .. j*D+D-1]
    ///     sum = 0.0 (double);  for c in 0 .. D-1: sum += (double)g[c] * g[c]    // columns in order
    ///     h = momentum[r] + (float)(sum / D);  momentum[r] = h
    ///     step = (float)lr / (sqrt(h) + (float)eps)                             // float
    ///     for c in 0 .. D-1: w[r][c] = fma(g[c], -step, w[r][c])
    /// </code>
    /// <para>
    /// One line: <c>M[r] += mean(G[r]²); W[r] -= fl32(lr) / (√M[r] + fl32(eps)) · G[r]</c>. The row mean
    /// is the one horizontal reduction: it is summed in double in column order at every width (FBGEMM
    /// sums float32 in eight interleaved lanes instead, so results can differ from FBGEMM by 1 ulp).
    /// </para>
    /// </remarks>
    /// <param name="weight">The table; updated in place.</param>
    /// <param name="momentum">One float per table row; updated in place.</param>
    /// <param name="embeddingDim">Columns per row; positive.</param>
    /// <param name="rows">The gradient's rows, strictly ascending (coalesced).</param>
    /// <param name="values">The gradient's values, <c>rows.Length × embeddingDim</c> floats.</param>
    /// <param name="lr">Learning rate, ≥ 0.</param>
    /// <param name="eps">Added to the denominator, ≥ 0.</param>
    /// <exception cref="ArgumentOutOfRangeException">A row is out of range or a hyper-parameter is invalid.</exception>
    /// <exception cref="ArgumentException">Rows are not strictly ascending, lengths do not fit, or a written buffer overlaps another.</exception>
    public static void RowwiseAdagradStep(Span<float> weight, Span<float> momentum, int embeddingDim, ReadOnlySpan<long> rows, ReadOnlySpan<float> values,
        double lr, double eps) =>
        RowwiseAdagradStep<float>(weight, momentum, embeddingDim, rows, values, lr, eps, KernelDispatch.BestWidth);

    /// <summary>
    /// One step of <c>torch.optim.SparseAdam(lr, betas=(beta1, beta2), eps)</c> on a coalesced sparse gradient.
    /// </summary>
    /// <remarks>
    /// <code>
    /// stepSize = lr * sqrt(1 - beta2^step) / (1 - beta1^step)          // double, in this order
    /// for j in 0 .. rows.Length-1:  r = rows[j];  g = values[j*D .. j*D+D-1]
    ///     for c in 0 .. D-1:
    ///         m = expAvg[r][c] + (g[c] - expAvg[r][c]) * (float)(1 - beta1);        expAvg[r][c] = m
    ///         v = expAvgSq[r][c] + (g[c] * g[c] - expAvgSq[r][c]) * (float)(1 - beta2); expAvgSq[r][c] = v
    ///         w[r][c] = w[r][c] + (m / (sqrt(v) + (float)eps)) * (float)(-stepSize)
    /// </code>
    /// <para>
    /// One line: <c>m += (g - m)(1-β₁); v += (g² - v)(1-β₂); W[rows] += fl32(-stepSize) · m / (√v + fl32(eps))</c>,
    /// every operation rounded to float32 (none fused), which equals torch 1.13 bit for bit.
    /// </para>
    /// </remarks>
    /// <param name="weight">The table; updated in place.</param>
    /// <param name="expAvg">First-moment state, the weight's shape; updated in place.</param>
    /// <param name="expAvgSq">Second-moment state, the weight's shape; updated in place.</param>
    /// <param name="embeddingDim">Columns per row; positive.</param>
    /// <param name="rows">The gradient's rows, strictly ascending (coalesced).</param>
    /// <param name="values">The gradient's values, <c>rows.Length × embeddingDim</c> floats.</param>
    /// <param name="lr">Learning rate, &gt; 0.</param>
    /// <param name="beta1">First-moment decay, in [0, 1).</param>
    /// <param name="beta2">Second-moment decay, in [0, 1).</param>
    /// <param name="eps">Added to the denominator, &gt; 0.</param>
    /// <param name="step">The 1-based number of this step.</param>
    /// <exception cref="ArgumentOutOfRangeException">A row is out of range, a hyper-parameter is invalid, or <paramref name="step"/> &lt; 1.</exception>
    /// <exception cref="ArgumentException">Rows are not strictly ascending, lengths do not fit, or a written buffer overlaps another.</exception>
    public static void SparseAdamStep(Span<float> weight, Span<float> expAvg, Span<float> expAvgSq, int embeddingDim, ReadOnlySpan<long> rows, ReadOnlySpan<float> values,
        double lr, double beta1, double beta2, double eps, long step) =>
        SparseAdamStep<float>(weight, expAvg, expAvgSq, embeddingDim, rows, values, lr, beta1, beta2, eps, step, KernelDispatch.BestWidth);

    // ---- float64, float16 and bfloat16 tables -------------------------------------------------
    // RS0026 guards against overloads that differ only in optional parameters, which callers could not
    // tell apart; these differ in the table's element type, so every call binds to exactly one of them.
#pragma warning disable RS0026

    /// <summary>
    /// One step of <c>torch.optim.SGD(lr, weight_decay)</c> without momentum on a coalesced sparse gradient,
    /// for a float64, float16 or bfloat16 table, with torch 1.13's arithmetic for the type.
    /// </summary>
    /// <remarks>
    /// <code>
    /// D = embeddingDim; rd(x) = x rounded to the table type (nearest, ties to even);
    /// fl(x) = the double x converted to the type (float16 and bfloat16: to float, then to the type)
    /// require rows strictly ascending, 0 &lt;= rows[j] &lt; weight.Length / D   // else throws, nothing written
    /// for j in 0 .. rows.Length-1:  r = rows[j];  g = values[j*D .. j*D+D-1]
    ///     for c in 0 .. D-1:
    ///         float64:            d = weightDecay != 0 ? fma(w[r][c], weightDecay, g[c]) : g[c]
    ///                             w[r][c] = fma(d, -lr, w[r][c])
    ///         float16, bfloat16:  every operation in float, then rounded:
    ///                             d = weightDecay != 0 ? rd(g[c] + rd(w[r][c] · fl(weightDecay))) : g[c]
    ///                             w[r][c] = rd(w[r][c] + rd(d · fl(-lr)))
    /// </code>
    /// <para>
    /// One line: <c>W[rows] += fl(-lr) · (G + fl(wd) · W[rows])</c>, fused for float64 (torch's BLAS axpy),
    /// rounded after each operation for float16 and bfloat16 (torch's c10 arithmetic for its sparse add).
    /// With <paramref name="weightDecay"/> = 0 this equals torch 1.13 bit for bit for all three types.
    /// Weight decay is lazy, as for float32: only the listed rows are decayed.
    /// </para>
    /// </remarks>
    /// <param name="weight">The table, <c>num_embeddings × embeddingDim</c> elements; updated in place.</param>
    /// <param name="embeddingDim">Columns per row; positive.</param>
    /// <param name="rows">The gradient's rows, strictly ascending (coalesced).</param>
    /// <param name="values">The gradient's values, <c>rows.Length × embeddingDim</c> elements of the weight's type.</param>
    /// <param name="lr">Learning rate, ≥ 0.</param>
    /// <param name="weightDecay">L2 penalty applied to the listed rows, ≥ 0.</param>
    /// <exception cref="ArgumentOutOfRangeException">A row is out of range, a hyper-parameter is invalid (torch's message), or <paramref name="embeddingDim"/> is not positive.</exception>
    /// <exception cref="ArgumentException">Rows are not strictly ascending, lengths do not fit, or a written buffer overlaps another.</exception>
    public static void SgdStep(Span<double> weight, int embeddingDim, ReadOnlySpan<long> rows, ReadOnlySpan<double> values, double lr, double weightDecay = 0) =>
        SgdStep<double>(weight, embeddingDim, rows, values, lr, weightDecay, KernelDispatch.BestWidth);

    /// <inheritdoc cref="SgdStep(Span{double}, int, ReadOnlySpan{long}, ReadOnlySpan{double}, double, double)"/>
    public static void SgdStep(Span<Half> weight, int embeddingDim, ReadOnlySpan<long> rows, ReadOnlySpan<Half> values, double lr, double weightDecay = 0) =>
        SgdStep<Half>(weight, embeddingDim, rows, values, lr, weightDecay, KernelDispatch.BestWidth);

    /// <inheritdoc cref="SgdStep(Span{double}, int, ReadOnlySpan{long}, ReadOnlySpan{double}, double, double)"/>
    public static void SgdStep(Span<BFloat16> weight, int embeddingDim, ReadOnlySpan<long> rows, ReadOnlySpan<BFloat16> values, double lr, double weightDecay = 0) =>
        SgdStep<BFloat16>(weight, embeddingDim, rows, values, lr, weightDecay, KernelDispatch.BestWidth);

    /// <summary>
    /// One step of <c>torch.optim.Adagrad(lr, lr_decay, eps)</c> (its sparse-gradient path) on a coalesced
    /// sparse gradient, for a float64, float16 or bfloat16 table and state, with torch 1.13's arithmetic
    /// for the type.
    /// </summary>
    /// <remarks>
    /// <code>
    /// rd, fl as for SgdStep;  clr = lr / (1 + (step - 1) * lrDecay)       // double
    /// for j in 0 .. rows.Length-1:  r = rows[j];  g = values[j*D .. j*D+D-1]
    ///     for c in 0 .. D-1:
    ///         float64:            s = stateSum[r][c] + g[c] * g[c];  stateSum[r][c] = s
    ///                             w[r][c] = fma(g[c] / (sqrt(s) + eps), -clr, w[r][c])
    ///         float16, bfloat16:  every operation in float, then rounded:
    ///                             s = rd(stateSum[r][c] + rd(g[c] · g[c]));  stateSum[r][c] = s
    ///                             std = rd(rd(sqrt(s)) + fl(eps))
    ///                             w[r][c] = rd(w[r][c] + rd(rd(g[c] / std) · fl(-clr)))
    /// </code>
    /// <para>
    /// float64 and bfloat16 equal torch 1.13 bit for bit. torch 1.13 refuses float16 here
    /// (<c>"sqrt_vml_cpu" not implemented for 'Half'</c>); this step computes the bfloat16 formula
    /// rounded to float16. Note that <c>fl(eps)</c> is 0 in float16 for <c>eps &lt; 2^-25</c> (torch's default
    /// 1e-10 included), so a zero gradient on a zero state gives <c>0 / 0 = NaN</c> there; pass a larger eps.
    /// </para>
    /// </remarks>
    /// <param name="weight">The table; updated in place.</param>
    /// <param name="stateSum">Adagrad's <c>sum</c> state, the weight's shape and type (torch starts it at <c>initial_accumulator_value</c>); updated in place.</param>
    /// <param name="embeddingDim">Columns per row; positive.</param>
    /// <param name="rows">The gradient's rows, strictly ascending (coalesced).</param>
    /// <param name="values">The gradient's values, <c>rows.Length × embeddingDim</c> elements of the weight's type.</param>
    /// <param name="lr">Learning rate, ≥ 0.</param>
    /// <param name="lrDecay">Learning-rate decay, ≥ 0.</param>
    /// <param name="eps">Added to the denominator, ≥ 0 (torch's default is 1e-10).</param>
    /// <param name="step">The 1-based number of this step.</param>
    /// <exception cref="ArgumentOutOfRangeException">A row is out of range, a hyper-parameter is invalid, or <paramref name="step"/> &lt; 1.</exception>
    /// <exception cref="ArgumentException">Rows are not strictly ascending, lengths do not fit, or a written buffer overlaps another.</exception>
    public static void AdagradStep(Span<double> weight, Span<double> stateSum, int embeddingDim, ReadOnlySpan<long> rows, ReadOnlySpan<double> values,
        double lr, double lrDecay, double eps, long step) =>
        AdagradStep<double>(weight, stateSum, embeddingDim, rows, values, lr, lrDecay, eps, step, KernelDispatch.BestWidth);

    /// <inheritdoc cref="AdagradStep(Span{double}, Span{double}, int, ReadOnlySpan{long}, ReadOnlySpan{double}, double, double, double, long)"/>
    public static void AdagradStep(Span<Half> weight, Span<Half> stateSum, int embeddingDim, ReadOnlySpan<long> rows, ReadOnlySpan<Half> values,
        double lr, double lrDecay, double eps, long step) =>
        AdagradStep<Half>(weight, stateSum, embeddingDim, rows, values, lr, lrDecay, eps, step, KernelDispatch.BestWidth);

    /// <inheritdoc cref="AdagradStep(Span{double}, Span{double}, int, ReadOnlySpan{long}, ReadOnlySpan{double}, double, double, double, long)"/>
    public static void AdagradStep(Span<BFloat16> weight, Span<BFloat16> stateSum, int embeddingDim, ReadOnlySpan<long> rows, ReadOnlySpan<BFloat16> values,
        double lr, double lrDecay, double eps, long step) =>
        AdagradStep<BFloat16>(weight, stateSum, embeddingDim, rows, values, lr, lrDecay, eps, step, KernelDispatch.BestWidth);

    /// <summary>
    /// One step of row-wise Adagrad (FBGEMM's <c>rowwise_sparse_adagrad</c>: one accumulator per row) on a
    /// coalesced sparse gradient, for a float64, float16 or bfloat16 table; the momentum has the table's type.
    /// </summary>
    /// <remarks>
    /// <code>
    /// rd, fl as for SgdStep
    /// for j in 0 .. rows.Length-1:  r = rows[j];  g = values[j*D .. j*D+D-1]
    ///     sum = 0.0 (double);  for c in 0 .. D-1: sum += (double)g[c] * g[c]    // columns in order
    ///     float64:            h = momentum[r] + sum / D;  momentum[r] = h
    ///                         step = lr / (sqrt(h) + eps)
    ///                         for c in 0 .. D-1: w[r][c] = fma(g[c], -step, w[r][c])
    ///     float16, bfloat16:  every operation in float, then rounded:
    ///                         h = rd(momentum[r] + fl(sum / D));  momentum[r] = h
    ///                         step = rd(fl(lr) / rd(rd(sqrt(h)) + fl(eps)))
    ///                         for c in 0 .. D-1: w[r][c] = rd(w[r][c] + rd(g[c] · -step))
    /// </code>
    /// <para>
    /// The float32 formula in the table's type; torch has no counterpart. The squares of float16 and
    /// bfloat16 values are exact in double, so their row sum rounds only as it grows.
    /// </para>
    /// </remarks>
    /// <param name="weight">The table; updated in place.</param>
    /// <param name="momentum">One element per table row, of the weight's type; updated in place.</param>
    /// <param name="embeddingDim">Columns per row; positive.</param>
    /// <param name="rows">The gradient's rows, strictly ascending (coalesced).</param>
    /// <param name="values">The gradient's values, <c>rows.Length × embeddingDim</c> elements of the weight's type.</param>
    /// <param name="lr">Learning rate, ≥ 0.</param>
    /// <param name="eps">Added to the denominator, ≥ 0.</param>
    /// <exception cref="ArgumentOutOfRangeException">A row is out of range or a hyper-parameter is invalid.</exception>
    /// <exception cref="ArgumentException">Rows are not strictly ascending, lengths do not fit, or a written buffer overlaps another.</exception>
    public static void RowwiseAdagradStep(Span<double> weight, Span<double> momentum, int embeddingDim, ReadOnlySpan<long> rows, ReadOnlySpan<double> values,
        double lr, double eps) =>
        RowwiseAdagradStep<double>(weight, momentum, embeddingDim, rows, values, lr, eps, KernelDispatch.BestWidth);

    /// <inheritdoc cref="RowwiseAdagradStep(Span{double}, Span{double}, int, ReadOnlySpan{long}, ReadOnlySpan{double}, double, double)"/>
    public static void RowwiseAdagradStep(Span<Half> weight, Span<Half> momentum, int embeddingDim, ReadOnlySpan<long> rows, ReadOnlySpan<Half> values,
        double lr, double eps) =>
        RowwiseAdagradStep<Half>(weight, momentum, embeddingDim, rows, values, lr, eps, KernelDispatch.BestWidth);

    /// <inheritdoc cref="RowwiseAdagradStep(Span{double}, Span{double}, int, ReadOnlySpan{long}, ReadOnlySpan{double}, double, double)"/>
    public static void RowwiseAdagradStep(Span<BFloat16> weight, Span<BFloat16> momentum, int embeddingDim, ReadOnlySpan<long> rows, ReadOnlySpan<BFloat16> values,
        double lr, double eps) =>
        RowwiseAdagradStep<BFloat16>(weight, momentum, embeddingDim, rows, values, lr, eps, KernelDispatch.BestWidth);

    /// <summary>
    /// One step of <c>torch.optim.SparseAdam(lr, betas=(beta1, beta2), eps)</c> on a coalesced sparse gradient,
    /// for a float64, float16 or bfloat16 table and state, with torch 1.13's arithmetic for the type.
    /// </summary>
    /// <remarks>
    /// <code>
    /// rd, fl as for SgdStep;  stepSize = lr * sqrt(1 - beta2^step) / (1 - beta1^step)   // double, in this order
    /// for j in 0 .. rows.Length-1:  r = rows[j];  g = values[j*D .. j*D+D-1]
    ///     for c in 0 .. D-1, every operation rounded to the type (float16, bfloat16: computed in float):
    ///         m = rd(expAvg[r][c] + rd(rd(g[c] - expAvg[r][c]) · fl(1 - beta1)));         expAvg[r][c] = m
    ///         v = rd(expAvgSq[r][c] + rd(rd(rd(g[c]·g[c]) - expAvgSq[r][c]) · fl(1 - beta2))); expAvgSq[r][c] = v
    ///         w[r][c] = rd(w[r][c] + rd(rd(m / rd(rd(sqrt(v)) + fl(eps))) · fl(-stepSize)))
    /// </code>
    /// <para>
    /// float64 and bfloat16 equal torch 1.13 bit for bit (nothing is fused). torch 1.13 refuses float16
    /// here (<c>"sqrt_vml_cpu" not implemented for 'Half'</c>); this step computes the bfloat16 formula
    /// rounded to float16. Note that <c>fl(eps)</c> is 0 in float16 for <c>eps &lt; 2^-25</c> and <c>fl(1 - beta2)</c>
    /// is coarse (0.001 becomes 0.0010004), as a float16 tensor multiplied by them would see them.
    /// </para>
    /// </remarks>
    /// <param name="weight">The table; updated in place.</param>
    /// <param name="expAvg">First-moment state, the weight's shape and type; updated in place.</param>
    /// <param name="expAvgSq">Second-moment state, the weight's shape and type; updated in place.</param>
    /// <param name="embeddingDim">Columns per row; positive.</param>
    /// <param name="rows">The gradient's rows, strictly ascending (coalesced).</param>
    /// <param name="values">The gradient's values, <c>rows.Length × embeddingDim</c> elements of the weight's type.</param>
    /// <param name="lr">Learning rate, &gt; 0.</param>
    /// <param name="beta1">First-moment decay, in [0, 1).</param>
    /// <param name="beta2">Second-moment decay, in [0, 1).</param>
    /// <param name="eps">Added to the denominator, &gt; 0.</param>
    /// <param name="step">The 1-based number of this step.</param>
    /// <exception cref="ArgumentOutOfRangeException">A row is out of range, a hyper-parameter is invalid, or <paramref name="step"/> &lt; 1.</exception>
    /// <exception cref="ArgumentException">Rows are not strictly ascending, lengths do not fit, or a written buffer overlaps another.</exception>
    public static void SparseAdamStep(Span<double> weight, Span<double> expAvg, Span<double> expAvgSq, int embeddingDim, ReadOnlySpan<long> rows, ReadOnlySpan<double> values,
        double lr, double beta1, double beta2, double eps, long step) =>
        SparseAdamStep<double>(weight, expAvg, expAvgSq, embeddingDim, rows, values, lr, beta1, beta2, eps, step, KernelDispatch.BestWidth);

    /// <inheritdoc cref="SparseAdamStep(Span{double}, Span{double}, Span{double}, int, ReadOnlySpan{long}, ReadOnlySpan{double}, double, double, double, double, long)"/>
    public static void SparseAdamStep(Span<Half> weight, Span<Half> expAvg, Span<Half> expAvgSq, int embeddingDim, ReadOnlySpan<long> rows, ReadOnlySpan<Half> values,
        double lr, double beta1, double beta2, double eps, long step) =>
        SparseAdamStep<Half>(weight, expAvg, expAvgSq, embeddingDim, rows, values, lr, beta1, beta2, eps, step, KernelDispatch.BestWidth);

    /// <inheritdoc cref="SparseAdamStep(Span{double}, Span{double}, Span{double}, int, ReadOnlySpan{long}, ReadOnlySpan{double}, double, double, double, double, long)"/>
    public static void SparseAdamStep(Span<BFloat16> weight, Span<BFloat16> expAvg, Span<BFloat16> expAvgSq, int embeddingDim, ReadOnlySpan<long> rows, ReadOnlySpan<BFloat16> values,
        double lr, double beta1, double beta2, double eps, long step) =>
        SparseAdamStep<BFloat16>(weight, expAvg, expAvgSq, embeddingDim, rows, values, lr, beta1, beta2, eps, step, KernelDispatch.BestWidth);
#pragma warning restore RS0026

    // ---- Span overloads for any table type, with an explicit width (tests force each width) ----

    internal static void SgdStep<T>(Span<T> weight, int embeddingDim, ReadOnlySpan<long> rows, ReadOnlySpan<T> values, double lr, double weightDecay,
        VectorWidth width, int threads = EmbeddingThreads.UseCount)
        where T : unmanaged
    {
        long numEmbeddings = CheckSparseStepShapes(weight, embeddingDim, rows, values);
        ThrowIfInvalid(OptimizerChecks.Sgd(lr, weightDecay));
        ThrowIfOverlapping(weight, nameof(weight), rows, values, default, default);
        ThrowIfBadRow(rows, numEmbeddings, SgdCore(
            ref MemoryMarshal.GetReference(weight), numEmbeddings, embeddingDim,
            in MemoryMarshal.GetReference(rows), rows.Length, in MemoryMarshal.GetReference(values), lr, weightDecay, width, threads));
    }

    internal static void AdagradStep<T>(Span<T> weight, Span<T> stateSum, int embeddingDim, ReadOnlySpan<long> rows, ReadOnlySpan<T> values,
        double lr, double lrDecay, double eps, long step, VectorWidth width, int threads = EmbeddingThreads.UseCount)
        where T : unmanaged
    {
        long numEmbeddings = CheckSparseStepShapes(weight, embeddingDim, rows, values);
        CheckStateLength<T>(stateSum, weight.Length, nameof(stateSum));
        ThrowIfInvalid(OptimizerChecks.Adagrad(lr, lrDecay, eps, step));
        ThrowIfOverlapping(weight, nameof(weight), rows, values, stateSum, default);
        ThrowIfOverlapping(stateSum, nameof(stateSum), rows, values, default, default);
        ThrowIfBadRow(rows, numEmbeddings, AdagradCore(
            ref MemoryMarshal.GetReference(weight), ref MemoryMarshal.GetReference(stateSum), numEmbeddings, embeddingDim,
            in MemoryMarshal.GetReference(rows), rows.Length, in MemoryMarshal.GetReference(values), lr, lrDecay, eps, step, width, threads));
    }

    internal static void RowwiseAdagradStep<T>(Span<T> weight, Span<T> momentum, int embeddingDim, ReadOnlySpan<long> rows, ReadOnlySpan<T> values,
        double lr, double eps, VectorWidth width, int threads = EmbeddingThreads.UseCount)
        where T : unmanaged
    {
        long numEmbeddings = CheckSparseStepShapes(weight, embeddingDim, rows, values);
        CheckStateLength<T>(momentum, numEmbeddings, nameof(momentum));
        ThrowIfInvalid(OptimizerChecks.RowwiseAdagrad(lr, eps));
        ThrowIfOverlapping(weight, nameof(weight), rows, values, momentum, default);
        ThrowIfOverlapping(momentum, nameof(momentum), rows, values, default, default);
        ThrowIfBadRow(rows, numEmbeddings, RowwiseAdagradCore(
            ref MemoryMarshal.GetReference(weight), ref MemoryMarshal.GetReference(momentum), numEmbeddings, embeddingDim,
            in MemoryMarshal.GetReference(rows), rows.Length, in MemoryMarshal.GetReference(values), lr, eps, width, threads));
    }

    internal static void SparseAdamStep<T>(Span<T> weight, Span<T> expAvg, Span<T> expAvgSq, int embeddingDim, ReadOnlySpan<long> rows, ReadOnlySpan<T> values,
        double lr, double beta1, double beta2, double eps, long step, VectorWidth width, int threads = EmbeddingThreads.UseCount)
        where T : unmanaged
    {
        long numEmbeddings = CheckSparseStepShapes(weight, embeddingDim, rows, values);
        CheckStateLength<T>(expAvg, weight.Length, nameof(expAvg));
        CheckStateLength<T>(expAvgSq, weight.Length, nameof(expAvgSq));
        ThrowIfInvalid(OptimizerChecks.SparseAdam(lr, beta1, beta2, eps, step));
        ThrowIfOverlapping(weight, nameof(weight), rows, values, expAvg, expAvgSq);
        ThrowIfOverlapping(expAvg, nameof(expAvg), rows, values, expAvgSq, default);
        ThrowIfOverlapping(expAvgSq, nameof(expAvgSq), rows, values, default, default);
        ThrowIfBadRow(rows, numEmbeddings, SparseAdamCore(
            ref MemoryMarshal.GetReference(weight), ref MemoryMarshal.GetReference(expAvg), ref MemoryMarshal.GetReference(expAvgSq),
            numEmbeddings, embeddingDim, in MemoryMarshal.GetReference(rows), rows.Length, in MemoryMarshal.GetReference(values),
            lr, beta1, beta2, eps, step, width, threads));
    }

    // ---- Validated cores, shared by the span API and the C ABI --------------------------------
    // Each checks every row (in range, strictly ascending) before writing anything and returns -1,
    // or the position of the first bad row with nothing written. Shapes, buffers and
    // hyper-parameters (OptimizerChecks) are the caller's responsibility. T is float, double, Half
    // or BFloat16; weight, values and state all have it.

    internal static unsafe nint SgdCore<T>(ref T weight, long numEmbeddings, int dimension, ref readonly long rows, nint count, ref readonly T values,
        double lr, double weightDecay, VectorWidth width, int threads = EmbeddingThreads.UseCount)
        where T : unmanaged
    {
        nint bad = FindFirstBadRow(in rows, count, numEmbeddings);
        if (bad >= 0 || count == 0 || dimension == 0)
        {
            return bad;
        }

        fixed (T* table = &weight)
        fixed (long* first = &Unsafe.AsRef(in rows))
        fixed (T* gradient = &Unsafe.AsRef(in values))
        {
            var work = new StepWork<T>
            {
                Kind = StepKind.Sgd, Weight = table, Rows = first, Count = count, Values = gradient, Dimension = dimension,
                Scalars = new StepScalars(-lr, weightDecay),
            };
            RunSteps(ref work, width, threads, 3);
        }

        return -1;
    }

    internal static unsafe nint AdagradCore<T>(ref T weight, ref T stateSum, long numEmbeddings, int dimension, ref readonly long rows, nint count, ref readonly T values,
        double lr, double lrDecay, double eps, long step, VectorWidth width, int threads = EmbeddingThreads.UseCount)
        where T : unmanaged
    {
        nint bad = FindFirstBadRow(in rows, count, numEmbeddings);
        if (bad >= 0 || count == 0 || dimension == 0)
        {
            return bad;
        }

        double clr = lr / (1 + (step - 1) * lrDecay);
        fixed (T* table = &weight)
        fixed (T* sum = &stateSum)
        fixed (long* first = &Unsafe.AsRef(in rows))
        fixed (T* gradient = &Unsafe.AsRef(in values))
        {
            var work = new StepWork<T>
            {
                Kind = StepKind.Adagrad, Weight = table, State = sum, Rows = first, Count = count, Values = gradient, Dimension = dimension,
                Scalars = new StepScalars(-clr, eps),
            };
            RunSteps(ref work, width, threads, 5);
        }

        return -1;
    }

    internal static unsafe nint RowwiseAdagradCore<T>(ref T weight, ref T momentum, long numEmbeddings, int dimension, ref readonly long rows, nint count, ref readonly T values,
        double lr, double eps, VectorWidth width, int threads = EmbeddingThreads.UseCount)
        where T : unmanaged
    {
        nint bad = FindFirstBadRow(in rows, count, numEmbeddings);
        if (bad >= 0 || count == 0 || dimension == 0)
        {
            return bad;
        }

        fixed (T* table = &weight)
        fixed (T* rowState = &momentum)
        fixed (long* first = &Unsafe.AsRef(in rows))
        fixed (T* gradient = &Unsafe.AsRef(in values))
        {
            var work = new StepWork<T>
            {
                Kind = StepKind.RowwiseAdagrad, Weight = table, State = rowState, Rows = first, Count = count, Values = gradient, Dimension = dimension,
                Scalars = new StepScalars(lr, eps),
            };
            RunSteps(ref work, width, threads, 3);
        }

        return -1;
    }

    internal static unsafe nint SparseAdamCore<T>(ref T weight, ref T expAvg, ref T expAvgSq, long numEmbeddings, int dimension, ref readonly long rows, nint count,
        ref readonly T values, double lr, double beta1, double beta2, double eps, long step, VectorWidth width, int threads = EmbeddingThreads.UseCount)
        where T : unmanaged
    {
        nint bad = FindFirstBadRow(in rows, count, numEmbeddings);
        if (bad >= 0 || count == 0 || dimension == 0)
        {
            return bad;
        }

        fixed (T* table = &weight)
        fixed (T* m = &expAvg)
        fixed (T* v = &expAvgSq)
        fixed (long* first = &Unsafe.AsRef(in rows))
        fixed (T* gradient = &Unsafe.AsRef(in values))
        {
            var work = new StepWork<T>
            {
                Kind = StepKind.SparseAdam, Weight = table, State = m, SecondState = v, Rows = first, Count = count, Values = gradient, Dimension = dimension,
                Scalars = StepScalars.Adam(lr, beta1, beta2, eps, step),
            };
            RunSteps(ref work, width, threads, 7);
        }

        return -1;
    }

    // ---- Span-level checks --------------------------------------------------------------------

    /// <summary>Checks the dimension, the weight and the values; returns the table's row count.</summary>
    private static long CheckSparseStepShapes<T>(ReadOnlySpan<T> weight, int embeddingDim, ReadOnlySpan<long> rows, ReadOnlySpan<T> values)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(embeddingDim);
        if (weight.Length % embeddingDim != 0)
        {
            throw new ArgumentException($"The weight holds {weight.Length} elements, which is not a whole number of rows of {embeddingDim}.", nameof(weight));
        }

        long required = (long)rows.Length * embeddingDim;
        if (values.Length != required)
        {
            throw new ArgumentException($"The values hold {values.Length} elements; {rows.Length} rows × {embeddingDim} columns need exactly {required}.", nameof(values));
        }

        return weight.Length / embeddingDim;
    }

    private static void CheckStateLength<T>(ReadOnlySpan<T> state, long required, string name)
    {
        if (state.Length != required)
        {
            throw new ArgumentException($"{name} holds {state.Length} elements; it must hold exactly {required}.", name);
        }
    }

    /// <summary>Rejects a written buffer that overlaps the rows, the values or another state buffer.</summary>
    private static void ThrowIfOverlapping<T>(ReadOnlySpan<T> written, string name, ReadOnlySpan<long> rows, ReadOnlySpan<T> values, ReadOnlySpan<T> other, ReadOnlySpan<T> another)
        where T : unmanaged
    {
        if (MemoryMarshal.AsBytes(written).Overlaps(MemoryMarshal.AsBytes(rows)) || written.Overlaps(values) || written.Overlaps(other) || written.Overlaps(another))
        {
            throw new ArgumentException($"{name} overlaps another argument; every buffer a step writes must be separate.", name);
        }
    }

    private static void ThrowIfInvalid(OptimizerChecks.Error? error)
    {
        if (error is { } e)
        {
            throw new ArgumentOutOfRangeException(e.Parameter, e.Value, e.Message);
        }
    }

    private static void ThrowIfBadRow(ReadOnlySpan<long> rows, long numEmbeddings, nint bad)
    {
        if (bad < 0)
        {
            return;
        }

        long value = rows[(int)bad];
        if ((ulong)value >= (ulong)numEmbeddings)
        {
            throw new ArgumentOutOfRangeException(nameof(rows), value, EmbeddingErrors.IndexOutOfRange(bad, value, numEmbeddings));
        }

        throw new ArgumentException(OptimizerChecks.NotAscending(bad, value, rows[(int)bad - 1]), nameof(rows));
    }
}
