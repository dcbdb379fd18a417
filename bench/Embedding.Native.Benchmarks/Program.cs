using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Jobs;
using BenchmarkDotNet.Running;
using BenchmarkDotNet.Toolchains.InProcess.Emit;
using Perfolizer.Horology;

namespace Embedding.Native.Benchmarks;

/// <summary>
/// Runs the suite in process (the out-of-process toolchain rebuilds the project for every run).
/// `--quick` shortens every job for a smoke run; results land in BenchmarkDotNet.Artifacts/results
/// as GitHub markdown, which bench/README.md explains how to commit under bench/results/.
/// </summary>
public static class Program
{
    public static void Main(string[] args)
    {
        bool quick = System.Array.IndexOf(args, "--quick") >= 0;
        string[] rest = System.Array.FindAll(args, argument => argument != "--quick");
        Job job = Job.Default.WithToolchain(InProcessEmitToolchain.Instance);
        if (quick)
        {
            job = job.WithWarmupCount(1).WithIterationCount(3).WithLaunchCount(1).WithIterationTime(TimeInterval.FromMilliseconds(100));
        }

        IConfig config = DefaultConfig.Instance
            .AddJob(job.AsDefault())
            .AddColumn(new ThroughputColumn())
            .WithOptions(ConfigOptions.DisableOptimizationsValidator);
        BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(rest, config);
    }
}
