using System;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Text;

namespace Embedding.Native.Interop;

/// <summary>
/// The per-thread message behind <c>emb_last_error()</c>. Stored as NUL-terminated UTF-8 in a
/// pinned array, so the pointer handed to C stays valid until this thread's next failure; the
/// array is freed with the thread. Only failures touch it: a successful call costs nothing here.
/// </summary>
internal static unsafe class LastError
{
    private const int Capacity = 1024;

    [ThreadStatic]
    private static byte[]? t_message;

    private static ReadOnlySpan<byte> Empty => ""u8;

    /// <summary>Records <paramref name="message"/> (truncated to fit) and returns <paramref name="status"/>.</summary>
    public static int Set(EmbStatus status, string message)
    {
        byte[] buffer = t_message ??= GC.AllocateArray<byte>(Capacity, pinned: true);
        int length = Encoding.UTF8.GetBytes(message.AsSpan(0, Math.Min(message.Length, Capacity / 4 - 1)), buffer);
        buffer[length] = 0;
        return (int)status;
    }

    /// <summary>The current message as a C string; a static empty string before any failure.</summary>
    public static byte* Pointer
    {
        get
        {
            if (t_message is { } buffer)
            {
                return (byte*)Unsafe.AsPointer(ref MemoryMarshal.GetArrayDataReference(buffer));
            }

            return (byte*)Unsafe.AsPointer(ref MemoryMarshal.GetReference(Empty));
        }
    }
}
