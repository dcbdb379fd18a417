using System;
using System.IO;
using System.Linq;
using System.Runtime.InteropServices;
using System.Text;
using Embedding.Native.Interop;
using Xunit;

namespace Embedding.Native.Tests;

/// <summary>The table-file exports, called through their C function pointers: a file opens and serves <c>emb_embedding</c>; every failure is a status and a message, never a crash.</summary>
public sealed unsafe class TableExportTests : IDisposable
{
    private static readonly delegate* unmanaged<byte*, int, byte*, void**, int> Open = &NativeExports.TableOpen;
    private static readonly delegate* unmanaged<void*, EmbTableInfo*, int> Info = &NativeExports.TableGetInfo;
    private static readonly delegate* unmanaged<void*, int> Flush = &NativeExports.TableFlush;
    private static readonly delegate* unmanaged<void*, int> Close = &NativeExports.TableClose;
    private static readonly delegate* unmanaged<void*, int, long, long, void*, int, long, void*, long, int> Gather = &NativeExports.Embedding;

    private readonly TemporaryDirectory _directory = new();

    public void Dispose() => _directory.Dispose();

    [Fact]
    public void Exports_AreDeclaredInTheHeader() =>
        HeaderDeclarations.AssertExportedAndDeclared("emb_table_open", "emb_table_get_info", "emb_table_flush", "emb_table_close");

    [Fact]
    public void InfoStruct_HasTheHeadersLayout()
    {
        // typedef struct emb_table_info { void* data; int64_t num_embeddings; int64_t embedding_dim;
        //     int32_t dtype; int32_t writable; int64_t data_offset; } (64-bit targets)
        Assert.Equal(40, Marshal.SizeOf<EmbTableInfo>());
        Assert.Equal(
            [0, 8, 16, 24, 28, 32],
            new[] { nameof(EmbTableInfo.Data), nameof(EmbTableInfo.NumEmbeddings), nameof(EmbTableInfo.EmbeddingDim), nameof(EmbTableInfo.Dtype), nameof(EmbTableInfo.Writable), nameof(EmbTableInfo.DataOffset) }
                .Select(field => (int)Marshal.OffsetOf<EmbTableInfo>(field)));
        Assert.Contains("EMB_DTYPE_UINT8 = 7", HeaderDeclarations.Text());
        Assert.Contains("EMB_ERROR_INVALID_FILE = 8", HeaderDeclarations.Text());
        Assert.Contains("EMB_ERROR_IO = 9", HeaderDeclarations.Text());
    }

    [Theory]
    [InlineData("npy")]
    [InlineData("safetensors")]
    public void OpenedTable_ServesTheGather(string format)
    {
        float[] weight = TestData.Table(6, 4, seed: 9);
        byte[] data = MemoryMarshal.AsBytes(weight.AsSpan()).ToArray();
        string path = _directory.Write($"t.{format}", format == "npy" ? TableFiles.Npy(TableElementType.Float32, 6, 4, data) : TableFiles.Safetensors(TableElementType.Float32, 6, 4, data));
        void* table = null;
        Assert.Equal(0, OpenFile(path, 0, null, &table));
        EmbTableInfo info;
        Assert.Equal(0, Info(table, &info));
        Assert.Equal((6L, 4L, 1, 0, new FileInfo(path).Length - data.Length), (info.NumEmbeddings, info.EmbeddingDim, info.Dtype, info.Writable, info.DataOffset));
        long[] indices = [5, 0, 3];
        float[] output = new float[12], expected = new float[12];
        EmbeddingPrimitives.Embedding(indices, weight, 4, expected);
        fixed (long* i = indices)
        fixed (float* o = output)
        {
            Assert.Equal(0, Gather(info.Data, info.Dtype, info.NumEmbeddings, info.EmbeddingDim, i, 6, 3, o, 12));
        }

        TestAssert.BitEqual(expected, output, "emb_embedding on the mapped table");
        Assert.Equal(0, Flush(table));
        Assert.Equal(0, Close(table));
    }

