using System;
using System.Linq;
using BenchmarkDotNet.Attributes;

namespace Embedding.Native.Benchmarks;

/// <summary>
/// Fused sparse optimizer steps on the rows a batch touched (V = 100 000, N = 65 536 uniform
/// indices coalesced to ~48 000 unique rows); SGD is the baseline row.
/// </summary>
public class Perf_OptimizerSteps
{
    private const int Count = 65_536;
    private const long Rows = 100_000;
    private float[] _weight = [], _state = [], _second = [], _momentum = [], _values = [];
    private long[] _rows = [];

    [Params(64, 136)]
    public int Dim { get; set; }

    /// <summary>Per touched row: the gradient row read and the weight row read + written (state rows not counted).</summary>
    public static double UsefulBytes(int dim) => 2.0 * UniqueRows * dim * sizeof(float) + UniqueRows * dim * sizeof(float);

    private static readonly int UniqueRows = Workload.Indices(Count, Rows, IndexDistribution.Uniform).Distinct().Count();

    [GlobalSetup]
    public void Setup()
    {
        _rows = Workload.Indices(Count, Rows, IndexDistribution.Uniform).Distinct().Order().ToArray();
        _values = Workload.Table(_rows.Length, Dim, seed: 5);
        _weight = Workload.Table(Rows, Dim);
        _state = new float[Rows * Dim];
        _second = new float[Rows * Dim];
        _momentum = new float[Rows];

        float[] expected = (float[])_weight.Clone();
        float[] expectedExpAvg = new float[Rows * Dim], expectedExpAvgSq = new float[Rows * Dim];
        OptimizerReference.SparseAdam(expected, expectedExpAvg, expectedExpAvgSq, Dim, _rows, _values, 1e-3, 0.9, 0.999, 1e-8, 1);
        EmbeddingPrimitives.SparseAdamStep(_weight, _state, _second, Dim, _rows, _values, 1e-3, 0.9, 0.999, 1e-8, 1);
        Workload.Verify(expected, _weight, "SparseAdam step");
    }

    [Benchmark(Baseline = true)]
    public void Sgd() => EmbeddingPrimitives.SgdStep(_weight, Dim, _rows, _values, 1e-3);

    [Benchmark]
    public void Adagrad() => EmbeddingPrimitives.AdagradStep(_weight, _state, Dim, _rows, _values, 1e-3, 0, 1e-10, 1);

    [Benchmark]
    public void RowwiseAdagrad() => EmbeddingPrimitives.RowwiseAdagradStep(_weight, _momentum, Dim, _rows, _values, 1e-3, 1e-10);

    [Benchmark]
    public void SparseAdam() => EmbeddingPrimitives.SparseAdamStep(_weight, _state, _second, Dim, _rows, _values, 1e-3, 0.9, 0.999, 1e-8, 1);
}
