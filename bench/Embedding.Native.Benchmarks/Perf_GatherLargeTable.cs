using BenchmarkDotNet.Attributes;

namespace Embedding.Native.Benchmarks;

/// <summary>Random rows from a 1 GiB table (workload C: V = 4 000 000, D = 64), far beyond the last-level cache.</summary>
public class Perf_GatherLargeTable
{
    private const int Count = 65_536;
    private const long Rows = 4_000_000;
    private const int Dim = 64;
    private float[] _table = [];
    private long[][] _indexSets = [];
    private float[] _destination = [];
    private int _next;

    [Params(IndexDistribution.Uniform, IndexDistribution.Zipf)]
    public IndexDistribution Distribution { get; set; }

    public static double UsefulBytes() => 2.0 * Count * Dim * sizeof(float);

    [GlobalSetup]
    public void Setup()
    {
        _table = Workload.Table(Rows, Dim);
        // "Cold": rotate through distinct index sets so touched rows come from DRAM, not the cache.
        _indexSets = new long[16][];
        for (int i = 0; i < _indexSets.Length; i++)
        {
            _indexSets[i] = Workload.Indices(Count, Rows, Distribution, seed: 100 + i);
        }

        _destination = new float[Count * Dim];
        var expected = new float[Count * Dim];
        EmbeddingReference.Embedding<long>(_indexSets[0], _table, Dim, expected);
        EmbeddingPrimitives.Embedding(_indexSets[0], _table, Dim, _destination);
        Workload.Verify(expected, _destination, "gather, 1 GiB table");
    }

    [Benchmark]
    public void Cold()
    {
        long[] indices = _indexSets[_next];
        _next = (_next + 1) % _indexSets.Length;
        EmbeddingPrimitives.Embedding(indices, _table, Dim, _destination);
    }
}
