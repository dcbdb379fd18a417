using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Runtime.InteropServices;
using Xunit;

namespace Embedding.Native.Tests;

/// <summary>
/// <see cref="EmbeddingTable"/>: files written as the Python package writes them open in both formats and
/// every element type with their bytes intact, serve lookups and bags equal to the span API, write back
/// when writable; malformed files are refused (the Python suite's crafted files, written here).
/// </summary>
public sealed class TableFileTests : IDisposable
{
    private readonly TemporaryDirectory _directory = new();

    public void Dispose() => _directory.Dispose();

    public static TheoryData<string, TableElementType> Formats()
    {
        var data = new TheoryData<string, TableElementType>();
        foreach (TableElementType type in Enum.GetValues<TableElementType>())
        {
            if (type != TableElementType.BFloat16)
            {
                data.Add("npy", type);
            }

            data.Add("safetensors", type);
        }

        return data;
    }

    private string Save(string format, TableElementType type, int rows, int columns, byte[] data, string name = "table") =>
        _directory.Write($"{name}.{format}", format == "npy" ? TableFiles.Npy(type, rows, columns, data) : TableFiles.Safetensors(type, rows, columns, data));

    [Theory]
    [MemberData(nameof(Formats))]
    public void Open_ReadsWhatPythonWrites(string format, TableElementType type)
    {
        byte[] data = TableFiles.RandomData(type, 7 * 5, seed: 7);
        string path = Save(format, type, 7, 5, data);
        using EmbeddingTable table = EmbeddingTable.Open(path);
        Assert.Equal((type, 7L, 5L, false, path), (table.ElementType, table.Rows, table.Columns, table.IsWritable, table.Path));
        Assert.Equal(new FileInfo(path).Length - data.Length, table.DataOffset);
        Assert.Equal(0, table.DataOffset % (format == "npy" ? 64 : 8));
        Assert.Equal(data, Bytes(table));
        Assert.Equal(data, Bytes(table, firstRow: 0, rowCount: 7));
        Assert.Equal(data.AsSpan(2 * 5 * TableFiles.Names(type).Size, 3 * 5 * TableFiles.Names(type).Size).ToArray(), Bytes(table, firstRow: 2, rowCount: 3));
        Assert.NotEqual(0, table.DataPointer);
    }

    [Fact]
    public void Open_AcceptsTheOtherSpellingsNumpyAndSafetensorsWrite()
    {
        float[] values = Enumerable.Range(0, 12).Select(i => i * 0.5f).ToArray();
        byte[] data = MemoryMarshal.AsBytes(values.AsSpan()).ToArray();
        // Version 2.0 (a 4-byte header length) and 3.0 (UTF-8), as numpy writes for long headers.
        foreach (byte major in new byte[] { 2, 3 })
        {
            string path = _directory.Write($"v{major}.npy", TableFiles.NpyBytes("{'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }", data, major));
            using EmbeddingTable table = EmbeddingTable.Open(path);
            Assert.Equal(values, table.AsReadOnlySpan<float>().ToArray());
        }

        // numpy's own spelling: no trailing comma, double quotes, "<u1" for bytes.
        string bytesPath = _directory.Write("u1.npy", TableFiles.NpyBytes("{\"descr\": \"<u1\", \"fortran_order\": False, \"shape\": (2, 6)}", data[..12]));
        using (EmbeddingTable bytes = EmbeddingTable.Open(bytesPath))
        {
            Assert.Equal((TableElementType.UInt8, 2L, 6L), (bytes.ElementType, bytes.Rows, bytes.Columns));
        }

        // The safetensors library's spacing, __metadata__ first, several tensors chosen by name, metadata null.
        string json = "{\"__metadata__\": {\"format\": \"pt\"}, " + TableFiles.Entry(offsets: "[0, 24]", name: "a") + ", "
            + TableFiles.Entry(shape: "[2, 3]", offsets: "[24, 48]", name: "b") + "}";
        string several = _directory.Write("two.safetensors", TableFiles.SafetensorsText(json, MemoryMarshal.AsBytes(Enumerable.Range(0, 12).Select(i => (float)i).ToArray().AsSpan())));
        using (EmbeddingTable b = EmbeddingTable.Open(several, name: "b"))
        {
            Assert.Equal([6f, 7, 8, 9, 10, 11], b.AsReadOnlySpan<float>().ToArray());
        }

        using (EmbeddingTable a = EmbeddingTable.Open(several, name: "a"))
        {
            Assert.Equal([0f, 1, 2, 3, 4, 5], a.AsReadOnlySpan<float>().ToArray());
        }

        Assert.Contains("pass name", Assert.Throws<InvalidDataException>(() => EmbeddingTable.Open(several)).Message);
        Assert.Contains("no tensor named 'c' (it has a, b)", Assert.Throws<InvalidDataException>(() => EmbeddingTable.Open(several, name: "c")).Message);
        string nullMetadata = _directory.Write("m.safetensors", TableFiles.SafetensorsText("{\"__metadata__\": null, " + TableFiles.Entry() + "}", new byte[24]));
        using EmbeddingTable withNull = EmbeddingTable.Open(nullMetadata);
        Assert.Equal(2, withNull.Rows);
    }

