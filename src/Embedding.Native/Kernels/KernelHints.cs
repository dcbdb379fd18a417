using System;
using System.ComponentModel;
using System.Runtime.CompilerServices;
using System.Numerics;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Embedding.Native;

/// <summary>
/// Cache hints the kernels share, generated ones included (public only so generated code in a
/// consumer assembly can call it without unsafe code). Hints never change a value: a prefetch
/// cannot fault, and the results stay bit-identical with or without them.
/// </summary>
[EditorBrowsable(EditorBrowsableState.Never)]
public static class KernelHints
{
    /// <summary>How many positions ahead the gather and bag kernels prefetch the row they will read.</summary>
    /// <remarks>
    /// 16 rows, FBGEMM's default. Stopwatch harness of bench/notes.md, same-process ratio of the generic
    /// gather (prefetching) to the generated kernel (not yet prefetching), AMD EPYC, 2 vCPUs, loaded host:
    /// B D=64 uniform/Zipf 1.05-1.2x / 1.5-1.8x, B D=256 1.1x / 1.2-1.3x, the 1 GiB table (D=64)
    /// 1.25-1.33x / 1.3x, against 1.0-1.2x / 0.7-1.0x / 1.0-1.07x with the prefetch off (distance 0).
    /// Distance 8 gained less on the 1 GiB table (1.18-1.39x); 32 was not distinguishable from 16
    /// within the noise (1.17-1.56x). D=16 neither gained nor lost measurably. The anchors
    /// (performance.md §3) report +19% for a cold C gather at 16 and a cap near 4 KiB ahead.
    /// </remarks>
    public const int PrefetchDistance = 16;

    /// <summary>At most this many bytes of a row are prefetched: 4 KiB ahead is FBGEMM's L1 cap, and a longer row's later lines are covered by the hardware stream prefetcher.</summary>
    public const int PrefetchRowBytes = 4096;

    /// <summary>The position whose row to prefetch while working on position <paramref name="i"/>: <see cref="PrefetchDistance"/> ahead, clamped to the last position.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static nint Ahead(nint i, nint count) => Math.Min(i + PrefetchDistance, count - 1);

    /// <summary>Prefetches every cache line of a row of <paramref name="dimension"/> floats into all cache levels (x86 only; elsewhere nothing).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static unsafe void PrefetchRow(ref readonly float row, int dimension)
    {
        if (!Sse.IsSupported)
        {
            return;
        }

        byte* first = (byte*)Unsafe.AsPointer(ref Unsafe.AsRef(in row));
        nint bytes = Math.Min(dimension * sizeof(float), PrefetchRowBytes);
        for (nint offset = 0; offset < bytes; offset += 64)
        {
            Sse.Prefetch0(first + offset);
        }

        // A row that does not start on a line boundary ends in one more line.
        Sse.Prefetch0(first + bytes - 1);
    }
}
