using System.Collections.Generic;

namespace Embedding.Native;

/// <summary>
/// Which x86-64 tier a CPU and its operating system can run, from <see cref="CpuFeatures"/>:
/// the CPUID feature bits of each psABI level plus, for AVX and AVX-512, the XCR0 bits that say
/// the OS saves that register state. This is the test the .NET runtime makes when a NativeAOT
/// library starts, so a tier this decision allows is one whose build starts. /proc/cpuinfo is
/// not consulted: some kernels leave flags out (for example <c>abm</c>) that the CPU has.
/// </summary>
internal static class IsaTierDecision
{
    private readonly record struct Feature(string Name, int Register, int Bit);

    private const int Leaf1Ecx = 1, Leaf7Ebx = 7, Extended1Ecx = 0x81;

    // The CPUID features each tier adds to the one below it.
    private static readonly Feature[] V2 =
    [
        new("SSE3", Leaf1Ecx, 0), new("SSSE3", Leaf1Ecx, 9), new("CMPXCHG16B", Leaf1Ecx, 13),
        new("SSE4.1", Leaf1Ecx, 19), new("SSE4.2", Leaf1Ecx, 20), new("POPCNT", Leaf1Ecx, 23),
    ];

    private static readonly Feature[] V3 =
    [
        new("AVX", Leaf1Ecx, 28), new("AVX2", Leaf7Ebx, 5), new("FMA", Leaf1Ecx, 12), new("F16C", Leaf1Ecx, 29),
        new("MOVBE", Leaf1Ecx, 22), new("BMI1", Leaf7Ebx, 3), new("BMI2", Leaf7Ebx, 8), new("LZCNT", Extended1Ecx, 5),
    ];

    private static readonly Feature[] V4 =
    [
        new("AVX512F", Leaf7Ebx, 16), new("AVX512DQ", Leaf7Ebx, 17), new("AVX512CD", Leaf7Ebx, 28),
        new("AVX512BW", Leaf7Ebx, 30), new("AVX512VL", Leaf7Ebx, 31),
    ];

    /// <summary>XCR0 bits 1 and 2: SSE (XMM) and AVX (upper YMM) state.</summary>
    public const ulong AvxState = 0x6;

    /// <summary>XCR0 bits 5, 6 and 7: opmask, ZMM_Hi256 and Hi16_ZMM state.</summary>
    public const ulong Avx512State = 0xE0;

    /// <summary>The best tier <paramref name="cpu"/> can run: 4, 3, 2, or Generic.</summary>
    public static IsaTier Decide(in CpuFeatures cpu) =>
        Missing(cpu, IsaTier.X86_64_V4).Length == 0 ? IsaTier.X86_64_V4 :
        Missing(cpu, IsaTier.X86_64_V3).Length == 0 ? IsaTier.X86_64_V3 :
        Missing(cpu, IsaTier.X86_64_V2).Length == 0 ? IsaTier.X86_64_V2 :
        IsaTier.Generic;

    /// <summary>
    /// What keeps <paramref name="cpu"/> from running <paramref name="tier"/>, in words, or ""
    /// when nothing does: the CPUID features it lacks, then the register state the OS has not
    /// enabled ("AVX512F, AVX512BW"; "the OS has not enabled the AVX-512 register state ...").
    /// </summary>
    public static string Missing(in CpuFeatures cpu, IsaTier tier)
    {
        if (tier is not (IsaTier.X86_64_V2 or IsaTier.X86_64_V3 or IsaTier.X86_64_V4))
        {
            return $"{IsaTiers.Name(tier)} is not an x86-64 tier";
        }

        var missing = new List<string>();
        AddMissing(cpu, V2, missing);
        if (tier >= IsaTier.X86_64_V3)
        {
            AddMissing(cpu, V3, missing);
        }

        if (tier >= IsaTier.X86_64_V4)
        {
            AddMissing(cpu, V4, missing);
        }

        if (missing.Count > 0)
        {
            return string.Join(", ", missing) + " (CPUID)";
        }

        return tier == IsaTier.X86_64_V2 ? "" : MissingState(cpu, tier == IsaTier.X86_64_V4 ? AvxState | Avx512State : AvxState);
    }

    private static string MissingState(in CpuFeatures cpu, ulong needed)
    {
        string what = needed == AvxState ? "AVX (YMM)" : "AVX-512 (opmask, ZMM)";
        if (!cpu.OsXsave)
        {
            return $"the OS has not enabled XSAVE (CPUID.1:ECX.OSXSAVE = 0), so the {what} register state is unusable";
        }

        if (cpu.Xcr0 is not ulong xcr0)
        {
            return $"XCR0 could not be read ({cpu.Xcr0Failure ?? "unknown reason"}), so the {what} register state cannot be confirmed";
        }

        return (xcr0 & needed) == needed
            ? ""
            : $"the OS has not enabled the {what} register state (XCR0 = 0x{xcr0:x}, needs bits 0x{needed:x})";
    }

    private static void AddMissing(in CpuFeatures cpu, Feature[] features, List<string> missing)
    {
        foreach (Feature feature in features)
        {
            uint register = feature.Register switch
            {
                Leaf1Ecx => cpu.Leaf1Ecx,
                Leaf7Ebx => cpu.Leaf7Ebx,
                _ => cpu.Extended1Ecx,
            };
            if ((register & (1u << feature.Bit)) == 0)
            {
                missing.Add(feature.Name);
            }
        }
    }
}