    [Theory]
    [InlineData("npy")]
    [InlineData("safetensors")]
    public void Open_EmptyTables(string format)
    {
        foreach ((int rows, int columns) in new[] { (0, 4), (4, 0), (0, 0) })
        {
            using EmbeddingTable table = EmbeddingTable.Open(Save(format, TableElementType.Float32, rows, columns, [], $"empty{rows}x{columns}"));
            Assert.Equal((rows, columns, 0L, (nint)0), (table.Rows, table.Columns, table.ElementCount, table.DataPointer));
            Assert.True(table.AsReadOnlySpan<float>().IsEmpty);
        }
    }

    [Fact]
    public void Open_RefusesANameForNpyAndAMissingFile()
    {
        string path = _directory.Write("t.npy", TableFiles.GoodNpy());
        Assert.Contains("name", Assert.Throws<ArgumentException>(() => EmbeddingTable.Open(path, name: "weight")).Message);
        Assert.Throws<FileNotFoundException>(() => EmbeddingTable.Open(Path.Combine(_directory.Path, "missing.npy")));
        Assert.Throws<ArgumentNullException>(() => EmbeddingTable.Open(null!));
    }

    [Theory]
    [InlineData("npy")]
    [InlineData("safetensors")]
    public void Lookups_EqualTheSpanApi(string format)
    {
        const int Rows = 50, Dim = 16;
        float[] weight = TestData.Table(Rows, Dim, seed: 3);
        using EmbeddingTable table = EmbeddingTable.Open(Save(format, TableElementType.Float32, Rows, Dim, MemoryMarshal.AsBytes(weight.AsSpan()).ToArray()));
        long[] indices = [3, 7, 49, 0, 0, 12];
        float[] expected = new float[indices.Length * Dim], actual = new float[indices.Length * Dim];
        EmbeddingPrimitives.Embedding(indices, weight, Dim, expected);
        table.Embedding<long, float>(indices, actual);
        TestAssert.BitEqual(expected, actual, "gather");

        int[] flat = [1, 2, 3, 40, 41];
        long[] offsets = [0, 2];
        foreach (EmbeddingBagMode mode in Enum.GetValues<EmbeddingBagMode>())
        {
            float[] bagExpected = new float[2 * Dim], bagActual = new float[2 * Dim];
            long[] maxExpected = new long[2 * Dim], maxActual = new long[2 * Dim];
            EmbeddingPrimitives.EmbeddingBag<int, long>(flat, offsets, weight, Dim, mode, bagExpected, maxIndices: maxExpected);
            table.EmbeddingBag<int, long, float>(flat, offsets, mode, bagActual, maxIndices: maxActual);
            TestAssert.BitEqual(bagExpected, bagActual, $"bag {mode}");
            Assert.Equal(maxExpected, maxActual);
        }

        float[] psw = [0.5f, -1, 2, 0.25f, 3];
        float[] weightedExpected = new float[2 * Dim], weightedActual = new float[2 * Dim];
        EmbeddingPrimitives.EmbeddingBag<int, long>(flat, offsets, weight, Dim, EmbeddingBagMode.Sum, weightedExpected, perSampleWeights: psw, paddingIndex: 2);
        table.EmbeddingBag<int, long, float>(flat, offsets, EmbeddingBagMode.Sum, weightedActual, perSampleWeights: psw, paddingIndex: 2);
        TestAssert.BitEqual(weightedExpected, weightedActual, "weighted bag with padding");
    }

