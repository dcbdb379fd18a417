namespace Embedding.Native;

/// <summary>The vector width a kernel body is written for. Values are the width in bits.</summary>
public enum VectorWidth
{
    /// <summary>Plain scalar loops: the last-resort path when no vector width is accelerated.</summary>
    Scalar = 0,

    /// <summary><see cref="System.Runtime.Intrinsics.Vector128{T}"/>: SSE on x64, AdvSimd (NEON) on ARM64.</summary>
    Vector128 = 128,

    /// <summary><see cref="System.Runtime.Intrinsics.Vector256{T}"/>: AVX2.</summary>
    Vector256 = 256,

    /// <summary><see cref="System.Runtime.Intrinsics.Vector512{T}"/>: AVX-512.</summary>
    Vector512 = 512,
}
