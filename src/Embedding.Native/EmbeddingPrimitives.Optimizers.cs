using System;
using System.Globalization;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace Embedding.Native;

public static partial class EmbeddingPrimitives
{
    // Fused sparse optimizer steps. Each takes a coalesced sparse gradient — `rows` strictly
    // ascending, `values` one row of embeddingDim floats per entry — and updates only those rows of
    // the weight and of the optimizer state, in place. Python float hyper-parameters become float32
    // scalars where torch multiplies a float32 tensor by them; scalar schedules (Adagrad's clr,
    // SparseAdam's step size) are computed in double first, as torch does in Python.
    //
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
        SgdStep(weight, embeddingDim, rows, values, lr, weightDecay, KernelDispatch.BestWidth);

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
        AdagradStep(weight, stateSum, embeddingDim, rows, values, lr, lrDecay, eps, step, KernelDispatch.BestWidth);

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
        RowwiseAdagradStep(weight, momentum, embeddingDim, rows, values, lr, eps, KernelDispatch.BestWidth);

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
        SparseAdamStep(weight, expAvg, expAvgSq, embeddingDim, rows, values, lr, beta1, beta2, eps, step, KernelDispatch.BestWidth);

    // ---- Span overloads with an explicit width (tests force each width) ----------------------

    internal static void SgdStep(Span<float> weight, int embeddingDim, ReadOnlySpan<long> rows, ReadOnlySpan<float> values, double lr, double weightDecay, VectorWidth width, int threads = EmbeddingThreads.UseCount)
    {
        long numEmbeddings = CheckSparseStepShapes(weight, embeddingDim, rows, values);
        ThrowIfInvalid(OptimizerChecks.Sgd(lr, weightDecay));
        ThrowIfOverlapping(weight, nameof(weight), rows, values, default, default);
        ThrowIfBadRow(rows, numEmbeddings, SgdCore(
            ref MemoryMarshal.GetReference(weight), numEmbeddings, embeddingDim,
            in MemoryMarshal.GetReference(rows), rows.Length, in MemoryMarshal.GetReference(values), lr, weightDecay, width, threads));
    }

    internal static void AdagradStep(Span<float> weight, Span<float> stateSum, int embeddingDim, ReadOnlySpan<long> rows, ReadOnlySpan<float> values,
        double lr, double lrDecay, double eps, long step, VectorWidth width, int threads = EmbeddingThreads.UseCount)
    {
        long numEmbeddings = CheckSparseStepShapes(weight, embeddingDim, rows, values);
        CheckStateLength(stateSum, weight.Length, nameof(stateSum));
        ThrowIfInvalid(OptimizerChecks.Adagrad(lr, lrDecay, eps, step));
        ThrowIfOverlapping(weight, nameof(weight), rows, values, stateSum, default);
        ThrowIfOverlapping(stateSum, nameof(stateSum), rows, values, default, default);
        ThrowIfBadRow(rows, numEmbeddings, AdagradCore(
            ref MemoryMarshal.GetReference(weight), ref MemoryMarshal.GetReference(stateSum), numEmbeddings, embeddingDim,
            in MemoryMarshal.GetReference(rows), rows.Length, in MemoryMarshal.GetReference(values), lr, lrDecay, eps, step, width, threads));
    }

    internal static void RowwiseAdagradStep(Span<float> weight, Span<float> momentum, int embeddingDim, ReadOnlySpan<long> rows, ReadOnlySpan<float> values,
        double lr, double eps, VectorWidth width, int threads = EmbeddingThreads.UseCount)
    {
        long numEmbeddings = CheckSparseStepShapes(weight, embeddingDim, rows, values);
        CheckStateLength(momentum, numEmbeddings, nameof(momentum));
        ThrowIfInvalid(OptimizerChecks.RowwiseAdagrad(lr, eps));
        ThrowIfOverlapping(weight, nameof(weight), rows, values, momentum, default);
        ThrowIfOverlapping(momentum, nameof(momentum), rows, values, default, default);
        ThrowIfBadRow(rows, numEmbeddings, RowwiseAdagradCore(
            ref MemoryMarshal.GetReference(weight), ref MemoryMarshal.GetReference(momentum), numEmbeddings, embeddingDim,
            in MemoryMarshal.GetReference(rows), rows.Length, in MemoryMarshal.GetReference(values), lr, eps, width, threads));
    }

