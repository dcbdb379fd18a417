using System;
using System.IO;
using System.Runtime.InteropServices;
using BenchmarkDotNet.Attributes;

namespace Embedding.Native.Benchmarks;

/// <summary>
/// The shipped NativeAOT library (artifacts/native/&lt;tier&gt;/libembedding_native.so, built by
/// `make native`) called through a function pointer, next to the same gather in this JIT
/// process: workload B at D = 64 and the tiny call of workload D (V = 10, D = 5, N = 3).
/// </summary>
public unsafe class Perf_NativeGather
{
    private delegate* unmanaged<void*, int, long, long, void*, int, long, void*, long, int> _embedding;
    private float[] _table = [];
    private long[] _indices = [];
    private float[] _destination = [];

    [Params("x86-64-v4", "x86-64-v3", "x86-64-v2")]
    public string Tier { get; set; } = "";

    [Params("B: V=100000 D=64 N=65536", "D: V=10 D=5 N=3")]
    public string Shape { get; set; } = "";

    public static double UsefulBytes(string shape) => shape.StartsWith('B') ? 2.0 * 65_536 * 64 * 4 : 2.0 * 3 * 5 * 4;

    private (long Rows, int Dim, int Count) Sizes => Shape.StartsWith('B') ? (100_000, 64, 65_536) : (10, 5, 3);

    [GlobalSetup]
    public void Setup()
    {
        string library = Path.Combine(RepositoryRoot(), "artifacts", "native", Tier, "libembedding_native.so");
        _embedding = (delegate* unmanaged<void*, int, long, long, void*, int, long, void*, long, int>)
            NativeLibrary.GetExport(NativeLibrary.Load(library), "emb_embedding");
        (long rows, int dim, int count) = Sizes;
        _table = Workload.Table(rows, dim);
        _indices = Workload.Indices(count, rows, IndexDistribution.Uniform);
        _destination = new float[count * dim];
        var expected = new float[count * dim];
        EmbeddingReference.Embedding<long>(_indices, _table, dim, expected);
        Native();
        Workload.Verify(expected, _destination, $"{Tier} library");
    }

    [Benchmark]
    public int Native()
    {
        (long rows, int dim, int count) = Sizes;
        fixed (float* table = _table)
        fixed (long* indices = _indices)
        fixed (float* destination = _destination)
        {
            return _embedding(table, 1, rows, dim, indices, 6, count, destination, (long)count * dim);
        }
    }

    [Benchmark(Baseline = true)]
    public void Managed() => EmbeddingPrimitives.Embedding(_indices, _table, Sizes.Dim, _destination);

    internal static string RepositoryRoot()
    {
        for (string? directory = AppContext.BaseDirectory; directory is not null; directory = Path.GetDirectoryName(directory))
        {
            if (File.Exists(Path.Combine(directory, "Embedding.Native.sln")))
            {
                return directory;
            }
        }

        throw new InvalidOperationException("run the benchmarks from inside the repository (Embedding.Native.sln not found)");
    }
}
