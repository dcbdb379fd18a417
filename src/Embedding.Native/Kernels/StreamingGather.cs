using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Embedding.Native;

/// <summary>
/// The gather for outputs far larger than the last-level cache: every output line is written whole
/// with non-temporal stores, which skip reading the line before overwriting it (a third of a plain
/// gather's memory traffic) and keep the output from evicting the table. Values are plain copies, so
/// bit-identical to every other gather.
/// </summary>
/// <remarks>
/// Only where every store covers whole aligned lines: the output starts on a 64-byte boundary and a
/// row is whole lines (the dimension a multiple of 16). A line written partly by ordinary and partly
/// by streaming stores is what made a first attempt 6.7x slower; with whole lines a hand-written
/// harness measured 0.85-1.64x (median about 1.2x) the plain copy for 32-96 MiB outputs on this
/// machine (bench/results/streaming-stores.md). x86 only (ARM has no such store here).
/// </remarks>
internal static class StreamingGather
{
    /// <summary>From this output size on (twice this machine's 32 MiB last-level cache) a gather streams when it can.</summary>
    public const long MinOutputBytes = 64L << 20;

    /// <summary>Whether a gather of <paramref name="count"/> rows of <paramref name="rowBytes"/> bytes into the pinned <paramref name="destination"/> streams: rows of whole lines, a line-aligned output of at least <see cref="MinOutputBytes"/>.</summary>
    public static unsafe bool Applies(VectorWidth width, int rowBytes, nint count, void* destination) =>
        Sse.IsSupported && width != VectorWidth.Scalar && rowBytes % 64 == 0
        && (long)count * rowBytes >= MinOutputBytes && (nuint)destination % 64 == 0;

    /// <summary>Gathers <paramref name="count"/> rows; the caller checked <see cref="Applies"/> and pinned <paramref name="destination"/>.</summary>
    public static unsafe void Run<TIndex>(VectorWidth width, ref float weight, int dimension, ref TIndex indices, nint count, float* destination)
        where TIndex : unmanaged, IBinaryInteger<TIndex>
    {
        switch (width)
        {
            case VectorWidth.Vector512:
                Gather<TIndex, Stream512>(ref weight, dimension, ref indices, count, destination);
                break;
            case VectorWidth.Vector256:
                Gather<TIndex, Stream256>(ref weight, dimension, ref indices, count, destination);
                break;
            default:
                Gather<TIndex, Stream128>(ref weight, dimension, ref indices, count, destination);
                break;
        }

        // Streaming stores are weakly ordered: make them visible before the caller (or the thread
        // that waits for this piece) reads the output.
        Sse.StoreFence();
    }

    private static unsafe void Gather<TIndex, TStream>(ref float weight, int dimension, ref TIndex indices, nint count, float* destination)
        where TIndex : unmanaged, IBinaryInteger<TIndex>
        where TStream : IStreamingStore
    {
        float* target = destination;
        for (nint i = 0; i < count; i++)
        {
            if (KernelHints.IssuesPrefetches)
            {
                KernelHints.PrefetchRow(ref Unsafe.Add(ref weight, nint.CreateTruncating(Unsafe.Add(ref indices, KernelHints.Ahead(i, count, dimension))) * dimension), dimension);
            }

            ref float source = ref Unsafe.Add(ref weight, nint.CreateTruncating(Unsafe.Add(ref indices, i)) * dimension);
            for (nint column = 0; column < dimension; column += TStream.Lanes)
            {
                TStream.Store(ref Unsafe.Add(ref source, column), target + column);
            }

            target += dimension;
        }
    }

    /// <summary>One vector loaded from a row and stored, non-temporally, to an aligned output address.</summary>
    private interface IStreamingStore
    {
        static abstract int Lanes { get; }

        static abstract unsafe void Store(ref float source, float* target);
    }

    private readonly struct Stream512 : IStreamingStore
    {
        public static int Lanes => Vector512<float>.Count;

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static unsafe void Store(ref float source, float* target) => Avx512F.StoreAlignedNonTemporal(target, Vector512.LoadUnsafe(ref source));
    }

    private readonly struct Stream256 : IStreamingStore
    {
        public static int Lanes => Vector256<float>.Count;

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static unsafe void Store(ref float source, float* target) => Avx.StoreAlignedNonTemporal(target, Vector256.LoadUnsafe(ref source));
    }

    private readonly struct Stream128 : IStreamingStore
    {
        public static int Lanes => Vector128<float>.Count;

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static unsafe void Store(ref float source, float* target) => Sse.StoreAlignedNonTemporal(target, Vector128.LoadUnsafe(ref source));
    }
}