    internal static void SparseAdamStep(Span<float> weight, Span<float> expAvg, Span<float> expAvgSq, int embeddingDim, ReadOnlySpan<long> rows, ReadOnlySpan<float> values,
        double lr, double beta1, double beta2, double eps, long step, VectorWidth width, int threads = EmbeddingThreads.UseCount)
    {
        long numEmbeddings = CheckSparseStepShapes(weight, embeddingDim, rows, values);
        CheckStateLength(expAvg, weight.Length, nameof(expAvg));
        CheckStateLength(expAvgSq, weight.Length, nameof(expAvgSq));
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
    // hyper-parameters (OptimizerChecks) are the caller's responsibility.

    internal static unsafe nint SgdCore(ref float weight, long numEmbeddings, int dimension, ref readonly long rows, nint count, ref readonly float values,
        double lr, double weightDecay, VectorWidth width, int threads = EmbeddingThreads.UseCount)
    {
        nint bad = FindFirstBadRow(in rows, count, numEmbeddings);
        if (bad >= 0 || count == 0 || dimension == 0)
        {
            return bad;
        }

        fixed (float* table = &weight)
        fixed (long* first = &Unsafe.AsRef(in rows))
        fixed (float* gradient = &Unsafe.AsRef(in values))
        {
            var work = new StepWork
            {
                Kind = StepKind.Sgd, Weight = table, Rows = first, Count = count, Values = gradient, Dimension = dimension,
                First = (float)-lr, Second = (float)weightDecay,
            };
            RunSteps(ref work, width, threads, 3);
        }

        return -1;
    }

    internal static unsafe nint AdagradCore(ref float weight, ref float stateSum, long numEmbeddings, int dimension, ref readonly long rows, nint count, ref readonly float values,
        double lr, double lrDecay, double eps, long step, VectorWidth width, int threads = EmbeddingThreads.UseCount)
    {
        nint bad = FindFirstBadRow(in rows, count, numEmbeddings);
        if (bad >= 0 || count == 0 || dimension == 0)
        {
            return bad;
        }

        double clr = lr / (1 + (step - 1) * lrDecay);
        fixed (float* table = &weight)
        fixed (float* sum = &stateSum)
        fixed (long* first = &Unsafe.AsRef(in rows))
        fixed (float* gradient = &Unsafe.AsRef(in values))
        {
            var work = new StepWork
            {
                Kind = StepKind.Adagrad, Weight = table, State = sum, Rows = first, Count = count, Values = gradient, Dimension = dimension,
                First = (float)-clr, Second = (float)eps,
            };
            RunSteps(ref work, width, threads, 5);
        }

        return -1;
    }

    internal static unsafe nint RowwiseAdagradCore(ref float weight, ref float momentum, long numEmbeddings, int dimension, ref readonly long rows, nint count, ref readonly float values,
        double lr, double eps, VectorWidth width, int threads = EmbeddingThreads.UseCount)
    {
        nint bad = FindFirstBadRow(in rows, count, numEmbeddings);
        if (bad >= 0 || count == 0 || dimension == 0)
        {
            return bad;
        }

        fixed (float* table = &weight)
        fixed (float* rowState = &momentum)
        fixed (long* first = &Unsafe.AsRef(in rows))
        fixed (float* gradient = &Unsafe.AsRef(in values))
        {
            var work = new StepWork
            {
                Kind = StepKind.RowwiseAdagrad, Weight = table, State = rowState, Rows = first, Count = count, Values = gradient, Dimension = dimension,
                First = (float)lr, Second = (float)eps,
            };
            RunSteps(ref work, width, threads, 3);
        }

        return -1;
    }

    internal static unsafe nint SparseAdamCore(ref float weight, ref float expAvg, ref float expAvgSq, long numEmbeddings, int dimension, ref readonly long rows, nint count,
        ref readonly float values, double lr, double beta1, double beta2, double eps, long step, VectorWidth width, int threads = EmbeddingThreads.UseCount)
    {
        nint bad = FindFirstBadRow(in rows, count, numEmbeddings);
        if (bad >= 0 || count == 0 || dimension == 0)
        {
            return bad;
        }

        fixed (float* table = &weight)
        fixed (float* m = &expAvg)
        fixed (float* v = &expAvgSq)
        fixed (long* first = &Unsafe.AsRef(in rows))
        fixed (float* gradient = &Unsafe.AsRef(in values))
        {
            var work = new StepWork
            {
                Kind = StepKind.SparseAdam, Weight = table, State = m, SecondState = v, Rows = first, Count = count, Values = gradient, Dimension = dimension,
                Adam = AdamScalars.For(lr, beta1, beta2, eps, step),
            };
            RunSteps(ref work, width, threads, 7);
        }

        return -1;
    }

    /// <summary>
    /// Runs a step's rows on the calling thread, or split into contiguous ranges of the (distinct,
    /// ascending) rows list when the call is large enough: rows never repeat, so pieces touch disjoint
    /// rows of the weight and the state. <paramref name="floatsPerElement"/> is the floats a column
    /// update reads and writes (for the thread decision).
    /// </summary>
    private static void RunSteps(ref StepWork work, VectorWidth width, int threads, int floatsPerElement)
    {
        work.Width = KernelDispatch.FitWidth(width, work.Dimension);
        threads = EmbeddingThreads.For(sizeof(float) * (long)floatsPerElement * work.Dimension * work.Count, work.Count, threads);
        WorkerPool.Run(ref work, EmbeddingThreads.PartsFor(threads, work.Count), threads);
    }

    private enum StepKind
    {
        Sgd,
        Adagrad,
        RowwiseAdagrad,
        SparseAdam,
    }

    /// <summary>One piece of an optimizer step: a contiguous range of the rows list (the whole list on one thread).</summary>
    private unsafe struct StepWork : IParallelWork
    {
        public StepKind Kind;
        public VectorWidth Width;
        public int Dimension;
        public float* Weight;
        public float* State;
        public float* SecondState;
        public long* Rows;
        public nint Count;
        public float* Values;

        /// <summary>SGD: -lr, weight decay; Adagrad: -clr, eps; row-wise Adagrad: lr, eps.</summary>
        public float First;
        public float Second;
        public AdamScalars Adam;

        public readonly void Execute(int part, int parts)
        {
            nint start = (nint)EmbeddingThreads.Boundary(Count, part, parts), end = (nint)EmbeddingThreads.Boundary(Count, part + 1, parts);
            if (end <= start)
            {
                return;
            }

            switch (Width)
            {
                case VectorWidth.Vector512:
                    Run<Elementwise512>(start, end - start);
                    break;
                case VectorWidth.Vector256:
                    Run<Elementwise256>(start, end - start);
                    break;
                case VectorWidth.Vector128:
                    Run<Elementwise128>(start, end - start);
                    break;
                default:
                    Run<ElementwiseScalar>(start, end - start);
                    break;
            }
        }

        private readonly void Run<TWidth>(nint start, nint count)
            where TWidth : IElementwiseWidth
        {
            ref long rows = ref Rows[start];
            ref float values = ref Values[start * Dimension];
            switch (Kind)
            {
                case StepKind.Sgd:
                    SgdRows<TWidth>(ref *Weight, Dimension, ref rows, count, ref values, First, Second);
                    break;
                case StepKind.Adagrad:
                    AdagradRows<TWidth>(ref *Weight, ref *State, Dimension, ref rows, count, ref values, First, Second);
                    break;
                case StepKind.RowwiseAdagrad:
                    RowwiseAdagradRows<TWidth>(ref *Weight, ref *State, Dimension, ref rows, count, ref values, First, Second);
                    break;
                default:
                    SparseAdamRows<TWidth>(ref *Weight, ref *State, ref *SecondState, Dimension, ref rows, count, ref values, Adam);
                    break;
            }
        }
    }

    /// <summary>The first position whose row is outside <c>[0, numEmbeddings)</c> or not above the row before it; -1 if none.</summary>
    internal static nint FindFirstBadRow(ref readonly long rows, nint count, long numEmbeddings)
    {
        long previous = -1;
        for (nint j = 0; j < count; j++)
        {
            long row = Unsafe.Add(ref Unsafe.AsRef(in rows), j);
            if ((ulong)row >= (ulong)numEmbeddings || row <= previous)
            {
                return j;
            }

            previous = row;
        }

        return -1;
    }

    // ---- Row drivers: per row, whole vectors, then the scalar member for the last columns -----
    // Not an overlapping last vector: these updates read and write in place, so an overlapped
    // column would be updated twice.

    private static void SgdRows<TWidth>(ref float weight, int dimension, ref long rows, nint count, ref float values, float negativeLr, float weightDecay)
        where TWidth : IElementwiseWidth
    {
        nuint lanes = (nuint)TWidth.Lanes, end = (nuint)dimension;
        for (nint j = 0; j < count; j++)
        {
            ref float w = ref Unsafe.Add(ref weight, (nint)Unsafe.Add(ref rows, j) * dimension);
            ref float g = ref Unsafe.Add(ref values, j * dimension);
            nuint column = 0;

            // torch skips the decay term when weight_decay == 0, so 0 * inf never turns a weight into NaN.
            if (weightDecay != 0)
            {
                for (; column + lanes <= end; column += lanes)
                {
                    TWidth.SgdWeightDecay(ref w, ref g, column, negativeLr, weightDecay);
                }

                for (; column < end; column++)
                {
                    ElementwiseScalar.SgdWeightDecay(ref w, ref g, column, negativeLr, weightDecay);
                }
            }
            else
            {
                for (; column + lanes <= end; column += lanes)
                {
                    TWidth.MultiplyAdd(ref w, ref g, column, negativeLr);
                }

                for (; column < end; column++)
                {
                    ElementwiseScalar.MultiplyAdd(ref w, ref g, column, negativeLr);
                }
            }
        }
    }

    private static void AdagradRows<TWidth>(ref float weight, ref float stateSum, int dimension, ref long rows, nint count, ref float values, float negativeClr, float eps)
        where TWidth : IElementwiseWidth
    {
        nuint lanes = (nuint)TWidth.Lanes, end = (nuint)dimension;
        for (nint j = 0; j < count; j++)
        {
            nint start = (nint)Unsafe.Add(ref rows, j) * dimension;
            ref float w = ref Unsafe.Add(ref weight, start);
            ref float s = ref Unsafe.Add(ref stateSum, start);
            ref float g = ref Unsafe.Add(ref values, j * dimension);
            nuint column = 0;
            for (; column + lanes <= end; column += lanes)
            {
                TWidth.Adagrad(ref w, ref s, ref g, column, negativeClr, eps);
            }

            for (; column < end; column++)
            {
                ElementwiseScalar.Adagrad(ref w, ref s, ref g, column, negativeClr, eps);
            }
        }
    }

    private static void RowwiseAdagradRows<TWidth>(ref float weight, ref float momentum, int dimension, ref long rows, nint count, ref float values, float lr, float eps)
        where TWidth : IElementwiseWidth
    {
        nuint lanes = (nuint)TWidth.Lanes, end = (nuint)dimension;
        for (nint j = 0; j < count; j++)
        {
            nint r = (nint)Unsafe.Add(ref rows, j);
            ref float w = ref Unsafe.Add(ref weight, r * dimension);
            ref float g = ref Unsafe.Add(ref values, j * dimension);

            // The row mean is a horizontal reduction: one sequential double loop at every width,
            // so the order (and the bits) never depend on the vector width. Float products are exact in double.
            double sum = 0;
            for (int c = 0; c < dimension; c++)
            {
                double x = Unsafe.Add(ref g, c);
                sum += x * x;
            }

            float h = Unsafe.Add(ref momentum, r) + (float)(sum / dimension);
            Unsafe.Add(ref momentum, r) = h;
            float negativeStep = -(lr / (MathF.Sqrt(h) + eps));
            nuint column = 0;
            for (; column + lanes <= end; column += lanes)
            {
                TWidth.MultiplyAdd(ref w, ref g, column, negativeStep);
            }

            for (; column < end; column++)
            {
                ElementwiseScalar.MultiplyAdd(ref w, ref g, column, negativeStep);
            }
        }
    }

    private static void SparseAdamRows<TWidth>(ref float weight, ref float expAvg, ref float expAvgSq, int dimension, ref long rows, nint count, ref float values, in AdamScalars k)
        where TWidth : IElementwiseWidth
    {
        nuint lanes = (nuint)TWidth.Lanes, end = (nuint)dimension;
        for (nint j = 0; j < count; j++)
        {
            nint start = (nint)Unsafe.Add(ref rows, j) * dimension;
            ref float w = ref Unsafe.Add(ref weight, start);
            ref float m = ref Unsafe.Add(ref expAvg, start);
            ref float v = ref Unsafe.Add(ref expAvgSq, start);
            ref float g = ref Unsafe.Add(ref values, j * dimension);
            nuint column = 0;
            for (; column + lanes <= end; column += lanes)
            {
                TWidth.SparseAdam(ref w, ref m, ref v, ref g, column, k.OneMinusBeta1, k.OneMinusBeta2, k.Eps, k.NegativeStepSize);
            }

            for (; column < end; column++)
            {
                ElementwiseScalar.SparseAdam(ref w, ref m, ref v, ref g, column, k.OneMinusBeta1, k.OneMinusBeta2, k.Eps, k.NegativeStepSize);
            }
        }
    }

    // ---- Span-level checks --------------------------------------------------------------------

    /// <summary>Checks the dimension, the weight and the values; returns the table's row count.</summary>
    private static long CheckSparseStepShapes(ReadOnlySpan<float> weight, int embeddingDim, ReadOnlySpan<long> rows, ReadOnlySpan<float> values)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(embeddingDim);
        if (weight.Length % embeddingDim != 0)
        {
            throw new ArgumentException($"The weight holds {weight.Length} floats, which is not a whole number of rows of {embeddingDim}.", nameof(weight));
        }

        long required = (long)rows.Length * embeddingDim;
        if (values.Length != required)
        {
            throw new ArgumentException($"The values hold {values.Length} floats; {rows.Length} rows × {embeddingDim} columns need exactly {required}.", nameof(values));
        }

        return weight.Length / embeddingDim;
    }