    [Fact]
    public void Lookups_OfEveryFloatType()
    {
        const int Rows = 20, Dim = 9;
        long[] indices = [0, 19, 5, 5];
        int[] offsets = [0, 1];
        foreach (TableElementType type in new[] { TableElementType.Float64, TableElementType.Float16, TableElementType.BFloat16 })
        {
            byte[] data = TableFiles.RandomData(type, Rows * Dim, seed: 11);
            using EmbeddingTable table = EmbeddingTable.Open(Save("safetensors", type, Rows, Dim, data, $"t{type}"));
            switch (type)
            {
                case TableElementType.Float64:
                    AssertLookups<double>(table, MemoryMarshal.Cast<byte, double>(data).ToArray(), indices, offsets,
                        (i, w, d) => EmbeddingPrimitives.Embedding(i, w, Dim, d), (i, o, w, d) => EmbeddingPrimitives.EmbeddingBag<long, int>(i, o, w, Dim, EmbeddingBagMode.Mean, d));
                    break;
                case TableElementType.Float16:
                    AssertLookups<Half>(table, MemoryMarshal.Cast<byte, Half>(data).ToArray(), indices, offsets,
                        (i, w, d) => EmbeddingPrimitives.Embedding(i, w, Dim, d), (i, o, w, d) => EmbeddingPrimitives.EmbeddingBag<long, int>(i, o, w, Dim, EmbeddingBagMode.Mean, d));
                    break;
                default:
                    BFloat16[] weight = MemoryMarshal.Cast<byte, BFloat16>(data).ToArray();
                    var expected = new BFloat16[indices.Length * Dim];
                    var actual = new BFloat16[indices.Length * Dim];
                    EmbeddingPrimitives.Embedding(indices, weight, Dim, expected);
                    table.Embedding<long, BFloat16>(indices, actual);
                    Assert.Equal(expected, actual);
                    // torch 1.13 has no bfloat16 bag on the CPU; the table refuses it as the span API does.
                    Assert.Throws<NotSupportedException>(() => table.EmbeddingBag<long, int, BFloat16>(indices, offsets, EmbeddingBagMode.Sum, new BFloat16[2 * Dim]));
                    break;
            }
        }
    }

    private delegate void Gather<T>(ReadOnlySpan<long> indices, ReadOnlySpan<T> weight, Span<T> destination);

    private delegate void Bag<T>(ReadOnlySpan<long> indices, ReadOnlySpan<int> offsets, ReadOnlySpan<T> weight, Span<T> destination);

    private static void AssertLookups<T>(EmbeddingTable table, T[] weight, long[] indices, int[] offsets, Gather<T> gather, Bag<T> bag)
        where T : unmanaged
    {
        int dim = (int)table.Columns;
        T[] expected = new T[indices.Length * dim], actual = new T[indices.Length * dim];
        gather(indices, weight, expected);
        table.Embedding<long, T>(indices, actual);
        Assert.Equal(expected, actual);
        T[] bagExpected = new T[offsets.Length * dim], bagActual = new T[offsets.Length * dim];
        bag(indices, offsets, weight, bagExpected);
        table.EmbeddingBag<long, int, T>(indices, offsets, EmbeddingBagMode.Mean, bagActual);
        Assert.Equal(bagExpected, bagActual);
    }

    [Fact]
    public void Lookups_RefuseWhatTheSpanApiRefuses()
    {
        using EmbeddingTable table = EmbeddingTable.Open(Save("npy", TableElementType.Float32, 4, 3, new byte[48]));
        var error = Assert.Throws<ArgumentOutOfRangeException>(() => table.Embedding<long, float>([1, 4], new float[6]));
        Assert.Contains("index 4 at position 1 is out of range", error.Message);
        Assert.Throws<ArgumentOutOfRangeException>(() => table.EmbeddingBag<long, long, float>([1, -1], [0], EmbeddingBagMode.Sum, new float[3]));
        Assert.Throws<ArgumentException>(() => table.Embedding<long, float>([1, 2], new float[5]));
        Assert.Throws<ArgumentException>(() => table.Embedding<long, double>([1], new double[3]));
        Assert.Throws<ArgumentException>(() => table.GetRows<Half>(0, 1));
        Assert.Throws<ArgumentOutOfRangeException>(() => table.GetRows<float>(2, 3));
        Assert.Throws<ArgumentOutOfRangeException>(() => table.GetRows<float>(-1, 1));
        Assert.Throws<NotSupportedException>(() => table.Embedding<short, float>([1], new float[3]));

        // The destination must not overlap the mapped table (writable mappings hand out spans of it).
        using EmbeddingTable writable = EmbeddingTable.Open(table.Path, writable: true);
        Assert.Throws<ArgumentException>(() => writable.Embedding<long, float>([0], writable.AsSpan<float>()[6..]));
        Assert.Throws<ArgumentException>(() => writable.EmbeddingBag<long, long, float>([0], [0], EmbeddingBagMode.Sum, writable.AsSpan<float>()[3..]));

        using EmbeddingTable packed = EmbeddingTable.Open(Save("safetensors", TableElementType.UInt8, 3, 12, new byte[36], "packed"));
        Assert.Throws<NotSupportedException>(() => packed.Embedding<long, byte>([0], new byte[12]));
    }

