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
    /// <summary>
    /// Whether the prefetch hints do anything (x86); a constant to the JIT. Callers test it before computing
    /// the address to prefetch, so that elsewhere (ARM64) the look-ahead index load and its clamp compile away
    /// with the hint: a load of the index ahead is kept even when its result is unused, since it may fault.
    /// </summary>
    public static bool IssuesPrefetches
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        get => Sse.IsSupported;
    }

    /// <summary>How far ahead, in bytes of rows, the gather, bag and scatter-add kernels prefetch.</summary>
    /// <remarks>
    /// 4 KiB ahead, FBGEMM's cap and the anchors' C kernel (performance.md §3): enough rows in flight to
    /// cover DRAM latency, few enough that the prefetched lines are still in L1 (32-48 KiB) when used.
    /// Measured with bench/results/prefetch-distance.md (same-run ratios to memcpy, AMD EPYC, 2 vCPUs):
    /// against no prefetch, B D=64 gather 0.58-0.80 → 0.74-0.97, scatter-add 0.62-0.69 → 0.80-1.07,
    /// bag sum 0.46-0.59 → 0.72-1.04; a fixed 16 rows ahead (48 KiB at D = 768) was no better at D = 64
    /// and lost at D = 256 and on the 1 GiB table; 2 KiB and 8 KiB were within the noise of 4 KiB.
    /// </remarks>
    public const int PrefetchBytesAhead = 4096;

    /// <summary>Never fewer rows ahead than this (rows of 2 KiB and more: the next rows but one).</summary>
    public const int MinPrefetchDistance = 2;

    /// <summary>Never more rows ahead than this (rows of 256 bytes and less): further ahead gained nothing measurable.</summary>
    public const int MaxPrefetchDistance = 16;

    /// <summary>How much of a row is prefetched: its first cache line (and the next, when the row starts inside a line).</summary>
    /// <remarks>
    /// The hardware stream prefetcher follows a row once its first lines are requested; prefetching every
    /// line of a long row as well only competes with it. bench/results/prefetch-distance.md, second sweep:
    /// A (D = 768) gather 0.88-0.96x memcpy with one line against 0.57-0.74x with the whole row (up to
    /// 4 KiB); at D = 64 and 256 the two were within the noise of each other.
    /// </remarks>
    public const int PrefetchRowBytes = 64;

    /// <summary>How much of the columns one pass of a bag kernel reads is prefetched from a table larger than <see cref="WholeRowTableBytes"/>: up to two lines.</summary>
    /// <remarks>
    /// A bag kernel whose accumulators cannot hold a whole row reads each bag's rows once per block of
    /// columns. Prefetching only a row's first line left every later pass to meet its lines cold: at
    /// x86-64-v2 (128-bit blocks of 8 vectors, 128 bytes) each pass prefetching its own 128 bytes, as far
    /// ahead as rows of the pass's width, made weighted bags 3.0-3.2x and sums 1.35-1.7x faster at
    /// D = 64-256 (bench/results/bag-pass-prefetch.md). Prefetching whole rows on the first pass did as
    /// well there but lost at AVX-512 (D = 768: 1.5x slower), where one pass covers 1 KiB and the hardware
    /// streamer follows it.
    /// </remarks>
    public const int PrefetchPassBytes = 128;

    /// <summary>The longest pass of a bag kernel that a table of at most <see cref="WholeRowTableBytes"/> has prefetched whole: eight lines.</summary>
    public const int PrefetchWholePassBytes = 512;

    /// <summary>The largest table whose bag kernels prefetch up to <see cref="PrefetchWholePassBytes"/> of each pass's columns instead of <see cref="PrefetchPassBytes"/>.</summary>
    /// <remarks>
    /// torch's lookup kernel prefetches every line of the row ahead. From tables of 23 and 49 MiB (B, 23 MiB and B at
    /// D = 128), whole rows ran as fast as a C kernel shaped like torch's in every run, where two lines took 1.3-1.44x
    /// as long in the runs on a busy machine and were within 5% in quiet ones; from 1 GiB tables whole rows were 12-28%
    /// slower than two lines (same-process runs, AMD EPYC with a 32 MiB L3: bench/results/bag-prefetch-whole-rows.md).
    /// The bound is twice that L3: the 49 MiB table still gained.
    /// </remarks>
    public const long WholeRowTableBytes = 64L << 20;

    /// <summary>Rows of at most this many bytes are never prefetched whole: their first two lines are asked for, and the hardware fetches the rest.</summary>
    /// <remarks>
    /// At D = 64 (256-byte rows) from a 24 MiB table, whole rows were 2-13% slower than two lines at x86-64-v3 and
    /// within the noise at v4; at D = 128 they were 21-28% faster at v3 (bench/results/bag-prefetch-whole-rows.md).
    /// </remarks>
    public const int WholeRowMinBytes = 256;

    /// <summary>
    /// Whether a bag kernel over a table of <paramref name="rows"/> rows of <paramref name="rowBytes"/> bytes prefetches whole
    /// passes: rows longer than <see cref="WholeRowMinBytes"/> in a table of at most <see cref="WholeRowTableBytes"/>.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static bool PrefetchesWholeRows(long rows, int rowBytes) => rowBytes > WholeRowMinBytes && rows <= WholeRowTableBytes / rowBytes;

    /// <summary>How many positions ahead a bag kernel's pass prefetches, whatever the width of its rows.</summary>
    /// <remarks>
    /// A bag adds its rows into registers and writes nothing per row, so more rows can be in flight than in a
    /// gather. 4 KiB of rows (<see cref="DistanceFor"/>) left 8 rows at D = 128 and 2 at D = 768 on AVX-512:
    /// a C model of the kernel (AMD EPYC, bags of 32, bench/results/bag-prefetch-distance.md) read 45 GB/s
    /// at D = 128 with 8 rows ahead and 56-61 with 16-32; 56 against 65 GB/s at D = 256 (4 rows against 16);
    /// 19 against 26-32 GB/s from a 1 GiB table. Prefetching whole rows instead of their first lines did not
    /// help, and lost from DRAM.
    /// </remarks>
    public const int BagPrefetchDistance = 16;

    /// <summary>The position whose row a bag kernel prefetches while working on position <paramref name="i"/> of <paramref name="total"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static nint BagAhead(nint i, nint total) => Math.Min(i + BagPrefetchDistance, total - 1);

    /// <summary>
    /// Prefetches the <paramref name="columns"/> columns from <paramref name="firstColumn"/> of a row that one pass of a
    /// bag kernel reads: their first <see cref="PrefetchPassBytes"/>, or with <paramref name="wholeRows"/> all of them when
    /// they span at most <see cref="PrefetchWholePassBytes"/> (<see cref="PrefetchesWholeRows"/>).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static unsafe void PrefetchColumns<T>(ref readonly T row, nuint firstColumn, int columns, bool wholeRows)
        where T : unmanaged
    {
        if (!Sse.IsSupported)
        {
            return;
        }

        // columns is a constant in the generated kernels, so only the wholeRows test remains at run time.
        byte* start = (byte*)Unsafe.AsPointer(ref Unsafe.Add(ref Unsafe.AsRef(in row), firstColumn));
        int bytes = columns * sizeof(T);
        Sse.Prefetch0(start);
        if (bytes > 64)
        {
            Sse.Prefetch0(start + 64);
        }

        // A short pass that does not start on a line boundary ends in the next line. A pass of two lines or more is
        // not given a third for that: on aligned rows it repeats the second, and dropping it was 2-6% faster at
        // D = 64 and 128 (bench/results/bag-prefetch-whole-rows.md); a misaligned row's last line is the hardware's.
        if (bytes < PrefetchPassBytes)
        {
            Sse.Prefetch0(start + bytes - 1);
        }

        if (wholeRows && bytes > PrefetchPassBytes && bytes <= PrefetchWholePassBytes)
        {
            // Lines 2 to 7 of the pass, unrolled by hand so that each test folds away (the same prefetches in a loop
            // ran 20-30% slower than two lines). The last line a misaligned pass touches is left to the hardware.
            // Longer passes (1 KiB at D = 256 on AVX-512) keep two lines: half of one prefetched was 2-8% slower.
            Sse.Prefetch0(start + 128);
            if (bytes > 192)
            {
                Sse.Prefetch0(start + 192);
            }

            if (bytes > 256)
            {
                Sse.Prefetch0(start + 256);
            }

            if (bytes > 320)
            {
                Sse.Prefetch0(start + 320);
            }

            if (bytes > 384)
            {
                Sse.Prefetch0(start + 384);
            }

            if (bytes > 448)
            {
                Sse.Prefetch0(start + 448);
            }
        }
    }

    /// <summary>How many positions ahead to prefetch rows of <paramref name="dimension"/> floats: <see cref="PrefetchBytesAhead"/> of rows, clamped; a constant in the specialised kernels.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static int DistanceFor(int dimension) => DistanceForRowBytes(dimension * sizeof(float));

    /// <summary>How many positions ahead to prefetch rows of <paramref name="rowBytes"/> bytes.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static int DistanceForRowBytes(int rowBytes) => Math.Clamp(PrefetchBytesAhead / Math.Max(1, rowBytes), MinPrefetchDistance, MaxPrefetchDistance);

    /// <summary>The position whose row to prefetch while working on position <paramref name="i"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static nint Ahead(nint i, nint count, int dimension) => Math.Min(i + DistanceFor(dimension), count - 1);

    /// <summary>The position whose row of <paramref name="dimension"/> elements of <typeparamref name="T"/> to prefetch while working on position <paramref name="i"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static nint Ahead<T>(nint i, nint count, int dimension)
        where T : unmanaged => Math.Min(i + DistanceForRowBytes(dimension * Unsafe.SizeOf<T>()), count - 1);

    /// <summary>Prefetches the first <see cref="PrefetchRowBytes"/> of a row of <paramref name="dimension"/> floats into all cache levels (x86 only; elsewhere nothing).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void PrefetchRow(ref readonly float row, int dimension) => PrefetchRow<float>(in row, dimension);

    /// <summary>Prefetches the first <see cref="PrefetchRowBytes"/> of a row of <paramref name="dimension"/> elements of <typeparamref name="T"/> (x86 only; elsewhere nothing).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static unsafe void PrefetchRow<T>(ref readonly T row, int dimension)
        where T : unmanaged
    {
        if (!Sse.IsSupported)
        {
            return;
        }

        PrefetchBytes(ref Unsafe.As<T, byte>(ref Unsafe.AsRef(in row)), Math.Min(dimension * sizeof(T), PrefetchRowBytes));
    }

    /// <summary>Prefetches every line that holds one of <paramref name="bytes"/> (1 to 128) bytes from <paramref name="start"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static unsafe void PrefetchBytes(ref byte start, int bytes)
    {
        byte* first = (byte*)Unsafe.AsPointer(ref start);
        Sse.Prefetch0(first);
        if (bytes > 64)
        {
            Sse.Prefetch0(first + 64);
        }

        // Bytes that do not start on a line boundary end in the next line.
        Sse.Prefetch0(first + bytes - 1);
    }
}
