using System;
using System.IO;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics.X86;
using BenchmarkDotNet.Attributes;

namespace Embedding.Native.Benchmarks;

/// <summary>
/// Per-call cost of the tiny gather of workload D (V = 10, D = 5, N = 3, int64 indices; target: at most
/// 0.2 µs from C#): the Span API, the shipped NativeAOT library for this CPU's tier through a function
/// pointer (built by `make native`), and the bare generic kernel as the floor under both. The Span API is the
/// baseline; the time of a call is the Mean column, in ns.
/// </summary>
public unsafe class Perf_TinyCall
{
    private const long Rows = 10;
    private const int Dim = 5;
    private const int Count = 3;
    private delegate* unmanaged<void*, int, long, long, void*, int, long, void*, long, int> _embedding;
    private float[] _table = [];
    private long[] _indices = [];
    private float[] _destination = [];

    public static double UsefulBytes() => 2.0 * Count * Dim * sizeof(float);

    [GlobalSetup]
    public void Setup()
    {
        string tier = NativeTier();
        string library = Path.Combine(Perf_NativeGather.RepositoryRoot(), "artifacts", "native", tier, "libembedding_native.so");
        _embedding = (delegate* unmanaged<void*, int, long, long, void*, int, long, void*, long, int>)
            NativeLibrary.GetExport(NativeLibrary.Load(library), "emb_embedding");
        Console.WriteLine($"// Perf_TinyCall: native library of tier {tier}");

        _table = Workload.Table(Rows, Dim);
        _indices = Workload.Indices(Count, Rows, IndexDistribution.Uniform);
        _destination = new float[Count * Dim];
        var expected = new float[Count * Dim];
        EmbeddingReference.Embedding<long>(_indices, _table, Dim, expected);
        foreach ((string name, Action call) in new (string, Action)[] { ("Span API", Span), ("native library", () => Native()), ("generic kernel", Kernel) })
        {
            Array.Fill(_destination, float.NaN);
            call();
            Workload.Verify(expected, _destination, $"tiny gather, {name}");
        }
    }

    /// <summary>The public API: validation, dispatch (no kernel is specialised for D = 5), the generic kernel.</summary>
    [Benchmark(Baseline = true)]
    public void Span() => EmbeddingPrimitives.Embedding(_indices, _table, Dim, _destination);

    /// <summary>emb_embedding: the transition into the NativeAOT library, its argument checks, then the same validated core.</summary>
    [Benchmark]
    public int Native()
    {
        fixed (float* table = _table)
        fixed (long* indices = _indices)
        fixed (float* destination = _destination)
        {
            return _embedding(table, 1, Rows, Dim, indices, 6, Count, destination, (long)Count * Dim);
        }
    }

    /// <summary>The generic kernel at the best width that fits a row, without validation or dispatch.</summary>
    [Benchmark]
    public void Kernel() => GenericGather<float, long>.At(KernelDispatch.FitWidth(KernelDispatch.BestWidth, Dim))(
        in _table[0], Dim, in _indices[0], Count, ref _destination[0]);

    /// <summary>
    /// The library a loader would pick: the lower of the CPU's tier (emb_cpu_tier, asked of the baseline build,
    /// which runs everywhere) and what this runtime reports usable (it also checks that the OS enabled the state).
    /// </summary>
    private static string NativeTier()
    {
        string baseline = Path.Combine(Perf_NativeGather.RepositoryRoot(), "artifacts", "native", "x86-64-v2", "libembedding_native.so");
        var cpuTier = (delegate* unmanaged<int>)NativeLibrary.GetExport(NativeLibrary.Load(baseline), "emb_cpu_tier");
        int runtimeTier =
            Avx512F.IsSupported && Avx512BW.IsSupported && Avx512CD.IsSupported && Avx512DQ.IsSupported && Avx512F.VL.IsSupported ? 4 :
            Avx2.IsSupported && Fma.IsSupported && Bmi1.IsSupported && Bmi2.IsSupported && Lzcnt.IsSupported ? 3 :
            2;
        return $"x86-64-v{Math.Clamp(Math.Min(cpuTier(), runtimeTier), 2, 4)}";
    }
}
