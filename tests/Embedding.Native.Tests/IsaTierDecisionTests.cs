using System.Collections.Generic;
using System.Runtime.Intrinsics.X86;
using Xunit;

namespace Embedding.Native.Tests;

/// <summary>
/// The tier decision on injected CPUID / XCR0 answers (CPUs and operating systems this machine is
/// not), and on the real ones against what the .NET runtime itself enabled.
/// </summary>
public sealed class IsaTierDecisionTests
{
    // CPUID.1:ECX: SSE3 SSSE3 CX16 SSE4.1 SSE4.2 POPCNT | FMA MOVBE XSAVE OSXSAVE AVX F16C.
    private const uint V2Leaf1 = (1u << 0) | (1u << 9) | (1u << 13) | (1u << 19) | (1u << 20) | (1u << 23);
    private const uint AvxLeaf1 = V2Leaf1 | (1u << 12) | (1u << 22) | (1u << 26) | (1u << 27) | (1u << 28) | (1u << 29);
    private const uint OsXsave = 1u << 27;

    // CPUID.7:EBX: BMI1 AVX2 BMI2 | AVX512 F DQ CD BW VL.
    private const uint Avx2Leaf7 = (1u << 3) | (1u << 5) | (1u << 8);
    private const uint Avx512Leaf7 = Avx2Leaf7 | (1u << 16) | (1u << 17) | (1u << 28) | (1u << 30) | (1u << 31);

    private const uint Lzcnt = 1u << 5;

    // XCR0: x87 SSE AVX, then opmask ZMM_Hi256 Hi16_ZMM.
    private const ulong AvxEnabled = 0x7, Avx512Enabled = 0xE7;

    private static readonly Dictionary<string, (CpuFeatures Cpu, IsaTier Expected)> Machines = new()
    {
        ["Intel Xeon with AVX-512"] = (new CpuFeatures(AvxLeaf1, Avx512Leaf7 | (1u << 21), Lzcnt | 1, Avx512Enabled | 0x200), IsaTier.X86_64_V4),
        // Zen 4/5 guests whose kernel omits `abm` from /proc/cpuinfo still report LZCNT in CPUID.
        ["AMD Zen 4/5 (no abm in /proc/cpuinfo)"] = (new CpuFeatures(AvxLeaf1, Avx512Leaf7, Lzcnt | (1u << 6), Avx512Enabled), IsaTier.X86_64_V4),
        ["AVX2 only (Haswell, Zen 2)"] = (new CpuFeatures(AvxLeaf1, Avx2Leaf7, Lzcnt, AvxEnabled), IsaTier.X86_64_V3),
        ["AVX-512 CPU, OS without ZMM state"] = (new CpuFeatures(AvxLeaf1, Avx512Leaf7, Lzcnt, AvxEnabled), IsaTier.X86_64_V3),
        ["AVX-512 CPU, OS with YMM but only opmask"] = (new CpuFeatures(AvxLeaf1, Avx512Leaf7, Lzcnt, AvxEnabled | 0x20), IsaTier.X86_64_V3),
        ["AVX CPU, OS without YMM state"] = (new CpuFeatures(AvxLeaf1, Avx512Leaf7, Lzcnt, 0x3), IsaTier.X86_64_V2),
        ["AVX CPU, OS without XSAVE"] = (new CpuFeatures(AvxLeaf1 & ~OsXsave, Avx512Leaf7, Lzcnt, null), IsaTier.X86_64_V2),
        ["AVX CPU, XCR0 unreadable"] = (new CpuFeatures(AvxLeaf1, Avx512Leaf7, Lzcnt, null, "mprotect refused"), IsaTier.X86_64_V2),
        ["AVX2 without LZCNT"] = (new CpuFeatures(AvxLeaf1, Avx2Leaf7, 0, AvxEnabled), IsaTier.X86_64_V2),
        ["AVX-512 without AVX512VL"] = (new CpuFeatures(AvxLeaf1, Avx512Leaf7 & ~(1u << 31), Lzcnt, Avx512Enabled), IsaTier.X86_64_V3),
        ["Nehalem (SSE4.2, POPCNT)"] = (new CpuFeatures(V2Leaf1, 0, 1, null), IsaTier.X86_64_V2),
        ["Core 2 (no SSE4.2)"] = (new CpuFeatures(V2Leaf1 & ~(1u << 20) & ~(1u << 23), 0, 1, null), IsaTier.Generic),
    };

