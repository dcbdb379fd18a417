using System;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Text;

namespace Embedding.Native.Interop;

/// <summary>
/// The per-thread message behind <c>emb_last_error()</c>. Stored as NUL-terminated UTF-8 in a
/// pinned array, so the pointer handed to C stays valid until this thread's next failure; the
/// array is freed with the thread. Only failures touch it: a successful call costs nothing here.
/// An out-of-range index also records its position and value (<c>emb_last_index_error()</c>), so a
/// caller that rewords the message (Python builds torch's text) need not scan the indices again.
/// </summary>
internal static unsafe class LastError
{
    private const int Capacity = 1024;

    [ThreadStatic]
    private static byte[]? t_message;

    [ThreadStatic]
    private static bool t_hasIndex;

    [ThreadStatic]
    private static long t_position;

    [ThreadStatic]
    private static long t_value;

    private static ReadOnlySpan<byte> Empty => ""u8;

    /// <summary>Records <paramref name="message"/> (truncated to fit) and returns <paramref name="status"/>.</summary>
    public static int Set(EmbStatus status, string message)
    {
        t_hasIndex = false;
        return Write(status, message);
    }

    /// <summary>
    /// Records an out-of-range element of an index array (indices, a bag's indices, rows): the
    /// message, plus its position and value for <see cref="TryGetIndex"/>. Returns
    /// <see cref="EmbStatus.IndexOutOfRange"/>.
    /// </summary>
    public static int SetIndex(long position, long value, long rows, string prefix = "")
    {
        t_hasIndex = true;
        t_position = position;
        t_value = value;
        return Write(EmbStatus.IndexOutOfRange, prefix + EmbeddingErrors.IndexOutOfRange(position, value, rows));
    }

    /// <summary>As <see cref="SetIndex(long, long, long, string)"/> with a message of the caller's (an index into something other than a table).</summary>
    public static int SetIndex(long position, long value, string message)
    {
        t_hasIndex = true;
        t_position = position;
        t_value = value;
        return Write(EmbStatus.IndexOutOfRange, message);
    }

    /// <summary>The position and value of the bad index when this thread's latest failure was one.</summary>
    public static bool TryGetIndex(out long position, out long value)
    {
        position = t_position;
        value = t_value;
        return t_hasIndex;
    }

    private static int Write(EmbStatus status, string message)
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
