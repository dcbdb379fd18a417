using System.Runtime.InteropServices;

namespace Embedding.Native.Interop;

/// <summary>
/// <c>emb_table_info</c> from embedding_native.h, field for field (40 bytes on 64-bit targets): what
/// <c>emb_table_get_info</c> reports about an open table file.
/// </summary>
[StructLayout(LayoutKind.Sequential)]
internal unsafe struct EmbTableInfo
{
    /// <summary><c>void* data</c>: the first element; NULL when the table has no elements.</summary>
    public void* Data;

    /// <summary><c>int64_t num_embeddings</c>: rows.</summary>
    public long NumEmbeddings;

    /// <summary><c>int64_t embedding_dim</c>: columns (bytes per packed row for EMB_DTYPE_UINT8).</summary>
    public long EmbeddingDim;

    /// <summary><c>int32_t dtype</c>: an <c>emb_dtype</c> value.</summary>
    public int Dtype;

    /// <summary><c>int32_t writable</c>: 1 for a read-write mapping, else 0.</summary>
    public int Writable;

    /// <summary><c>int64_t data_offset</c>: the byte at which the data starts in the file.</summary>
    public long DataOffset;
}