    public static TheoryData<string> MachineNames => new(Machines.Keys);

    [Theory]
    [MemberData(nameof(MachineNames))]
    public void Decide_GivesTheBestTierWhoseFeaturesAndStateAreAllThere(string machine)
    {
        (CpuFeatures cpu, IsaTier expected) = Machines[machine];
        Assert.True(expected == IsaTierDecision.Decide(cpu), machine);
        foreach (IsaTier tier in new[] { IsaTier.X86_64_V2, IsaTier.X86_64_V3, IsaTier.X86_64_V4 })
        {
            string missing = IsaTierDecision.Missing(cpu, tier);
            Assert.True((missing.Length == 0) == (tier <= expected), $"{machine}: {tier} -> \"{missing}\"");
        }
    }

    [Theory]
    [InlineData(0x7ul, "AVX-512 (opmask, ZMM) register state (XCR0 = 0x7")]
    [InlineData(0x27ul, "XCR0 = 0x27, needs bits 0xe6")]
    public void Missing_NamesTheRegisterStateTheOsLeftOff(ulong xcr0, string expected)
    {
        var cpu = new CpuFeatures(AvxLeaf1, Avx512Leaf7, Lzcnt, xcr0);
        string missing = IsaTierDecision.Missing(cpu, IsaTier.X86_64_V4);
        Assert.Contains("the OS has not enabled", missing);
        Assert.Contains(expected, missing);
    }

    [Fact]
    public void Missing_NamesEveryAbsentCpuidFeature()
    {
        var haswell = new CpuFeatures(AvxLeaf1, Avx2Leaf7, Lzcnt, AvxEnabled);
        Assert.Equal("AVX512F, AVX512DQ, AVX512CD, AVX512BW, AVX512VL (CPUID)", IsaTierDecision.Missing(haswell, IsaTier.X86_64_V4));

        var noLzcnt = new CpuFeatures(AvxLeaf1, Avx2Leaf7, 0, AvxEnabled);
        Assert.Equal("LZCNT (CPUID)", IsaTierDecision.Missing(noLzcnt, IsaTier.X86_64_V3));
    }

    [Fact]
    public void Missing_SaysWhyXcr0IsUnknown()
    {
        var noXsave = new CpuFeatures(AvxLeaf1 & ~OsXsave, Avx2Leaf7, Lzcnt, null);
        Assert.Contains("OSXSAVE = 0", IsaTierDecision.Missing(noXsave, IsaTier.X86_64_V3));

        var unreadable = new CpuFeatures(AvxLeaf1, Avx2Leaf7, Lzcnt, null, "mprotect refused");
        Assert.Contains("XCR0 could not be read (mprotect refused)", IsaTierDecision.Missing(unreadable, IsaTier.X86_64_V3));
    }

    [Fact]
    public void RealCpu_AgreesWithWhatTheRuntimeEnabled()
    {
        CpuFeatures cpu = CpuFeatures.Read();
        Assert.Equal(IsaTiers.Cpu, IsaTierDecision.Decide(cpu));
        Assert.True(IsaTiers.Cpu >= IsaTiers.Compiled, $"CPU tier {IsaTiers.Cpu} below compiled tier {IsaTiers.Compiled}");

        // The runtime enables AVX only after its own XGETBV check, so our XCR0 must agree with it.
        // (DOTNET_EnableAVX2=0 and friends can only lower what the runtime enables, never raise it.)
        if (Avx.IsSupported)
        {
            Assert.NotNull(cpu.Xcr0);
            Assert.Equal(IsaTierDecision.AvxState, cpu.Xcr0!.Value & IsaTierDecision.AvxState);
        }

        if (Avx512F.IsSupported)
        {
            Assert.Equal(IsaTierDecision.Avx512State, cpu.Xcr0!.Value & IsaTierDecision.Avx512State);
            Assert.Equal(IsaTier.X86_64_V4, IsaTiers.Cpu);
        }

        for (IsaTier tier = IsaTier.X86_64_V2; tier <= IsaTier.X86_64_V4; tier++)
        {
            Assert.Equal(tier <= IsaTiers.Cpu, IsaTiers.CpuMissing(tier).Length == 0);
        }
    }
}