    private static void CheckStateLength(ReadOnlySpan<float> state, long required, string name)
    {
        if (state.Length != required)
        {
            throw new ArgumentException($"{name} holds {state.Length} floats; it must hold exactly {required}.", name);
        }
    }

    /// <summary>Rejects a written buffer that overlaps the rows, the values or another state buffer.</summary>
    private static void ThrowIfOverlapping(ReadOnlySpan<float> written, string name, ReadOnlySpan<long> rows, ReadOnlySpan<float> values, ReadOnlySpan<float> other, ReadOnlySpan<float> another)
    {
        if (written.Overlaps(MemoryMarshal.Cast<long, float>(rows)) || written.Overlaps(values) || written.Overlaps(other) || written.Overlaps(another))
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

    /// <summary>SparseAdam's per-call float32 scalars, computed once from the double hyper-parameters.</summary>
    private readonly record struct AdamScalars(float OneMinusBeta1, float OneMinusBeta2, float Eps, float NegativeStepSize)
    {
        public static AdamScalars For(double lr, double beta1, double beta2, double eps, long step)
        {
            // torch 1.13, in Python doubles: step_size = lr * math.sqrt(1 - beta2 ** step) / (1 - beta1 ** step).
            double biasCorrection1 = 1 - Math.Pow(beta1, step);
            double biasCorrection2 = 1 - Math.Pow(beta2, step);
            double stepSize = lr * Math.Sqrt(biasCorrection2) / biasCorrection1;
            return new((float)(1 - beta1), (float)(1 - beta2), (float)eps, (float)-stepSize);
        }
    }
}

/// <summary>
/// Hyper-parameter checks and messages shared by the span API and the C ABI. The texts are
/// torch's own (<c>ValueError: Invalid learning rate: ...</c>); unlike torch, NaN is always rejected.
/// </summary>
internal static class OptimizerChecks
{
    /// <summary>A rejected argument: its C# parameter name, value and message.</summary>
    public readonly record struct Error(string Parameter, object Value, string Message);