    [Fact]
    public void WritableTable_FlushReachesTheFile()
    {
        string path = _directory.Write("w.npy", TableFiles.Npy(TableElementType.Float32, 2, 2, new byte[16]));
        void* table = null;
        Assert.Equal(0, OpenFile(path, 1, null, &table));
        EmbTableInfo info;
        Assert.Equal(0, Info(table, &info));
        Assert.Equal(1, info.Writable);
        ((float*)info.Data)[3] = 2.5f;
        Assert.Equal(0, Flush(table));
        Assert.Equal(0, Close(table));
        byte[] file = File.ReadAllBytes(path);
        Assert.Equal(2.5f, BitConverter.ToSingle(file, file.Length - 4));
    }

    [Fact]
    public void Open_ReportsEveryFailureAsAStatus()
    {
        string good = _directory.Write("good.npy", TableFiles.GoodNpy());
        string truncated = _directory.Write("bad.npy", TableFiles.GoodNpy()[..^1]);
        string magic = _directory.Write("magic.npy", [.. "\x00NUMPY"u8, .. TableFiles.GoodNpy()[6..]]);
        void* table = (void*)0x1234;
        Assert.Equal((int)EmbStatus.InvalidFile, OpenFile(truncated, 0, null, &table));
        Assert.Contains("bad.npy': the file is truncated", LastError());
        Assert.Equal((int)EmbStatus.InvalidFile, OpenFile(magic, 0, null, &table));
        Assert.Contains("magic string", LastError());
        Assert.Equal((int)EmbStatus.Io, OpenFile(Path.Combine(_directory.Path, "missing.npy"), 0, null, &table));
        Assert.Contains("missing.npy", LastError());
        Assert.Equal((int)EmbStatus.Io, OpenFile(_directory.Path, 0, null, &table)); // a directory
        Assert.Equal((int)EmbStatus.InvalidArgument, OpenFile(good, 2, null, &table));
        Assert.Contains("writable is 2", LastError());
        Assert.Equal((int)EmbStatus.InvalidArgument, OpenFile(good, 0, "weight", &table));
        Assert.Contains(".npy files hold one unnamed table", LastError());
        Assert.Equal((int)EmbStatus.NullPointer, OpenFile(good, 0, null, null));
        Assert.Equal((int)EmbStatus.NullPointer, Open(null, 0, null, &table));
        Assert.Equal("path is NULL", LastError());
        byte[] notUtf8 = [0x2F, 0xFF, 0];
        fixed (byte* p = notUtf8)
        {
            Assert.Equal((int)EmbStatus.InvalidArgument, Open(p, 0, null, &table));
        }

        Assert.True(table == (void*)0x1234, "a failed open leaves the output untouched");
    }

    [Fact]
    public void Handles_AreChecked()
    {
        EmbTableInfo info;
        Assert.Equal((int)EmbStatus.NullPointer, Info(null, &info));
        long notATable = 42;
        Assert.Equal((int)EmbStatus.InvalidArgument, Info(&notATable, &info));
        Assert.Contains("not a table from emb_table_open", LastError());
        Assert.Equal((int)EmbStatus.InvalidArgument, Flush(&notATable));
        Assert.Equal((int)EmbStatus.InvalidArgument, Close(&notATable));
        Assert.Equal(0, Close(null));

        void* table = null;
        Assert.Equal(0, OpenFile(_directory.Write("t.npy", TableFiles.GoodNpy()), 0, null, &table));
        Assert.Equal((int)EmbStatus.NullPointer, Info(table, null));
        Assert.Equal(0, Close(table));
    }

    private static int OpenFile(string path, int writable, string? name, void** table)
    {
        byte[] pathBytes = Encoding.UTF8.GetBytes(path + "\0");
        byte[]? nameBytes = name is null ? null : Encoding.UTF8.GetBytes(name + "\0");
        fixed (byte* p = pathBytes, n = nameBytes)
        {
            return Open(p, writable, n, table);
        }
    }

    private static string LastError()
    {
        delegate* unmanaged<byte*> lastError = &NativeExports.LastErrorMessage;
        return Marshal.PtrToStringUTF8((nint)lastError())!;
    }
}
