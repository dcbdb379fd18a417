using System;
using System.Runtime.InteropServices;

namespace Embedding.Native;

/// <summary>
/// Access-pattern hints for a table mapping. A lookup reads rows in no order, so the kernel's
/// read-ahead around each faulting page only fills the page cache with rows nobody asked for:
/// <c>POSIX_MADV_RANDOM</c> turns it off (Linux shows it as the <c>rr</c> flag in
/// <c>/proc/self/smaps</c>). A hint, never a requirement: where it is missing or refused, the mapping
/// works the same, only with read-ahead.
/// </summary>
internal static unsafe partial class MemoryAdvice
{
    /// <summary><c>POSIX_MADV_RANDOM</c>: 1 on Linux, macOS and the BSDs.</summary>
    private const int PosixMadvRandom = 1;

    /// <summary>Advises random access over <paramref name="length"/> bytes at the page-aligned <paramref name="start"/>; returns whether the system took the hint.</summary>
    public static bool Random(byte* start, long length)
    {
        if (OperatingSystem.IsWindows() || length == 0)
        {
            return false;
        }

        try
        {
            return PosixMadvise(start, (nuint)length, PosixMadvRandom) == 0;
        }
        catch (Exception failure) when (failure is DllNotFoundException or EntryPointNotFoundException)
        {
            return false; // a C library without posix_madvise: the hint is optional
        }
    }

    [LibraryImport("libc", EntryPoint = "posix_madvise")]
    private static partial int PosixMadvise(void* address, nuint length, int advice);
}
