using System;

namespace Embedding.Native;

/// <summary>
/// The set of ATen CPU kernels torch 1.13 runs in this process (its <c>CPUCapability</c>). Each is the
/// same C++ compiled with other flags, and a few reductions round differently between them: the
/// float32 2-norm's lanes and where GCC fused its multiply-adds (<see cref="TorchFloatSquareSum"/>),
/// the float64 2-norm's fused or separate products.
/// </summary>
internal enum TorchCpuCapability
{
    /// <summary>Baseline x86-64 (SSE2): no fused multiply-adds; <c>Vectorized&lt;float&gt;</c> is 8 lanes in memory.</summary>
    Default,

    /// <summary>AVX2 + FMA: <c>Vectorized&lt;float&gt;</c> is 8 lanes, products fused into adds where GCC contracted them.</summary>
    Avx2,

    /// <summary>AVX-512 (only when <c>ATEN_CPU_CAPABILITY=avx512</c>: torch 1.13 never picks it itself): 16 lanes, fused.</summary>
    Avx512,
}

/// <summary>
/// Decides <see cref="TorchCpuCapability"/> as torch 1.13 does (<c>compute_cpu_capability</c>,
/// aten/src/ATen/native/DispatchStub.cpp): the environment variable <c>ATEN_CPU_CAPABILITY</c> when it
/// is exactly <c>avx512</c>, <c>avx2</c> or <c>default</c> (torch warns about and ignores any other
/// value); otherwise AVX2 when the CPU has AVX2 and FMA3 and the OS saves the YMM state, else the
/// default kernels. AVX-512 is opt-in in 1.13 (pytorch#80252), so an AVX-512 CPU gets AVX2.
/// </summary>
/// <remarks>
/// This is torch's choice, not our ISA tier's: a library at x86-64-v2 (or run with
/// <c>DOTNET_EnableAVX2=0</c>) on an AVX2 CPU still reproduces torch's AVX2 rounding, with software
/// fused multiply-adds where the JIT has none. Read once, as torch reads it once per process.
/// </remarks>
internal static class TorchCpuCapabilities
{
    /// <summary>The name of the environment variable that overrides torch's CPU detection.</summary>
    public const string EnvironmentVariable = "ATEN_CPU_CAPABILITY";

    /// <summary>The capability torch 1.13 uses in this process.</summary>
    public static readonly TorchCpuCapability Current =
        Decide(Environment.GetEnvironmentVariable(EnvironmentVariable), CpuFeatures.Read());

    /// <summary>torch's decision from the variable's value (null when unset) and the CPU.</summary>
    public static TorchCpuCapability Decide(string? variable, in CpuFeatures cpu)
    {
        switch (variable)
        {
            case "avx512":
                return TorchCpuCapability.Avx512;
            case "avx2":
                return TorchCpuCapability.Avx2;
            case "default":
                return TorchCpuCapability.Default;
        }

        return HasAvx2AndFma(cpu) ? TorchCpuCapability.Avx2 : TorchCpuCapability.Default;
    }

    /// <summary>
    /// Whether the CPU has AVX2 and FMA3 and the OS saves the YMM state: torch's test for its AVX2 kernels when the
    /// variable does not decide, and the only test of the bag-forward kernels (caffe2's perfkernels, which read
    /// the CPU and never the variable).
    /// </summary>
    public static bool HasAvx2AndFma(in CpuFeatures cpu)
    {
        const int Avx2Bit = 5, FmaBit = 12, AvxBit = 28;
        bool avx2 = (cpu.Leaf7Ebx & (1u << Avx2Bit)) != 0;
        bool fma = (cpu.Leaf1Ecx & (1u << FmaBit)) != 0 && (cpu.Leaf1Ecx & (1u << AvxBit)) != 0;
        bool ymmState = cpu.Xcr0 is ulong xcr0 && (xcr0 & IsaTierDecision.AvxState) == IsaTierDecision.AvxState;
        return avx2 && fma && ymmState;
    }

    /// <summary>Whether <paramref name="capability"/>'s kernels were compiled with FMA (GCC contracts <c>a * b + c</c>).</summary>
    public static bool Fuses(TorchCpuCapability capability) => capability != TorchCpuCapability.Default;
}
