using System;
using System.Runtime.InteropServices;

namespace Embedding.Native.Interop;

/// <summary>
/// The <c>emb_table*</c> handles the C ABI gives out: a small block of native memory holding a tag and
/// a GC handle to the <see cref="EmbeddingTable"/>. The tag lets a call refuse a pointer that is not a
/// live handle (a stray pointer, most double closes) with a status rather than by crashing; it cannot
/// catch every misuse of freed memory, which the header forbids.
/// </summary>
internal static unsafe class TableHandles
{
    /// <summary>"emb_tabl" in little-endian ASCII: a live handle.</summary>
    private const ulong LiveTag = 0x6C6261745F626D65;

    /// <summary>Written over the tag when a handle closes, just before its memory is freed.</summary>
    private const ulong ClosedTag = 0x6465736F6C63; // "closed"

    [StructLayout(LayoutKind.Sequential)]
    private struct Handle
    {
        public ulong Tag;
        public nint Table;
    }

    /// <summary>A new handle owning <paramref name="table"/>.</summary>
    public static void* Create(EmbeddingTable table)
    {
        var handle = (Handle*)NativeMemory.Alloc((nuint)sizeof(Handle));
        handle->Table = GCHandle.ToIntPtr(GCHandle.Alloc(table));
        handle->Tag = LiveTag;
        return handle;
    }

    /// <summary>The table behind a live handle.</summary>
    /// <exception cref="EmbException">NULL, or not a live handle.</exception>
    public static EmbeddingTable Get(void* pointer, string name) => (EmbeddingTable)GCHandle.FromIntPtr(Check(pointer, name)->Table).Target!;

    /// <summary>Disposes the table behind a live handle and frees the handle.</summary>
    public static void Close(void* pointer, string name)
    {
        Handle* handle = Check(pointer, name);
        GCHandle owner = GCHandle.FromIntPtr(handle->Table);
        handle->Tag = ClosedTag;
        handle->Table = 0;
        try
        {
            ((EmbeddingTable)owner.Target!).Dispose();
        }
        finally
        {
            owner.Free();
            NativeMemory.Free(handle);
        }
    }

    private static Handle* Check(void* pointer, string name)
    {
        if (pointer == null)
        {
            throw new EmbException(EmbStatus.NullPointer, $"{name} is NULL");
        }

        var handle = (Handle*)pointer;
        if (handle->Tag != LiveTag)
        {
            throw new EmbException(EmbStatus.InvalidArgument, handle->Tag == ClosedTag
                ? $"{name} was closed (emb_table_close); it must not be used again"
                : $"{name} is not a table from emb_table_open");
        }

        return handle;
    }
}
