using BenchmarkDotNet.Attributes;

namespace Embedding.Native.Benchmarks;

/// <summary>
/// Forward gather (workload B: V = 100 000, N = 65 536) for specialised dims, an odd one (136,
/// generic kernel) and the LLM size 768; the generic kernel at the same width is the baseline.
/// </summary>
public class Perf_Gather
{
    private const int Count = 65_536;
    private const long Rows = 100_000;
    private float[] _table = [];
    private long[] _indices = [];
    private float[] _destination = [];

    [Params(16, 64, 136, 256, 768)]
    public int Dim { get; set; }

    [Params(IndexDistribution.Uniform, IndexDistribution.Zipf)]
    public IndexDistribution Distribution { get; set; }

    public static double UsefulBytes(int dim) => 2.0 * Count * dim * sizeof(float);

    [GlobalSetup]
    public void Setup()
    {
        _table = Workload.Table(Rows, Dim);
        _indices = Workload.Indices(Count, Rows, Distribution);
        _destination = new float[Count * Dim];
        var expected = new float[Count * Dim];
        EmbeddingReference.Embedding<long>(_indices, _table, Dim, expected);
        Dispatched();
        Workload.Verify(expected, _destination, "dispatched gather");
        Generic();
        Workload.Verify(expected, _destination, "generic gather");
    }

    /// <summary>The public API: validation, dispatch, then the specialised kernel where one exists.</summary>
    [Benchmark]
    public void Dispatched() => EmbeddingPrimitives.Embedding(_indices, _table, Dim, _destination);

    /// <summary>The generic kernel at the best width, without validation or dispatch.</summary>
    [Benchmark(Baseline = true)]
    public void Generic() => GenericGather<float, long>.At(KernelDispatch.FitWidth(KernelDispatch.BestWidth, Dim))(
        in _table[0], Dim, in _indices[0], _indices.Length, ref _destination[0]);
}
