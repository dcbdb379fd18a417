using System;
using System.Threading.Tasks;
using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Configs;

namespace Embedding.Native.Benchmarks;

/// <summary>
/// 1 vs 2 threads (<see cref="EmbeddingThreads.Count"/>) for the calls that split: gather B (V = 100 000,
/// D = 64, N = 65 536), gather C (the same from a 1 000 000-row table), bag sum over fixed bags of 32
/// (B = 2 048) and the dense backward accumulating into an existing gradient, all through the public API
/// with uniform indices; and a 256 MiB memcpy split the same way, the memory system's own 2-thread gain
/// in the same run (the ceiling of every call bound by DRAM bandwidth). The Speedup column divides the
/// one-thread median of the same method by this row's.
/// </summary>
[Config(typeof(Perf_Threads.SpeedupConfig))]
public class Perf_Threads
{
    private const int Count = 65_536;
    private const int BagSize = 32;
    private const int BagCount = Count / BagSize;
    private const long Rows = 100_000;
    private const int Dim = 64;
    private float[] _table = [];
    private long[] _indices = [];
    private float[] _gatherOutput = [];
    private float[] _bagOutput = [];
    private float[] _gradOutput = [];
    private float[] _gradWeight = [];
    private float[] _largeTable = [];
    private long[] _largeIndices = [];
    private byte[] _copySource = [];
    private byte[] _copyTarget = [];

    [Params(1, 2)]
    public int Threads { get; set; }

    /// <summary>Gather and backward: 2·N·D·4; bags: N·D·4 + B·D·4 (the anchors' useful bytes).</summary>
    public static double UsefulBytes(string method) => method switch
    {
        nameof(BagSum) => ((double)Count * Dim + (double)BagCount * Dim) * sizeof(float),
        nameof(Memcpy) => 2.0 * CopyBytes,
        _ => 2.0 * Count * Dim * sizeof(float),
    };

    private const int CopyBytes = 256 << 20;
    private const long LargeRows = 1_000_000;

    [GlobalSetup]
    public void Setup()
    {
        EmbeddingThreads.Count = Threads;
        _table = Workload.Table(Rows, Dim);
        _indices = Workload.Indices(Count, Rows, IndexDistribution.Uniform);

        _gatherOutput = new float[Count * Dim];
        var expected = new float[Count * Dim];
        EmbeddingReference.Embedding<long>(_indices, _table, Dim, expected);
        Gather();
        Workload.Verify(expected, _gatherOutput, $"gather, {Threads} threads");

        var starts = new long[BagCount + 1];
        for (int bag = 0; bag <= BagCount; bag++)
        {
            starts[bag] = (long)bag * BagSize;
        }

        _bagOutput = new float[BagCount * Dim];
        expected = new float[BagCount * Dim];
        BagReference.EmbeddingBag(_indices, starts, _table, Dim, EmbeddingBagMode.Sum, expected, default, EmbeddingPrimitives.NoPadding, default);
        BagSum();
        Workload.Verify(expected, _bagOutput, $"bag sum, {Threads} threads");

        // Accumulate into a non-zero gradient, as the timed calls do.
        _gradOutput = Workload.Table(Count, Dim, seed: 3);
        _gradWeight = Workload.Table(Rows, Dim, seed: 6);
        expected = (float[])_gradWeight.Clone();
        BackwardReference.EmbeddingBackward<long>(_gradOutput, _indices, Dim, expected, EmbeddingPrimitives.NoPadding, EmbeddingGradOptions.Accumulate);
        DenseBackward();
        Workload.Verify(expected, _gradWeight, $"dense backward, {Threads} threads");

        _largeTable = Workload.Table(LargeRows, Dim, seed: 9);
        _largeIndices = Workload.Indices(Count, LargeRows, IndexDistribution.Uniform);
        expected = new float[Count * Dim];
        EmbeddingReference.Embedding<long>(_largeIndices, _largeTable, Dim, expected);
        GatherLargeTable();
        Workload.Verify(expected, _gatherOutput, $"gather from the large table, {Threads} threads");

        _copySource = new byte[CopyBytes];
        _copyTarget = new byte[CopyBytes];
        _copySource.AsSpan().Fill(1);
        Memcpy();
        if (!_copyTarget.AsSpan().SequenceEqual(_copySource))
        {
            throw new InvalidOperationException("memcpy copied wrong bytes");
        }
    }

    /// <summary>The thread count is process-wide: leave the default for the classes that run after this one.</summary>
    [GlobalCleanup]
    public void Cleanup() => EmbeddingThreads.Count = 1;

    [Benchmark]
    public void Gather() => EmbeddingPrimitives.Embedding(_indices, _table, Dim, _gatherOutput);

    [Benchmark]
    public void BagSum() => EmbeddingPrimitives.EmbeddingBag<long>(_indices, BagSize, _table, Dim, EmbeddingBagMode.Sum, _bagOutput);

    [Benchmark]
    public void GatherLargeTable() => EmbeddingPrimitives.Embedding(_largeIndices, _largeTable, Dim, _gatherOutput);

    /// <summary>256 MiB copied as <see cref="Threads"/> contiguous halves, one per thread (read + write counted).</summary>
    [Benchmark]
    public void Memcpy() => Parallel.For(0, Threads, new ParallelOptions { MaxDegreeOfParallelism = Threads }, part =>
    {
        int length = CopyBytes / Threads;
        _copySource.AsSpan(part * length, length).CopyTo(_copyTarget.AsSpan(part * length, length));
    });

    /// <summary>Split by destination row range, so each row still accumulates in position order (bit-identical to one thread).</summary>
    [Benchmark]
    public void DenseBackward() => EmbeddingPrimitives.EmbeddingBackward(
        _gradOutput, _indices, Dim, _gradWeight, EmbeddingPrimitives.NoPadding, EmbeddingGradOptions.Accumulate);

    /// <summary>Adds the Speedup column to this class's summary.</summary>
    public sealed class SpeedupConfig : ManualConfig
    {
        public SpeedupConfig() => AddColumn(new SpeedupColumn(nameof(Threads), 1));
    }
}
