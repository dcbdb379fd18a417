using System;
using System.IO;
using System.Runtime.InteropServices;
using System.Text;

namespace Embedding.Native.Interop;

/// <summary>C-ABI exports for table files: open (validate and map), describe, flush, close. Shims over <see cref="EmbeddingTable"/>.</summary>
internal static unsafe partial class NativeExports
{
    [UnmanagedCallersOnly(EntryPoint = "emb_table_open")]
    public static int TableOpen(byte* path, int writable, byte* name, void** table)
    {
        try
        {
            string file = Utf8Argument(path, "path") ?? throw new EmbException(EmbStatus.NullPointer, "path is NULL");
            string? tensor = Utf8Argument(name, "name");
            if (table == null)
            {
                throw new EmbException(EmbStatus.NullPointer, "table is NULL");
            }

            if (writable is not (0 or 1))
            {
                throw new EmbException(EmbStatus.InvalidArgument, $"writable is {writable}; it must be 0 or 1");
            }

            EmbeddingTable opened = EmbeddingTable.Open(file, writable == 1, tensor);
            try
            {
                *table = TableHandles.Create(opened);
            }
            catch
            {
                opened.Dispose();
                throw;
            }

            return (int)EmbStatus.Ok;
        }
        catch (Exception exception)
        {
            return FailTable(exception);
        }
    }

    [UnmanagedCallersOnly(EntryPoint = "emb_table_get_info")]
    public static int TableGetInfo(void* table, EmbTableInfo* info)
    {
        try
        {
            EmbeddingTable opened = TableHandles.Get(table, "table");
            if (info == null)
            {
                throw new EmbException(EmbStatus.NullPointer, "info is NULL");
            }

            *info = new EmbTableInfo
            {
                Data = (void*)opened.DataPointer,
                NumEmbeddings = opened.Rows,
                EmbeddingDim = opened.Columns,
                Dtype = (int)opened.ElementType,
                Writable = opened.IsWritable ? 1 : 0,
                DataOffset = opened.DataOffset,
            };
            return (int)EmbStatus.Ok;
        }
        catch (Exception exception)
        {
            return FailTable(exception);
        }
    }

    [UnmanagedCallersOnly(EntryPoint = "emb_table_flush")]
    public static int TableFlush(void* table)
    {
        try
        {
            TableHandles.Get(table, "table").Flush();
            return (int)EmbStatus.Ok;
        }
        catch (Exception exception)
        {
            return FailTable(exception);
        }
    }

    [UnmanagedCallersOnly(EntryPoint = "emb_table_close")]
    public static int TableClose(void* table)
    {
        try
        {
            if (table != null)
            {
                TableHandles.Close(table, "table");
            }

            return (int)EmbStatus.Ok;
        }
        catch (Exception exception)
        {
            return FailTable(exception);
        }
    }

    /// <summary>A NUL-terminated UTF-8 argument as a string (null for NULL), refusing bytes that are not UTF-8.</summary>
    private static string? Utf8Argument(byte* text, string name)
    {
        if (text == null)
        {
            return null;
        }

        try
        {
            return new UTF8Encoding(false, throwOnInvalidBytes: true).GetString(MemoryMarshal.CreateReadOnlySpanFromNullTerminated(text));
        }
        catch (DecoderFallbackException)
        {
            throw new EmbException(EmbStatus.InvalidArgument, $"{name} is not valid UTF-8");
        }
    }

    /// <summary>The table files' failures: a bad file, a file the system cannot give us, or what <see cref="Fail"/> maps.</summary>
    private static int FailTable(Exception exception) => exception switch
    {
        InvalidDataException => LastError.Set(EmbStatus.InvalidFile, exception.Message),
        IOException or UnauthorizedAccessException => LastError.Set(EmbStatus.Io, exception.Message),
        ArgumentException => LastError.Set(EmbStatus.InvalidArgument, exception.Message),
        _ => Fail(exception),
    };
}
