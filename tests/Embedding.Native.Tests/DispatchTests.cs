using System;
using Xunit;

namespace Embedding.Native.Tests;

/// <summary>Width selection, the ISA switches `make test` relies on, and kernel-set registration.</summary>
public sealed class DispatchTests
{
    [Fact]
    public void BestWidth_FollowsTheRuntimeIsaSwitches()
    {
        // make test runs this suite with DOTNET_EnableAVX512=0 and DOTNET_EnableAVX2=0; prove they took effect.
        if (Environment.GetEnvironmentVariable("DOTNET_EnableAVX2") == "0")
        {
            Assert.True(KernelDispatch.BestWidth <= VectorWidth.Vector128);
        }
        else if (Environment.GetEnvironmentVariable("DOTNET_EnableAVX512") == "0")
        {
            Assert.True(KernelDispatch.BestWidth <= VectorWidth.Vector256);
        }

        Assert.Equal(KernelDispatch.BestWidth, KernelDispatch.SupportedWidths[0]);
        Assert.Equal(VectorWidth.Scalar, KernelDispatch.SupportedWidths[^1]);
    }

    [Fact]
    public void CompiledTier_MatchesBestWidth()
    {
        VectorWidth expected = IsaTiers.Compiled switch
        {
            IsaTier.X86_64_V4 => VectorWidth.Vector512,
            IsaTier.X86_64_V3 => VectorWidth.Vector256,
            IsaTier.X86_64_V2 or IsaTier.Arm64Neon => VectorWidth.Vector128,
            _ => KernelDispatch.BestWidth,
        };
        Assert.Equal(expected, KernelDispatch.BestWidth);
        Assert.True(IsaTiers.Cpu >= IsaTiers.Compiled, $"CPU tier {IsaTiers.Cpu} below compiled tier {IsaTiers.Compiled}");
    }

    [Theory]
    [InlineData(VectorWidth.Vector512, 16, VectorWidth.Vector512)]
    [InlineData(VectorWidth.Vector512, 15, VectorWidth.Vector256)]
    [InlineData(VectorWidth.Vector512, 8, VectorWidth.Vector256)]
    [InlineData(VectorWidth.Vector512, 7, VectorWidth.Vector128)]
    [InlineData(VectorWidth.Vector512, 3, VectorWidth.Scalar)]
    [InlineData(VectorWidth.Vector128, 300, VectorWidth.Vector128)]
    public void FitWidth_NarrowsUntilAVectorFitsInARow(VectorWidth requested, int dim, VectorWidth expected) =>
        Assert.Equal(expected, KernelDispatch.FitWidth(requested, dim));

    [Fact]
    public void Registry_HoldsTheDefaultSetOnce()
    {
        EmbeddingKernelRegistry.Register(new DefaultEmbeddingKernels());
        int defaults = 0;
        foreach (EmbeddingKernelSet set in EmbeddingKernelRegistry.Sets)
        {
            defaults += set is DefaultEmbeddingKernels ? 1 : 0;
        }

        Assert.Equal(1, defaults);
        Assert.True(EmbeddingKernelRegistry.IsSpecialised(768));
        Assert.False(EmbeddingKernelRegistry.IsSpecialised(769));
    }

    [Fact]
    public void Registry_PrefersTheNewestSetForItsKeys()
    {
        EmbeddingKernelRegistry.Register(new MarkerKernels());
        GatherKernel<float, long> generic = (ref readonly float weight, int dimension, ref readonly long indices, nint count, ref float destination) => { };
        Assert.Same(MarkerKernels.Kernel, KernelDispatch.Find(MarkerKernels.Key, generic));

        // Any other key falls through: another width, another table type, another dimension.
        Assert.Same(generic, KernelDispatch.Find(MarkerKernels.Key with { Width = VectorWidth.Vector128 }, generic));
        Assert.Same(generic, KernelDispatch.Find(MarkerKernels.Key with { Table = EmbeddingType.Float64 }, generic));
        Assert.NotSame(generic, KernelDispatch.Find(MarkerKernels.Key with { Dimension = 768 }, generic));
    }

    [Theory]
    [InlineData(EmbeddingType.Float32)]
    [InlineData(EmbeddingType.Float64)]
    [InlineData(EmbeddingType.Float16)]
    [InlineData(EmbeddingType.BFloat16)]
    public void DefaultSet_SpecialisesTheGatherOfEveryTableType(EmbeddingType table)
    {
        var key = new KernelKey(KernelOperation.Gather, table, EmbeddingIndexType.Int64, 768, VectorWidth.Vector128);
        Delegate? kernel = new DefaultEmbeddingKernels().Find(key);
        Assert.NotNull(kernel);
        Type element = TableElements.Size(table) switch { 2 => typeof(ushort), 8 => typeof(double), _ => typeof(float) };
        Assert.Equal(typeof(GatherKernel<,>).MakeGenericType(element, typeof(long)), kernel.GetType());
        Assert.Equal(EmbeddingTypes.All, new DefaultEmbeddingKernels().Types);
    }

    [Fact]
    public void DefaultSet_HasNoArithmeticKernelsForTypesWithoutThem()
    {
        // Scatter-add and the bag reductions are generated for float32 only so far; the other types run the generic kernels.
        var key = new KernelKey(KernelOperation.ScatterAdd, EmbeddingType.Float64, EmbeddingIndexType.Int32, 64, VectorWidth.Vector128);
        Assert.Null(new DefaultEmbeddingKernels().Find(key));
        Assert.NotNull(new DefaultEmbeddingKernels().Find(key with { Table = EmbeddingType.Float32 }));
    }

    /// <summary>A hand-written set for one odd dimension nobody else specialises.</summary>
    private sealed class MarkerKernels : EmbeddingKernelSet
    {
        public const int Dim = 12345;

        public static readonly KernelKey Key = new(KernelOperation.Gather, EmbeddingType.Float32, EmbeddingIndexType.Int64, Dim, VectorWidth.Scalar);

        public static readonly GatherKernel<float, long> Kernel = (ref readonly float weight, int dimension, ref readonly long indices, nint count, ref float destination) => { };

        public override ReadOnlySpan<int> Dimensions => new[] { Dim };

        public override EmbeddingTypes Types => EmbeddingTypes.Float32;

        public override Delegate? Find(KernelKey key) => key == Key ? Kernel : null;
    }
}
