using System;
using System.Linq;
using Xunit;

namespace Embedding.Native.Tests;

/// <summary>
/// The float32 2-norm in torch 1.13's order (<see cref="TorchFloatSquareSum"/>) against the scalar
/// reference of the same order (<see cref="RenormReference.Norm(ReadOnlySpan{float}, double, TorchCpuCapability)"/>)
/// for every kernel set torch has, and against torch's own norms of rows whose tails tell the
/// kernel sets apart. The JIT's ISA (DOTNET_EnableAVX512=0, DOTNET_EnableAVX2=0) must not change a bit.
/// </summary>
public sealed class TorchFloatSquareSumTests
{

    /// <summary>1 … 140 (every tail length of both lane counts) and longer rows.</summary>
    private static readonly int[] Dims = [.. Enumerable.Range(1, 140), 255, 256, 257, 300, 511, 767, 768, 769, 1023, 1100];

    [Theory]
    [InlineData(nameof(TorchCpuCapability.Default))]
    [InlineData(nameof(TorchCpuCapability.Avx2))]
    [InlineData(nameof(TorchCpuCapability.Avx512))]
    public void SquareSum_MatchesTheScalarReferenceForEveryDimension(string kernels)
    {
        var capability = Enum.Parse<TorchCpuCapability>(kernels);
        foreach (int dim in Dims)
        {
            for (int seed = 0; seed < 4; seed++)
            {
                float[] row = Row(dim, seed * 7919 + dim, wideMagnitudes: seed % 2 == 1);
                float actual = MathF.Sqrt(TorchFloatSquareSum.Of(ref row[0], dim, capability));
                double expected = RenormReference.Norm(row, 2, capability);
                Assert.True(BitConverter.SingleToInt32Bits(actual) == BitConverter.SingleToInt32Bits((float)expected),
                    $"{capability}, dim {dim}, seed {seed}: {actual:R}, expected {expected:R}");
            }
        }
    }

    [Fact]
    public void SquareSum_DiffersBetweenKernelSets()
    {
        // The rules are not vacuous: over many rows each kernel set's norm differs from the others' somewhere.
        int[] differences = new int[3];
        foreach (int dim in Dims)
        {
            float[] row = Row(dim, dim, wideMagnitudes: false);
            float d = MathF.Sqrt(TorchFloatSquareSum.Of(ref row[0], dim, TorchCpuCapability.Default));
            float a2 = MathF.Sqrt(TorchFloatSquareSum.Of(ref row[0], dim, TorchCpuCapability.Avx2));
            float a5 = MathF.Sqrt(TorchFloatSquareSum.Of(ref row[0], dim, TorchCpuCapability.Avx512));
            differences[0] += d != a2 ? 1 : 0;
            differences[1] += a2 != a5 ? 1 : 0;
            differences[2] += d != a5 ? 1 : 0;
        }

        Assert.All(differences, count => Assert.True(count > 0));
    }

    /// <summary>
    /// Rows whose tails tell the kernel sets apart, and torch 1.13's <c>row.norm(2)</c> of each with
    /// ATEN_CPU_CAPABILITY unset (AVX2 on an AVX2 CPU), <c>default</c> and <c>avx512</c>, as float bits.
    /// Fusing every tail product would give 3FCAE97E for the first row, not AVX2's 3FCAE97F.
    /// </summary>
    public static TheoryData<string, uint, uint, uint> TorchNorms => new()
    {
        { "3F762CD2 BE1CDDC0 BF46731A 3F6AA1E6 3EB434AD", 0x3FCAE97F, 0x3FCAE97F, 0x3FCAE97E },
        { "BF731700 BE14B302 3F611394 BF70A5DB 3E4CDA3E BF17865A 3F7181C9", 0x3FFB78F5, 0x3FFB78F4, 0x3FFB78F4 },
        { "3EBE8333 BF5EB18F 3F5EB5F0 3F03379C 3F4095B4 3D35075F BD8D6BAA BEC3DDCA BF4C8569 3D0BBF4E BEC2B850 3F3A9589 BF2C09EE", 0x400641D3, 0x400641D3, 0x400641D4 },
    };

