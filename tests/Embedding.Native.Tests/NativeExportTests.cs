using System;
using System.Linq;
using System.Runtime.InteropServices;
using Embedding.Native.Interop;
using Xunit;

namespace Embedding.Native.Tests;

/// <summary>
/// The C-ABI shims called in-process through unmanaged function pointers, so their validation
/// runs under every JIT ISA setting too. The C consumer test repeats this against the NativeAOT builds.
/// </summary>
public sealed unsafe class NativeExportTests
{
    private static readonly delegate* unmanaged<void*, int, long, long, void*, int, long, void*, long, int> Embedding = &NativeExports.Embedding;

    private const int Float32 = (int)EmbDtype.Float32, Int32 = (int)EmbDtype.Int32, Int64 = (int)EmbDtype.Int64;

    [Fact]
    public void Embedding_CopiesRowsAndReturnsOk()
    {
        float[] table = TestData.Table(10, 5, seed: 1);
        long[] indices = [1, 2, 4];
        float[] output = new float[15];
        Assert.Equal(EmbStatus.Ok, Call(table, Float32, 10, 5, indices, Int64, 3, output, 15));
        Assert.Equal(table.AsSpan(5, 10).ToArray(), output[..10]);
        Assert.Equal(table.AsSpan(20, 5).ToArray(), output[10..]);
    }

    [Theory]
    [InlineData((int)EmbDtype.Float64, 8)]
    [InlineData((int)EmbDtype.Float16, 2)]
    [InlineData((int)EmbDtype.BFloat16, 2)]
    public void Embedding_CopiesRowsOfEveryTableType(int dtype, int elementSize)
    {
        // Random bytes: NaN payloads and any other pattern come out as they went in.
        byte[] table = new byte[10 * 5 * elementSize];
        new Random(7).NextBytes(table);
        long[] indices = [9, 0, 9, 3];
        byte[] output = new byte[4 * 5 * elementSize];
        fixed (byte* weight = table)
        fixed (long* index = indices)
        fixed (byte* destination = output)
        {
            Assert.Equal(EmbStatus.Ok, (EmbStatus)Embedding(weight, dtype, 10, 5, index, Int64, 4, destination, 20));
            Assert.Equal(EmbStatus.BufferTooSmall, (EmbStatus)Embedding(weight, dtype, 10, 5, index, Int64, 4, destination, 19));
            Assert.Equal(EmbStatus.InvalidArgument, (EmbStatus)Embedding(weight, dtype, 10, 5, index, Int64, 4, weight + elementSize, 20));
        }

        int row = 5 * elementSize;
        for (int i = 0; i < indices.Length; i++)
        {
            Assert.Equal(table.AsSpan((int)indices[i] * row, row).ToArray(), output.AsSpan(i * row, row).ToArray());
        }
    }

    [Fact]
    public void Embedding_ReportsEachInvalidArgument()
    {
        float[] table = TestData.Table(10, 5, seed: 1);
        int[] indices = [1, 9];
        float[] output = new float[10];

        Assert.Equal(EmbStatus.UnsupportedDtype, Call(table, (int)EmbDtype.Int64, 10, 5, indices, Int32, 2, output, 10));
        Assert.Equal(EmbStatus.UnsupportedDtype, Call(table, 7, 10, 5, indices, Int32, 2, output, 10));
        Assert.Equal(EmbStatus.UnsupportedDtype, Call(table, Float32, 10, 5, indices, Float32, 2, output, 10));
        Assert.Equal(EmbStatus.InvalidArgument, Call(table, Float32, -1, 5, indices, Int32, 2, output, 10));
        Assert.Equal(EmbStatus.InvalidArgument, Call(table, Float32, 10, 5, indices, Int32, -2, output, 10));
        Assert.Equal(EmbStatus.SizeOverflow, Call(table, Float32, 10, 5, indices, Int32, long.MaxValue / 2, output, 10));
        Assert.Equal(EmbStatus.SizeOverflow, Call(table, Float32, 10, (long)int.MaxValue + 1, indices, Int32, 2, output, 10));
        Assert.Equal(EmbStatus.BufferTooSmall, Call(table, Float32, 10, 5, indices, Int32, 2, output, 9));
        Assert.Contains("need 10", LastMessage());

        fixed (float* weight = table)
        fixed (int* index = indices)
        fixed (float* outputPointer = output)
        {
            Assert.Equal(EmbStatus.NullPointer, (EmbStatus)Embedding(null, Float32, 10, 5, index, Int32, 2, outputPointer, 10));
            Assert.Equal(EmbStatus.NullPointer, (EmbStatus)Embedding(weight, Float32, 10, 5, null, Int32, 2, outputPointer, 10));
            Assert.Equal(EmbStatus.NullPointer, (EmbStatus)Embedding(weight, Float32, 10, 5, index, Int32, 2, null, 10));
            Assert.Equal(EmbStatus.InvalidArgument, (EmbStatus)Embedding(weight, Float32, 10, 5, index, Int32, 2, weight + 20, 10));
            Assert.Contains("overlaps weight", LastMessage());
            Assert.Equal(EmbStatus.Ok, (EmbStatus)Embedding(null, Float32, 0, 5, null, Int32, 0, null, 0));
        }
    }

