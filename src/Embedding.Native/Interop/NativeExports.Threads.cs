using System;
using System.Globalization;
using System.Runtime.InteropServices;

namespace Embedding.Native.Interop;

/// <summary>C-ABI exports for the thread count (<see cref="EmbeddingThreads.Count"/>).</summary>
internal static unsafe partial class NativeExports
{
    /// <summary>The largest thread count <c>emb_set_num_threads</c> accepts.</summary>
    public const int MaxThreads = 1024;

    [UnmanagedCallersOnly(EntryPoint = "emb_set_num_threads")]
    public static int SetNumThreads(int numThreads)
    {
        try
        {
            if (numThreads < 1 || numThreads > MaxThreads)
            {
                return LastError.Set(EmbStatus.InvalidArgument, string.Create(CultureInfo.InvariantCulture,
                    $"num_threads {numThreads} is outside [1, {MaxThreads}]"));
            }

            EmbeddingThreads.Count = numThreads;
            return (int)EmbStatus.Ok;
        }
        catch (Exception exception)
        {
            return Fail(exception);
        }
    }

    [UnmanagedCallersOnly(EntryPoint = "emb_get_num_threads")]
    public static int GetNumThreads() => EmbeddingThreads.Count;
}