    [Theory]
    [MemberData(nameof(TorchNorms))]
    public void TwoNorm_IsTorchsForEachKernelSet(string rowBits, uint avx2, uint byDefault, uint avx512)
    {
        float[] row = [.. rowBits.Split(' ').Select(bits => BitConverter.Int32BitsToSingle(Convert.ToInt32(bits, 16)))];
        (TorchCpuCapability Capability, uint Expected)[] cases = [(TorchCpuCapability.Avx2, avx2), (TorchCpuCapability.Default, byDefault), (TorchCpuCapability.Avx512, avx512)];
        foreach ((TorchCpuCapability capability, uint expected) in cases)
        {
            uint actual = (uint)BitConverter.SingleToInt32Bits(MathF.Sqrt(TorchFloatSquareSum.Of(ref row[0], row.Length, capability)));
            Assert.True(expected == actual, $"{capability}: {actual:X8}, torch {expected:X8}");
            Assert.Equal(expected, (uint)BitConverter.SingleToInt32Bits((float)RenormReference.Norm(row, 2, capability)));
        }
    }

    [Fact]
    public void RowNorm_UsesTheKernelSetTorchRunsHere()
    {
        float[] row = [.. "3F762CD2 BE1CDDC0 BF46731A 3F6AA1E6 3EB434AD".Split(' ').Select(bits => BitConverter.Int32BitsToSingle(Convert.ToInt32(bits, 16)))];
        double expected = RenormReference.Norm(row, 2, TorchCpuCapabilities.Current);
        Assert.Equal(expected, RowNorms<float, float, Float32Renorm>.Of(ref row[0], row.Length, 2.0));
        Assert.Equal(expected, RowNorms<float, float, Float32Renorm>.Of(ref row[0], row.Length, 2.0000001)); // p as a float
    }

    [Theory]
    [InlineData("avx512", false, nameof(TorchCpuCapability.Avx512))]
    [InlineData("avx2", false, nameof(TorchCpuCapability.Avx2))]
    [InlineData("default", true, nameof(TorchCpuCapability.Default))]
    [InlineData(null, true, nameof(TorchCpuCapability.Avx2))]
    [InlineData(null, false, nameof(TorchCpuCapability.Default))]
    [InlineData("", true, nameof(TorchCpuCapability.Avx2))] // torch warns about an unknown value and detects
    [InlineData("AVX2", false, nameof(TorchCpuCapability.Default))] // the names are compared exactly
    public void Capability_IsDecidedAsTorchDecidesIt(string? variable, bool avx2Cpu, string kernels)
    {
        var expected = Enum.Parse<TorchCpuCapability>(kernels);
        // AVX2 (leaf 7 EBX bit 5), FMA and AVX (leaf 1 ECX bits 12, 28), YMM state enabled in XCR0.
        CpuFeatures cpu = avx2Cpu
            ? new CpuFeatures(Leaf1Ecx: (1u << 12) | (1u << 27) | (1u << 28), Leaf7Ebx: 1u << 5, Extended1Ecx: 0, Xcr0: 0x7)
            : new CpuFeatures(Leaf1Ecx: 1u << 27, Leaf7Ebx: 0, Extended1Ecx: 0, Xcr0: 0x3);
        Assert.Equal(expected, TorchCpuCapabilities.Decide(variable, cpu));
    }

    [Fact]
    public void Capability_NeedsFmaAndTheYmmStateToo()
    {
        var noFma = new CpuFeatures(Leaf1Ecx: (1u << 27) | (1u << 28), Leaf7Ebx: 1u << 5, Extended1Ecx: 0, Xcr0: 0x7);
        var noYmmState = new CpuFeatures(Leaf1Ecx: (1u << 12) | (1u << 27) | (1u << 28), Leaf7Ebx: 1u << 5, Extended1Ecx: 0, Xcr0: 0x3);
        Assert.Equal(TorchCpuCapability.Default, TorchCpuCapabilities.Decide(null, noFma));
        Assert.Equal(TorchCpuCapability.Default, TorchCpuCapabilities.Decide(null, noYmmState));
    }

    /// <summary>Values in [-1, 1), or spread over 2^-20 … 2^20 so every rounding shows.</summary>
    private static float[] Row(int dim, int seed, bool wideMagnitudes)
    {
        var random = new Random(seed);
        var row = new float[dim];
        for (int c = 0; c < dim; c++)
        {
            float x = (float)(random.NextDouble() * 2 - 1);
            row[c] = wideMagnitudes ? MathF.ScaleB(x, random.Next(-20, 21)) : x;
        }

        return row;
    }
}