    public static Error? Sgd(double lr, double weightDecay) =>
        AtLeastZero(lr, "lr", "Invalid learning rate")
        ?? AtLeastZero(weightDecay, "weightDecay", "Invalid weight_decay value");

    public static Error? Adagrad(double lr, double lrDecay, double eps, long step) =>
        AtLeastZero(lr, "lr", "Invalid learning rate")
        ?? AtLeastZero(lrDecay, "lrDecay", "Invalid lr_decay value")
        ?? AtLeastZero(eps, "eps", "Invalid epsilon value")
        ?? Step(step);

    public static Error? RowwiseAdagrad(double lr, double eps) =>
        AtLeastZero(lr, "lr", "Invalid learning rate")
        ?? AtLeastZero(eps, "eps", "Invalid epsilon value");

    public static Error? SparseAdam(double lr, double beta1, double beta2, double eps, long step) =>
        AboveZero(lr, "lr", "Invalid learning rate")
        ?? AboveZero(eps, "eps", "Invalid epsilon value")
        ?? Beta(beta1, "beta1", 0)
        ?? Beta(beta2, "beta2", 1)
        ?? Step(step);

    public static string NotAscending(long position, long value, long previous) => string.Create(CultureInfo.InvariantCulture,
        $"row {value} at position {position} is not above the row before it ({previous}); rows must be strictly ascending (coalesce the gradient first)");

    private static Error? AtLeastZero(double value, string name, string text) =>
        value >= 0 ? null : new Error(name, value, Text($"{text}: {value}"));

    private static Error? AboveZero(double value, string name, string text) =>
        value > 0 ? null : new Error(name, value, Text($"{text}: {value}"));

    private static Error? Beta(double value, string name, int index) =>
        value >= 0 && value < 1 ? null : new Error(name, value, Text($"Invalid beta parameter at index {index}: {value}"));

    private static Error? Step(long step) =>
        step >= 1 ? null : new Error("step", step, Text($"step is {step}; it must be at least 1 (the 1-based number of this step)"));

    private static string Text(FormattableString text) => text.ToString(CultureInfo.InvariantCulture);
}
