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
    internal static int For(long usefulBytes, long maxParts) =>
        (int)Math.Max(1, Math.Min(Math.Min(s_count, maxParts), usefulBytes / MinBytesPerThread));
}
