using System;

namespace Embedding.Native;

/// <summary>
/// How many threads one call may use: 1 by default (the caller's thread only), like a library
/// that leaves parallelism to its host until asked. Process-wide; C: <c>emb_set_num_threads</c>,
/// Python: <c>embedding_native.set_num_threads</c>.
/// </summary>
/// <remarks>
/// Results are bit-identical for every thread count: work is split so that each output element is
/// computed by exactly one thread in the same order as on one thread (gathers and bags by output
/// row, the dense backward by destination row). Calls smaller than
/// <see cref="MinBytesPerThread"/> per thread stay on the calling thread.
/// </remarks>
public static class EmbeddingThreads
{
    private static int s_count = 1;

    /// <summary>
    /// Useful bytes (rows read + written) below which a call is not worth waking another thread for:
    /// 256 KiB takes ~15 µs at memory speed, about ten times the wake-up latency of a blocked worker.
    /// </summary>
    public const long MinBytesPerThread = 256 * 1024;

    /// <summary>The thread count calls may use, at least 1.</summary>
    /// <exception cref="ArgumentOutOfRangeException">Set to a value below 1 or above 1024.</exception>
    public static int Count
    {
        get => s_count;
        set
        {
            ArgumentOutOfRangeException.ThrowIfLessThan(value, 1);
            ArgumentOutOfRangeException.ThrowIfGreaterThan(value, 1024);
            s_count = value;
        }
    }

    /// <summary>Threads worth using for a call that moves <paramref name="usefulBytes"/> bytes in <paramref name="maxParts"/> splittable pieces.</summary>
    internal static int For(long usefulBytes, long maxParts) => For(usefulBytes, maxParts, UseCount);

    /// <summary>
    /// As <see cref="For(long, long)"/> with an explicit ceiling: <paramref name="threads"/> instead of
    /// <see cref="Count"/> (<see cref="UseCount"/> for <see cref="Count"/>). The validated cores take it
    /// so tests can compare thread counts without touching the process-wide setting.
    /// </summary>
    internal static int For(long usefulBytes, long maxParts, int threads) =>
        (int)Math.Max(1, Math.Min(Math.Min(threads > 0 ? threads : s_count, maxParts), usefulBytes / MinBytesPerThread));

    /// <summary>The <c>threads</c> argument of the cores that means "use <see cref="Count"/>".</summary>
    internal const int UseCount = 0;

    /// <summary>
    /// Pieces to cut a call into for <paramref name="threads"/> threads when its pieces are independent
    /// and cheap to start: a few per thread, so a thread slowed by a busy core hands its remaining
    /// pieces to the others. One piece for one thread.
    /// </summary>
    internal static int PartsFor(int threads, long maxParts) =>
        threads <= 1 ? 1 : (int)Math.Min(maxParts, 4L * threads);

    /// <summary>The start of piece <paramref name="part"/> of <paramref name="parts"/> over <c>[0, count)</c>: contiguous, in order, sizes differing by at most one.</summary>
    internal static long Boundary(long count, int part, int parts) =>
        (long)(((UInt128)(ulong)count * (ulong)part) / (ulong)parts);

    /// <summary>
    /// 1 when <paramref name="row"/> is in the piece's rows <c>[lo, hi)</c>, else 0, without a branch: the
    /// parallel backwards compact a chunk of positions to their own rows with it (a uniform index would
    /// mispredict a branch one time in two).
    /// </summary>
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveInlining)]
    internal static int Owns(long row, long lo, long hi) => (int)(1 + (((row - lo) | (hi - 1 - row)) >> 63));
}