    [Fact]
    public void PackedTable_ServesTheQuantizedBag()
    {
        const int Dim = 8;
        float[] weight = TestData.Table(30, Dim, seed: 5);
        var layout = new QuantizedRowLayout(QuantizedBits.Four, Dim);
        byte[] packed = new byte[30 * layout.RowBytes];
        EmbeddingPrimitives.Quantize(weight, Dim, QuantizedBits.Four, packed);
        using EmbeddingTable table = EmbeddingTable.Open(Save("npy", TableElementType.UInt8, 30, (int)layout.RowBytes, packed, "packed"));
        long[] indices = [1, 2, 29, 0, 7];
        long[] offsets = [0, 3];
        float[] expected = new float[2 * Dim], actual = new float[2 * Dim];
        EmbeddingPrimitives.QuantizedEmbeddingBag<long, long>(indices, offsets, packed, layout, EmbeddingBagMode.Sum, expected);
        EmbeddingPrimitives.QuantizedEmbeddingBag<long, long>(indices, offsets, table.AsReadOnlySpan<byte>(), layout, EmbeddingBagMode.Sum, actual);
        TestAssert.BitEqual(expected, actual, "4-bit bag from the mapped file's span");
        Array.Clear(actual);
        table.QuantizedEmbeddingBag<long, long>(indices, offsets, layout, EmbeddingBagMode.Sum, actual);
        TestAssert.BitEqual(expected, actual, "4-bit bag on the table");

        float[] lookupExpected = new float[indices.Length * Dim], lookupActual = new float[indices.Length * Dim];
        EmbeddingPrimitives.QuantizedEmbedding<long>(indices, packed, layout, lookupExpected);
        table.QuantizedEmbedding<long>(indices, layout, lookupActual);
        TestAssert.BitEqual(lookupExpected, lookupActual, "4-bit lookup on the table");

        Assert.Throws<ArgumentException>(() => table.QuantizedEmbedding<long>(indices, new QuantizedRowLayout(QuantizedBits.Eight, Dim), lookupActual));
        Assert.Throws<ArgumentOutOfRangeException>(() => table.QuantizedEmbedding<long>([30], layout, lookupActual));
        Assert.Throws<NotSupportedException>(() => table.QuantizedEmbeddingBag<long, long>(indices, offsets, layout, EmbeddingBagMode.Max, actual));
        using EmbeddingTable floats = EmbeddingTable.Open(Save("npy", TableElementType.Float32, 2, 8, new byte[64], "floats"));
        Assert.Throws<NotSupportedException>(() => floats.QuantizedEmbedding<long>([0], new QuantizedRowLayout(QuantizedBits.Eight, 8), new float[8]));
    }

    [Theory]
    [InlineData("npy")]
    [InlineData("safetensors")]
    public void WritableTable_PersistsAfterFlush(string format)
    {
        const int Rows = 100, Dim = 16;
        float[] initial = TestData.Table(Rows, Dim, seed: 5);
        string path = Save(format, TableElementType.Float32, Rows, Dim, MemoryMarshal.AsBytes(initial.AsSpan()).ToArray());
        long[] rows = [3, 7, 9, 99];
        float[] gradient = TestData.Table(4, Dim, seed: 6);
        float[] expected = (float[])initial.Clone();
        EmbeddingPrimitives.SgdStep(expected, Dim, rows, gradient, 0.1);

        using (EmbeddingTable table = EmbeddingTable.Open(path, writable: true))
        {
            Assert.True(table.IsWritable);
            EmbeddingPrimitives.SgdStep(table.AsSpan<float>(), Dim, rows, gradient, 0.1);
            table.GetWritableRows<float>(50, 1).Fill(42);
            table.Flush();
        }

        expected.AsSpan(50 * Dim, Dim).Fill(42);
        byte[] file = File.ReadAllBytes(path);
        TestAssert.BitEqual(expected, MemoryMarshal.Cast<byte, float>(file.AsSpan(file.Length - expected.Length * sizeof(float))), "file after flush");

        using EmbeddingTable readOnly = EmbeddingTable.Open(path);
        Assert.Throws<InvalidOperationException>(() => readOnly.AsSpan<float>());
        Assert.Throws<InvalidOperationException>(() => readOnly.GetWritableRows<float>(0, 1));
        readOnly.Flush(); // nothing to write
    }

