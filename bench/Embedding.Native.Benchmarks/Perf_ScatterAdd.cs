using BenchmarkDotNet.Attributes;

namespace Embedding.Native.Benchmarks;

/// <summary>
/// Dense backward into a caller-owned gradient without zero-filling it (Accumulate), V = 100 000,
/// N = 65 536: each position reads a gradient row and reads + writes a table row.
/// </summary>
public class Perf_ScatterAdd
{
    private const int Count = 65_536;
    private const long Rows = 100_000;
    private float[] _gradOutput = [];
    private long[] _indices = [];
    private float[] _gradWeight = [];

    [Params(16, 64, 136, 768)]
    public int Dim { get; set; }

    [Params(false, true)]
    public bool ScaleGradByFrequency { get; set; }

    /// <summary>Gradient rows read + table rows written (the read of the row being updated is not counted, as for memcpy).</summary>
    public static double UsefulBytes(int dim) => 2.0 * Count * dim * sizeof(float);

    [GlobalSetup]
    public void Setup()
    {
        _gradOutput = Workload.Table(Count, Dim, seed: 3);
        _indices = Workload.Indices(Count, Rows, IndexDistribution.Uniform);
        _gradWeight = new float[Rows * Dim];
        var expected = new float[Rows * Dim];
        EmbeddingGradOptions options = ScaleGradByFrequency ? EmbeddingGradOptions.ScaleGradByFrequency : EmbeddingGradOptions.None;
        BackwardReference.EmbeddingBackward<long>(_gradOutput, _indices, Dim, expected, EmbeddingPrimitives.NoPadding, options);
        EmbeddingPrimitives.EmbeddingBackward(_gradOutput, _indices, Dim, _gradWeight, EmbeddingPrimitives.NoPadding, options);
        Workload.Verify(expected, _gradWeight, "dense backward");
    }

    [Benchmark]
    public void Accumulate() => EmbeddingPrimitives.EmbeddingBackward(
        _gradOutput, _indices, Dim, _gradWeight, EmbeddingPrimitives.NoPadding,
        EmbeddingGradOptions.Accumulate | (ScaleGradByFrequency ? EmbeddingGradOptions.ScaleGradByFrequency : EmbeddingGradOptions.None));
}
