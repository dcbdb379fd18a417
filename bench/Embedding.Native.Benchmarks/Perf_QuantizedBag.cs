using System;
using System.Buffers.Binary;
using BenchmarkDotNet.Attributes;

namespace Embedding.Native.Benchmarks;

/// <summary>Where the packed table lives while it is read.</summary>
public enum TableResidency
{
    /// <summary>1 024 rows (at most 136 KiB): every row in L2 after the first call.</summary>
    Cache,

    /// <summary>4 000 000 rows (144 to 544 MiB), 16 rotating index sets: rows come from DRAM.</summary>
    Dram,
}

/// <summary>
/// Quantized bag sum over fixed bags of 32 (N = 65 536 positions, 2 048 bags, uniform indices) at the best
/// width: the kernel generated for the dimension (<c>DefaultQuantizedKernels</c>) against the generic kernel
/// (<c>GenericQuantizedBag</c>), both called directly without validation, for 8- and 4-bit rows of a table in
/// cache and one in DRAM. Setup checks both against the reference first.
/// </summary>
public class Perf_QuantizedBag
{
    private const int Count = 65_536;
    private const int BagSize = 32;
    private const int BagCount = Count / BagSize;
    private byte[] _packed = [];
    private long[][] _indexSets = [];
    private long[] _starts = [];
    private float[] _destination = [];
    private QuantizedBagKernel<long> _generated = null!;
    private QuantizedBagKernel<long> _generic = null!;
    private int _next;

    [Params(QuantizedBits.Eight, QuantizedBits.Four)]
    public QuantizedBits Bits { get; set; }

    [Params(64, 128)]
    public int Dim { get; set; }

    [Params(TableResidency.Cache, TableResidency.Dram)]
    public TableResidency Residency { get; set; }

    /// <summary>Packed rows read (one per position) + bag rows written.</summary>
    public static double UsefulBytes(QuantizedBits bits, int dim) =>
        (double)Count * new QuantizedRowLayout(bits, dim).RowBytes + (double)BagCount * dim * sizeof(float);

    [GlobalSetup]
    public void Setup()
    {
        var layout = new QuantizedRowLayout(Bits, Dim);
        long rows = Residency == TableResidency.Cache ? 1_024 : 4_000_000;
        _packed = Table(layout, rows);
        _indexSets = new long[Residency == TableResidency.Cache ? 1 : 16][];
        for (int i = 0; i < _indexSets.Length; i++)
        {
            _indexSets[i] = Workload.Indices(Count, rows, IndexDistribution.Uniform, seed: 100 + i);
        }

        _starts = new long[BagCount + 1];
        for (int bag = 0; bag <= BagCount; bag++)
        {
            _starts[bag] = (long)bag * BagSize;
        }

        _destination = new float[BagCount * Dim];
        VectorWidth width = KernelDispatch.FitWidth(KernelDispatch.BestWidth, Dim);
        var key = new KernelKey(Operation, EmbeddingType.Float32, EmbeddingIndexType.Int64, Dim, width);
        _generated = KernelDispatch.Specialised(key) as QuantizedBagKernel<long>
            ?? throw new InvalidOperationException($"no generated kernel for {key}");
        _generic = Bits == QuantizedBits.Eight ? GenericQuantizedBag<long, QuantizedRow8>.At(width) : GenericQuantizedBag<long, QuantizedRow4>.At(width);

        var expected = new float[BagCount * Dim];
        QuantizedBagReference.EmbeddingBag(_indexSets[0], _starts, _packed, layout, mean: false, expected, [], EmbeddingPrimitives.NoPadding, []);
        foreach ((string name, QuantizedBagKernel<long> kernel) in new[] { ("generated", _generated), ("generic", _generic) })
        {
            Array.Fill(_destination, float.NaN);
            Run(kernel, _indexSets[0]);
            Workload.Verify(expected, _destination, $"{name} quantized bag ({(int)Bits}-bit, dim {Dim})");
        }
    }

    /// <summary>The kernel generated for this dimension.</summary>
    [Benchmark]
    public void Generated() => Run(_generated, NextIndices());

    /// <summary>The generic kernel at the same width.</summary>
    [Benchmark(Baseline = true)]
    public void Generic() => Run(_generic, NextIndices());

    private KernelOperation Operation => Bits == QuantizedBits.Eight ? KernelOperation.QuantizedBagByte : KernelOperation.QuantizedBag4Bit;

    private long[] NextIndices()
    {
        long[] indices = _indexSets[_next];
        _next = (_next + 1) % _indexSets.Length;
        return indices;
    }

    private void Run(QuantizedBagKernel<long> kernel, long[] indices) =>
        kernel(in _packed[0], Dim, in indices[0], in _starts[0], BagCount, EmbeddingPrimitives.NoPadding,
            in System.Runtime.CompilerServices.Unsafe.NullRef<int>(), in System.Runtime.CompilerServices.Unsafe.NullRef<float>(), false, ref _destination[0]);

    /// <summary>Random codes; scales and biases of both signs over a few binades (fixed seed).</summary>
    private static byte[] Table(QuantizedRowLayout layout, long rows)
    {
        var random = new Random(1);
        byte[] packed = GC.AllocateUninitializedArray<byte>(checked((int)(rows * layout.RowBytes)));
        random.NextBytes(packed);
        for (long r = 0; r < rows; r++)
        {
            Span<byte> scaleBias = packed.AsSpan(checked((int)(r * layout.RowBytes + layout.CodeBytes)));
            float scale = (float)((random.NextDouble() - 0.3) * Math.Pow(2, random.Next(-10, 0)));
            float bias = (float)(random.NextDouble() - 0.5);
            if (layout.Bits == QuantizedBits.Eight)
            {
                BinaryPrimitives.WriteSingleLittleEndian(scaleBias, scale);
                BinaryPrimitives.WriteSingleLittleEndian(scaleBias[4..], bias);
            }
            else
            {
                BinaryPrimitives.WriteHalfLittleEndian(scaleBias, (Half)scale);
                BinaryPrimitives.WriteHalfLittleEndian(scaleBias[2..], (Half)bias);
            }
        }

        return packed;
    }
}