    [Fact]
    public void Mapping_SeesWritesThroughAnotherHandle()
    {
        string path = Save("npy", TableElementType.Float32, 4, 5, new byte[80]);
        using EmbeddingTable table = EmbeddingTable.Open(path);
        using (var other = new FileStream(path, FileMode.Open, FileAccess.Write, FileShare.ReadWrite))
        {
            other.Seek(table.DataOffset + 2 * 5 * sizeof(float), SeekOrigin.Begin);
            other.Write(MemoryMarshal.AsBytes(new float[] { 42, 42, 42, 42, 42 }.AsSpan()));
        }

        Assert.Equal([42f, 42, 42, 42, 42], table.GetRows<float>(2, 1).ToArray());
    }

    [Fact]
    public void Dispose_UnmapsOnce()
    {
        EmbeddingTable table = EmbeddingTable.Open(Save("npy", TableElementType.Float32, 2, 3, new byte[24]));
        table.Dispose();
        table.Dispose();
        Assert.Throws<ObjectDisposedException>(() => table.DataPointer);
        Assert.Throws<ObjectDisposedException>(() => table.GetRows<float>(0, 1));
        Assert.Throws<ObjectDisposedException>(() => table.Flush());
        Assert.Throws<ObjectDisposedException>(() => table.Embedding<long, float>([0], new float[3]));
        Assert.Equal(2, table.Rows); // the description stays readable
    }

    [Fact]
    public void Mapping_IsAdvisedRandom()
    {
        if (!OperatingSystem.IsLinux())
        {
            return; // /proc/self/smaps is Linux's
        }

        using EmbeddingTable table = EmbeddingTable.Open(Save("npy", TableElementType.Float32, 1024, 64, new byte[1024 * 64 * 4]));
        Assert.Contains(" rr", MappingFlags((ulong)table.DataPointer)); // VM_RAND_READ: POSIX_MADV_RANDOM took
    }

    /// <summary>The VmFlags line of the mapping that contains <paramref name="address"/>.</summary>
    internal static string MappingFlags(ulong address)
    {
        string[] lines = File.ReadAllLines("/proc/self/smaps");
        for (int i = 0; i < lines.Length; i++)
        {
            string[] fields = lines[i].Split(' ', StringSplitOptions.RemoveEmptyEntries);
            if (fields.Length >= 5 && fields[0].Contains('-'))
            {
                string[] range = fields[0].Split('-');
                if (Convert.ToUInt64(range[0], 16) <= address && address < Convert.ToUInt64(range[1], 16))
                {
                    return lines.Skip(i + 1).First(line => line.StartsWith("VmFlags:", StringComparison.Ordinal));
                }
            }
        }

        throw new InvalidOperationException($"no mapping holds 0x{address:X}");
    }

    /// <summary>The table's elements as bytes, through the span of its element type.</summary>
    private static byte[] Bytes(EmbeddingTable table, long firstRow = -1, int rowCount = 0) => table.ElementType switch
    {
        TableElementType.Float32 => AsBytes(firstRow < 0 ? table.AsReadOnlySpan<float>() : table.GetRows<float>(firstRow, rowCount)),
        TableElementType.Float64 => AsBytes(firstRow < 0 ? table.AsReadOnlySpan<double>() : table.GetRows<double>(firstRow, rowCount)),
        TableElementType.Float16 => AsBytes(firstRow < 0 ? table.AsReadOnlySpan<Half>() : table.GetRows<Half>(firstRow, rowCount)),
        TableElementType.BFloat16 => AsBytes(firstRow < 0 ? table.AsReadOnlySpan<BFloat16>() : table.GetRows<BFloat16>(firstRow, rowCount)),
        _ => AsBytes(firstRow < 0 ? table.AsReadOnlySpan<byte>() : table.GetRows<byte>(firstRow, rowCount)),
    };

    private static byte[] AsBytes<T>(ReadOnlySpan<T> values)
        where T : unmanaged => MemoryMarshal.AsBytes(values).ToArray();
}
