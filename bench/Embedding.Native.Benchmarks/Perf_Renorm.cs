using System;
using BenchmarkDotNet.Attributes;

namespace Embedding.Native.Benchmarks;

/// <summary>What a timed <see cref="Perf_Renorm"/> call finds in the rows it references.</summary>
public enum RenormPath
{
    /// <summary>
    /// max_norm = 1 on rows already renormalised to it: every call validates and sorts the indices and
    /// computes the norm of every distinct row, and writes nothing. The steady state of
    /// <c>F.embedding(..., max_norm=1)</c> between optimizer steps, and what side_by_side.py times after its first call.
    /// </summary>
    WithinNorm,

    /// <summary>
    /// max_norm = -1: every norm exceeds it, so every call also rescales every distinct referenced row
    /// (by -1 / (norm + 1e-7), a sign flip that keeps the norms at about 1) — the work of a first
    /// renorm of an untrained table, repeated on every call without restoring the table.
    /// </summary>
    Rescale,
}

/// <summary>
/// <see cref="EmbeddingPrimitives.EmbeddingRenorm(Span{float}, int, ReadOnlySpan{long}, double, double)"/> with
/// p = 2 over the rows N = 65 536 indices reference (workload B: V = 100 000). The renorm mutates the table and
/// in-process iterations are too short to restore it, so each case is timed on a table whose every call does the
/// same work (see <see cref="RenormPath"/>). Renorm has no generated kernels: the baseline is the same code at the
/// scalar width (the norm itself is a scalar loop at every width; only the rescale is vectorised).
/// </summary>
public class Perf_Renorm
{
    private const int Count = 65_536;
    private const long Rows = 100_000;
    private const double NormType = 2.0;
    private float[] _table = [];
    private long[] _indices = [];

    [Params(16, 64, 136, 256)]
    public int Dim { get; set; }

    [Params(IndexDistribution.Uniform, IndexDistribution.Zipf)]
    public IndexDistribution Distribution { get; set; }

    [Params(RenormPath.WithinNorm, RenormPath.Rescale)]
    public RenormPath Path { get; set; }

    /// <summary>Rows read, one per position (N·D·4, as side_by_side.py counts renorm); duplicates and the rescaled rows' writes not separated.</summary>
    public static double UsefulBytes(int dim) => (double)Count * dim * sizeof(float);

    private double MaxNorm => Path == RenormPath.WithinNorm ? 1.0 : -1.0;

    [GlobalSetup]
    public void Setup()
    {
        float[] pristine = Workload.Table(Rows, Dim);
        _indices = Workload.Indices(Count, Rows, Distribution);

        // The first call on an untrained table (uniform in [-1, 1], norms about sqrt(D / 3) > 1) rescales every referenced row.
        float[] expected = (float[])pristine.Clone();
        RenormReference.EmbeddingRenorm<long>(expected, Dim, _indices, MaxNorm, NormType);
        foreach ((string name, Action kernel) in new (string, Action)[] { ("dispatched", Dispatched), ("scalar", Scalar) })
        {
            _table = (float[])pristine.Clone();
            kernel();
            Workload.Verify(expected, _table, $"{name} renorm, max_norm {MaxNorm}");
        }

        if (Path == RenormPath.WithinNorm)
        {
            // A rescaled row can land a rounding above 1 and be rescaled once more; run to the fixed point, then
            // check that a call leaves the table as it is, which is what every timed call then does.
            for (int call = 0; ; call++)
            {
                float[] before = (float[])_table.Clone();
                Dispatched();
                if (before.AsSpan().SequenceEqual(_table))
                {
                    break;
                }

                if (call == 8)
                {
                    throw new InvalidOperationException("renorm with max_norm 1 did not reach a fixed point in 8 calls; the timed calls would not be read-only.");
                }
            }
        }
    }

    /// <summary>The public API at the best width.</summary>
    [Benchmark]
    public void Dispatched() => EmbeddingPrimitives.EmbeddingRenorm(_table, Dim, _indices, MaxNorm, NormType);

    /// <summary>The same validated core with the rescale at the scalar width.</summary>
    [Benchmark(Baseline = true)]
    public void Scalar() => EmbeddingPrimitives.EmbeddingRenorm<long>(_table, Dim, _indices, MaxNorm, NormType, VectorWidth.Scalar);
}
