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
    public void Registry_PrefersTheNewestSetForItsDimensions()
    {
        EmbeddingKernelRegistry.Register(new MarkerKernels());
        Assert.Same(MarkerKernels.Kernel, KernelDispatch.GatherInt64(MarkerKernels.Dim, VectorWidth.Scalar));
        Assert.Null(KernelDispatch.GatherInt64(MarkerKernels.Dim, VectorWidth.Vector128));
        Assert.NotNull(KernelDispatch.GatherInt64(768, VectorWidth.Scalar));
    }

    /// <summary>A hand-written set for one odd dimension nobody else specialises.</summary>
    private sealed class MarkerKernels : EmbeddingKernelSet
    {
        public const int Dim = 12345;

        public static readonly GatherKernel<long> Kernel = (ref readonly float weight, ref readonly long indices, nint count, ref float destination) => { };

        public override ReadOnlySpan<int> Dimensions => new[] { Dim };

        public override GatherKernel<int>? GetGatherInt32(int embeddingDim, VectorWidth width) => null;

        public override GatherKernel<long>? GetGatherInt64(int embeddingDim, VectorWidth width) =>
            embeddingDim == Dim && width == VectorWidth.Scalar ? Kernel : null;
    }
}
