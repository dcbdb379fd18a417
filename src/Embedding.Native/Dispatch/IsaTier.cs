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
    /// The best tier the CPU reports through CPUID, whatever this binary was compiled for. CPUID
    /// is available in every x64 build, so the baseline library can answer before a loader picks
    /// a tier. OSXSAVE is checked, but .NET cannot read XCR0: callers should also ask the OS.
    /// </summary>
    public static IsaTier Cpu { get; } = DetectCpu();

    /// <summary>The conventional name of a tier: "x86-64-v4", "arm64", ...</summary>
    public static string Name(IsaTier tier) => tier switch
    {
        IsaTier.X86_64_V2 => "x86-64-v2",
        IsaTier.X86_64_V3 => "x86-64-v3",
        IsaTier.X86_64_V4 => "x86-64-v4",
        IsaTier.Arm64Neon => "arm64",
        _ => "generic",
    };

    private static IsaTier DetectCpu()
    {
        if (AdvSimd.IsSupported)
        {
            return IsaTier.Arm64Neon;
        }

        if (!X86Base.IsSupported)
        {
            return IsaTier.Generic;
        }

        (_, _, int features1, _) = X86Base.CpuId(1, 0);
        (_, int features7, _, _) = X86Base.CpuId(7, 0);
        (_, _, int extended1, _) = X86Base.CpuId(unchecked((int)0x80000001), 0);

        bool v2 = All(features1, (1 << 0) | (1 << 9) | (1 << 13) | (1 << 19) | (1 << 20) | (1 << 23)); // SSE3 SSSE3 CX16 SSE4.1 SSE4.2 POPCNT
        bool v3 = v2
            && All(features1, (1 << 12) | (1 << 22) | (1 << 27) | (1 << 28) | (1 << 29))               // FMA MOVBE OSXSAVE AVX F16C
            && All(features7, (1 << 3) | (1 << 5) | (1 << 8))                                           // BMI1 AVX2 BMI2
            && All(extended1, 1 << 5);                                                                  // LZCNT
        bool v4 = v3 && All(features7, (1 << 16) | (1 << 17) | (1 << 28) | (1 << 30) | (1 << 31));      // AVX-512 F DQ CD BW VL
        return v4 ? IsaTier.X86_64_V4 : v3 ? IsaTier.X86_64_V3 : v2 ? IsaTier.X86_64_V2 : IsaTier.Generic;

        static bool All(int register, int mask) => (register & mask) == mask;
    }
}
