using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace Embedding.Native;

/// <summary>
/// One vector width as a type, so a generic kernel body is written once and the JIT or NativeAOT
/// compiler specialises it per width (the TensorPrimitives operator-struct pattern).
/// </summary>
internal interface IVectorWidth
{
    /// <summary>Floats per vector; 1 for the scalar width.</summary>
    static abstract int Lanes { get; }

    /// <summary>Copies <see cref="Lanes"/> floats at <paramref name="offset"/> from source to target.</summary>
    static abstract void Copy(ref float source, ref float target, nuint offset);
}

/// <summary>AVX-512: 16 floats.</summary>
internal readonly struct Width512 : IVectorWidth
{
    public static int Lanes => Vector512<float>.Count;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Copy(ref float source, ref float target, nuint offset) =>
        Vector512.LoadUnsafe(ref source, offset).StoreUnsafe(ref target, offset);
}

/// <summary>AVX2: 8 floats.</summary>
internal readonly struct Width256 : IVectorWidth
{
    public static int Lanes => Vector256<float>.Count;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Copy(ref float source, ref float target, nuint offset) =>
        Vector256.LoadUnsafe(ref source, offset).StoreUnsafe(ref target, offset);
}

/// <summary>SSE / NEON: 4 floats.</summary>
internal readonly struct Width128 : IVectorWidth
{
    public static int Lanes => Vector128<float>.Count;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Copy(ref float source, ref float target, nuint offset) =>
        Vector128.LoadUnsafe(ref source, offset).StoreUnsafe(ref target, offset);
}

/// <summary>No vectors: one float at a time.</summary>
internal readonly struct WidthScalar : IVectorWidth
{
    public static int Lanes => 1;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Copy(ref float source, ref float target, nuint offset) =>
        Unsafe.Add(ref target, offset) = Unsafe.Add(ref source, offset);
}
