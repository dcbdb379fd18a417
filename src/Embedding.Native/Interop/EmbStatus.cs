namespace Embedding.Native.Interop;

/// <summary>The C ABI's status codes; values pinned to <c>emb_status</c> in embedding_native.h.</summary>
internal enum EmbStatus
{
    Ok = 0,
    InvalidArgument = 1,
    NullPointer = 2,
    SizeOverflow = 3,
    IndexOutOfRange = 4,
    UnsupportedDtype = 5,
    BufferTooSmall = 6,
    NotSupported = 7,
    InvalidFile = 8,
    Io = 9,
    Internal = 100,
}

/// <summary>Element types; values pinned to <c>emb_dtype</c> in embedding_native.h.</summary>
internal enum EmbDtype
{
    Float32 = 1,
    Float64 = 2,
    Float16 = 3,
    BFloat16 = 4,
    Int32 = 5,
    Int64 = 6,
    UInt8 = 7,
}

/// <summary>A failed C-ABI call: its status and the message for <c>emb_last_error</c>.</summary>
internal sealed class EmbException(EmbStatus status, string message) : System.Exception(message)
{
    public EmbStatus Status { get; } = status;
}