    [Fact]
    public void Embedding_ReportsTheBadIndexAndWritesNothing()
    {
        float[] table = TestData.Table(10, 5, seed: 1);
        float[] output = TestData.Guarded(15, guard: 0);
        Assert.Equal(EmbStatus.IndexOutOfRange, Call(table, Float32, 10, 5, new long[] { 1, 2, -4 }, Int64, 3, output, 15));
        Assert.Equal("index -4 at position 2 is out of range: valid indices are 0 to 9 (num_embeddings = 10)", LastMessage());
        Assert.All(output, value => Assert.True(float.IsNaN(value)));
    }

    [Fact]
    public void PaddingIdxNormalize_FollowsTorch()
    {
        delegate* unmanaged<long, long, long*, int> normalize = &NativeExports.PaddingIdxNormalize;
        long row;
        Assert.Equal(0, normalize(-1, 4, &row));
        Assert.Equal(3, row);
        Assert.Equal((int)EmbStatus.IndexOutOfRange, normalize(4, 4, &row));
        Assert.StartsWith("Padding_idx must be within num_embeddings", LastMessage());
        Assert.Equal((int)EmbStatus.NullPointer, normalize(0, 4, null));
    }

    [Fact]
    public void StatusString_NamesEveryStatus()
    {
        delegate* unmanaged<int, byte*> statusString = &NativeExports.StatusString;
        foreach (EmbStatus status in Enum.GetValues<EmbStatus>())
        {
            string name = Marshal.PtrToStringUTF8((nint)statusString((int)status))!;
            Assert.StartsWith("EMB_", name);
        }

        Assert.Equal("unknown status", Marshal.PtrToStringUTF8((nint)statusString(12345)));
    }

    [Fact]
    public void BuildInfo_IsJsonNamingTheTierAndDims()
    {
        delegate* unmanaged<byte*> buildInfo = &NativeExports.BuildInfo;
        using var json = System.Text.Json.JsonDocument.Parse(Marshal.PtrToStringUTF8((nint)buildInfo())!);
        Assert.Equal(IsaTiers.Name(IsaTiers.Compiled), json.RootElement.GetProperty("tier").GetString());
        Assert.Equal("jit", json.RootElement.GetProperty("runtime").GetString());
        Assert.Contains(768, json.RootElement.GetProperty("specialised_dims").EnumerateArray().Select(e => e.GetInt32()));
        Assert.Equal(TorchCpuCapabilities.Current.ToString().ToLowerInvariant(), json.RootElement.GetProperty("torch_kernels").GetString());
        Assert.Equal(TorchProducts.AreFused, json.RootElement.GetProperty("fused_products").GetBoolean());
        Assert.Equal(TorchProducts.LookupsAreFused, json.RootElement.GetProperty("fused_lookups").GetBoolean());
    }

    private static EmbStatus Call<TIndex>(float[] table, int weightDtype, long rows, long dim, TIndex[] indices, int indexDtype, long count, float[] output, long capacity)
        where TIndex : unmanaged
    {
        fixed (float* weight = table)
        fixed (TIndex* index = indices)
        fixed (float* outputPointer = output)
        {
            return (EmbStatus)Embedding(weight, weightDtype, rows, dim, index, indexDtype, count, outputPointer, capacity);
        }
    }

    private static string LastMessage()
    {
        delegate* unmanaged<byte*> lastError = &NativeExports.LastErrorMessage;
        return Marshal.PtrToStringUTF8((nint)lastError())!;
    }
}
