using System;
using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace Embedding.Native;

/// <summary>
/// How the build of torch's CPU kernels running in this process rounds <c>a·b + c</c>: once, where GCC fused
/// the product into the add (the kernels compiled with FMA: AVX2, AVX-512), or twice, the product rounded
/// before it is added (the default kernels, baseline x86-64). A type parameter chosen once per call from
/// <see cref="TorchProducts.AreFused"/>, so that each loop is compiled for one rounding and reads no flag.
/// </summary>
internal interface ITorchProducts
{
    /// <summary>Whether the product is fused into the add. A constant to the JIT.</summary>
    static abstract bool AreFused { get; }

    /// <summary><c>a·b + c</c> in float, rounded as this build of torch rounds it.</summary>
    static abstract float MultiplyAdd(float a, float b, float c);

    /// <summary><c>a·b + c</c> in double, rounded as this build of torch rounds it.</summary>
    static abstract double MultiplyAdd(double a, double b, double c);
}

/// <summary><c>fma(a, b, c)</c>: torch's kernels compiled with FMA (AVX2, AVX-512), where GCC contracts <c>a * b + c</c>.</summary>
internal readonly struct FusedProducts : ITorchProducts
{
    public static bool AreFused => true;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float MultiplyAdd(float a, float b, float c) => MathF.FusedMultiplyAdd(a, b, c);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static double MultiplyAdd(double a, double b, double c) => Math.FusedMultiplyAdd(a, b, c);
}

/// <summary><c>rd(rd(a·b) + c)</c>: torch's default kernels, compiled for baseline x86-64 without FMA.</summary>
internal readonly struct RoundedProducts : ITorchProducts
{
    public static bool AreFused => false;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float MultiplyAdd(float a, float b, float c) => a * b + c;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static double MultiplyAdd(double a, double b, double c) => a * b + c;
}

/// <summary>The <see cref="ITorchProducts"/> of the kernels torch runs in this process.</summary>
internal static class TorchProducts
{
    /// <summary>
    /// Whether torch's kernels in this process fuse products into adds: on x86-64 its AVX2 and AVX-512 kernels
    /// (<see cref="TorchCpuCapabilities.Fuses"/>); on ARM64 its only set, compiled by GCC for a target whose
    /// <c>a * b + c</c> it contracts into <c>fmadd</c> (not checked against torch on ARM64: docs/exactness.md).
    /// </summary>
    public static readonly bool AreFused =
        TorchCpuCapabilities.Fuses(TorchCpuCapabilities.Current) || RuntimeInformation.ProcessArchitecture == Architecture.Arm64;

    /// <summary>
    /// Whether torch's weighted bag forward fuses <c>acc + w·row</c>. Its fast path (float32 and float16 tables,
    /// no padding row) is caffe2's <c>EmbeddingLookupIdx</c>, whose AVX2 + FMA kernel runs on a CPU that has both
    /// (cpuinfo; <c>ATEN_CPU_CAPABILITY</c> is not read) and whose generic C++ rounds the product everywhere else:
    /// on x86-64 without AVX2 (checked against torch under <c>qemu-x86_64 -cpu Nehalem</c>) and on ARM64
    /// (from its source: there is no ARM64 kernel in 1.13).
    /// </summary>
    public static readonly bool LookupsAreFused =
        RuntimeInformation.ProcessArchitecture is Architecture.X64 or Architecture.X86 && TorchCpuCapabilities.HasAvx2AndFma(CpuFeatures.Read());

    /// <summary><c>a·b + c</c> as torch's kernels in this process round it; a flag test per call, for the references and tests.</summary>
    public static T MultiplyAdd<T>(T a, T b, T c)
        where T : IFloatingPointIeee754<T> =>
        AreFused ? T.FusedMultiplyAdd(a, b, c) : a * b + c;
}
