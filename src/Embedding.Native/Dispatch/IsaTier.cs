using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.Arm;
using System.Runtime.Intrinsics.X86;

namespace Embedding.Native;

/// <summary>Instruction-set tiers; values pinned to <c>emb_isa</c> in embedding_native.h.</summary>
public enum IsaTier
{
    /// <summary>No vector tier known.</summary>
    Generic = 0,

    /// <summary>x86-64-v2: SSE4.2 and POPCNT; Vector128 kernels.</summary>
    X86_64_V2 = 2,

    /// <summary>x86-64-v3: AVX2, FMA, BMI2; Vector256 kernels.</summary>
    X86_64_V3 = 3,

    /// <summary>x86-64-v4: AVX-512 F/BW/CD/DQ/VL; Vector512 kernels.</summary>
    X86_64_V4 = 4,

    /// <summary>ARM64 with AdvSimd (NEON); Vector128 kernels.</summary>
    Arm64Neon = 64,
}

/// <summary>Which tier the running code was compiled for, and which the CPU could run.</summary>
public static class IsaTiers
{
    /// <summary>
    /// The tier of the running code: under NativeAOT the instruction set fixed at compile time,
    /// under the JIT what the runtime enabled (so <c>DOTNET_EnableAVX512=0</c> lowers it).
    /// </summary>
    public static IsaTier Compiled { get; } =
        Avx512F.IsSupported && Avx512BW.IsSupported && Avx512DQ.IsSupported && Avx512CD.IsSupported && Vector512.IsHardwareAccelerated ? IsaTier.X86_64_V4 :
        Avx2.IsSupported && Fma.IsSupported && Bmi2.IsSupported && Vector256.IsHardwareAccelerated ? IsaTier.X86_64_V3 :
        Sse42.IsSupported && Popcnt.IsSupported ? IsaTier.X86_64_V2 :
        AdvSimd.IsSupported ? IsaTier.Arm64Neon :
        IsaTier.Generic;

    /// <summary>
    /// The best tier the CPU and operating system can run, whatever this binary was compiled
    /// for: CPUID feature bits plus the XCR0 register state (XGETBV), the test the .NET runtime
    /// makes when a NativeAOT build starts (see <see cref="IsaTierDecision"/>). The baseline
    /// x86-64-v2 build can answer before a loader picks a faster tier.
    /// </summary>
    public static IsaTier Cpu => CpuAnswers.Tier;

    /// <summary>
    /// What keeps the running CPU and OS from running <paramref name="tier"/>, in words
    /// ("AVX512F, AVX512BW (CPUID)", "the OS has not enabled the AVX-512 ... register state"), or
    /// an empty string when <paramref name="tier"/> can run here.
    /// </summary>
    public static string CpuMissing(IsaTier tier) =>
        AdvSimd.IsSupported ? (tier == IsaTier.Arm64Neon ? "" : $"{Name(tier)} cannot run on an ARM64 CPU")
        : tier == IsaTier.Arm64Neon ? "arm64 cannot run on an x86-64 CPU"
        : IsaTierDecision.Missing(CpuAnswers.Features, tier);

    /// <summary>The conventional name of a tier: "x86-64-v4", "arm64", ...</summary>
    public static string Name(IsaTier tier) => tier switch
    {
        IsaTier.X86_64_V2 => "x86-64-v2",
        IsaTier.X86_64_V3 => "x86-64-v3",
        IsaTier.X86_64_V4 => "x86-64-v4",
        IsaTier.Arm64Neon => "arm64",
        _ => "generic",
    };

    /// <summary>Read once, on first use.</summary>
    private static class CpuAnswers
    {
        public static readonly CpuFeatures Features = AdvSimd.IsSupported ? default : CpuFeatures.Read();

        public static readonly IsaTier Tier = AdvSimd.IsSupported ? IsaTier.Arm64Neon : IsaTierDecision.Decide(Features);
    }
}
