using System;
using System.Runtime.InteropServices;
using BenchmarkDotNet.Attributes;

namespace Embedding.Native.Benchmarks;

/// <summary>The reductions <see cref="Perf_Bag"/> times: torch's three modes, and sum with per-sample weights.</summary>
public enum BagReduction
{
    /// <summary><see cref="EmbeddingBagMode.Sum"/>.</summary>
    Sum,

    /// <summary><see cref="EmbeddingBagMode.Mean"/>.</summary>
    Mean,

    /// <summary><see cref="EmbeddingBagMode.Max"/>, arg-max rows included (what a training forward needs).</summary>
    Max,

    /// <summary><see cref="EmbeddingBagMode.Max"/> without the arg-max (what inference needs: F.embedding_bag's output).</summary>
    MaxValues,

    /// <summary><see cref="EmbeddingBagMode.Sum"/> with one weight per position and no padding row: the fused multiply-add path.</summary>
    WeightedSum,
}

/// <summary>
/// EmbeddingBag forward over fixed bags of 32 (workload B: V = 100 000, N = 65 536, B = N / 32 = 2 048)
/// for every reduction, specialised dims, an odd one (136, generic kernel behind the dispatch too) and
/// 256; the generic bag kernel at the same width is the baseline.
/// </summary>
public class Perf_Bag
{
    private const int Count = 65_536;
    private const int BagSize = 32;
    private const int BagCount = Count / BagSize;
    private const long Rows = 100_000;
    private float[] _table = [];
    private long[] _indices = [];
    private long[] _starts = [];
    private float[] _perSampleWeights = [];
    private float[] _destination = [];
    private long[] _maxIndices = [];

    [Params(BagReduction.Sum, BagReduction.Mean, BagReduction.Max, BagReduction.MaxValues, BagReduction.WeightedSum)]
    public BagReduction Reduction { get; set; }

    [Params(16, 64, 136, 256)]
    public int Dim { get; set; }

    [Params(IndexDistribution.Uniform, IndexDistribution.Zipf)]
    public IndexDistribution Distribution { get; set; }

    /// <summary>Rows read (one per position) + bag rows written, as the anchors count bags; arg-max rows not counted.</summary>
    public static double UsefulBytes(int dim) => ((double)Count * dim + (double)BagCount * dim) * sizeof(float);

    private EmbeddingBagMode Mode => Reduction switch
    {
        BagReduction.Mean => EmbeddingBagMode.Mean,
        BagReduction.Max or BagReduction.MaxValues => EmbeddingBagMode.Max,
        _ => EmbeddingBagMode.Sum,
    };

    private bool Weighted => Reduction == BagReduction.WeightedSum;

    [GlobalSetup]
    public void Setup()
    {
        _table = Workload.Table(Rows, Dim);
        _indices = Workload.Indices(Count, Rows, Distribution);
        _starts = new long[BagCount + 1];
        for (int bag = 0; bag <= BagCount; bag++)
        {
            _starts[bag] = (long)bag * BagSize;
        }

        _perSampleWeights = Weighted ? Workload.Table(1, Count, seed: 4) : [];
        _destination = new float[BagCount * Dim];
        _maxIndices = Reduction == BagReduction.Max ? new long[BagCount * Dim] : [];

        var expected = new float[BagCount * Dim];
        var expectedMaxIndices = new long[Mode == EmbeddingBagMode.Max ? BagCount * Dim : 0];
        BagReference.EmbeddingBag(_indices, _starts, _table, Dim, Mode, expected, _perSampleWeights, EmbeddingPrimitives.NoPadding, expectedMaxIndices);
        if (_maxIndices.Length == 0)
        {
            expectedMaxIndices = [];
        }

        // Poison the outputs before each kernel so the second check cannot pass on the first kernel's results.
        foreach ((string name, Action kernel) in new (string, Action)[] { ("dispatched", Dispatched), ("generic", Generic) })
        {
            Array.Fill(_destination, float.NaN);
            Array.Fill(_maxIndices, -2L);
            kernel();
            Workload.Verify(expected, _destination, $"{name} bag {Reduction}");
            Workload.Verify(expectedMaxIndices, _maxIndices, $"{name} bag {Reduction} (arg-max rows)");
        }
    }

    /// <summary>The public fixed-size API: validation, the bag layout (pooled), then the generated kernel where one exists.</summary>
    [Benchmark]
    public void Dispatched() => EmbeddingPrimitives.EmbeddingBag<long>(
        _indices, BagSize, _table, Dim, Mode, _destination, _perSampleWeights, EmbeddingPrimitives.NoPadding, _maxIndices);

    /// <summary>The generic bag kernel at the best width over precomputed bag starts, without validation or dispatch.</summary>
    [Benchmark(Baseline = true)]
    public void Generic() => GenericKernel(KernelDispatch.FitWidth(KernelDispatch.BestWidth, Dim))(
        in _table[0], Rows, Dim, in _indices[0], in _starts[0], BagCount,
        EmbeddingPrimitives.NoPadding, in MemoryMarshal.GetArrayDataReference(_perSampleWeights), ref _destination[0], ref MaxIndicesOrNull);

    /// <summary>The generic kernel of this reduction at <paramref name="width"/>.</summary>
    private BagKernel<float, long> GenericKernel(VectorWidth width) => Mode switch
    {
        EmbeddingBagMode.Max => GenericBag<float, long, BagMax>.At(width),
        EmbeddingBagMode.Mean => GenericBag<float, long, BagMean>.At(width),
        _ when Weighted => GenericBag<float, long, BagWeightedSum>.At(width),
        _ => GenericBag<float, long, BagSum>.At(width),
    };

    /// <summary>The arg-max buffer, or a null reference when none is wanted (the kernels' values-only loop).</summary>
    private ref long MaxIndicesOrNull => ref _maxIndices.Length == 0 ? ref System.Runtime.CompilerServices.Unsafe.NullRef<long>() : ref _maxIndices[0];
}
