using System;
using System.IO;
using System.Linq;
using System.Runtime.InteropServices;
using Xunit;

namespace Embedding.Native.Tests;

/// <summary>
/// Tables past 2^31 elements: a sparse file (its length set, a few rows written, no disk or memory spent
/// on the rest) is mapped and serves lookups and bags through <see cref="EmbeddingTable"/>, on rows on
/// both sides of element 2^31 and at the very end.
/// </summary>
public sealed class TableFileLargeTests : IDisposable
{
    private const long TwoTo31 = 1L << 31;

    private readonly TemporaryDirectory _directory = new();

    public void Dispose() => _directory.Dispose();

    /// <summary>A value no other (row, column) has; rows that were never written read as 0.</summary>
    private static float Value(long row, int column) => (row % 1000) + 1 + column * 0.25f;

    [Theory]
    [InlineData("npy", TwoTo31 + 5, 1)]
    [InlineData("safetensors", (TwoTo31 / 2) + 3, 2)]
    public void SparseTable_PastTwoTo31Elements_ServesLookupsAndBags(string format, long rows, int dim) =>
        ServesLookupsAndBags(format, rows, dim);

    /// <summary>More bytes than the machine has memory (a quarter more), so the mapping cannot be resident.</summary>
    [Fact]
    public void SparseTable_LargerThanMemory_ServesLookupsAndBags()
    {
        long memory = GC.GetGCMemoryInfo().TotalAvailableMemoryBytes;
        long rows = Math.Max(TwoTo31 + 5, memory / 4 * 5 / 4);
        Assert.True(rows * sizeof(float) > memory);
        ServesLookupsAndBags("npy", rows, 1);
    }

    private void ServesLookupsAndBags(string format, long rows, int dim)
    {
        long boundary = TwoTo31 / dim; // the first row whose elements lie at or past element 2^31
        long[] written = [0, boundary - 1, boundary, rows - 1];
        string path = SparseTable(format, rows, dim, written);
        using EmbeddingTable table = EmbeddingTable.Open(path);
        Assert.Equal((rows, (long)dim), (table.Rows, table.Columns));
        Assert.True(table.ElementCount > int.MaxValue);
        Assert.Throws<NotSupportedException>(() => table.AsReadOnlySpan<float>());

        ReadOnlySpan<float> around = table.GetRows<float>(boundary - 1, 2);
        Assert.Equal(Row(boundary - 1, dim).Concat(Row(boundary, dim)), around.ToArray());
        Assert.Equal(Row(rows - 1, dim), table.GetRows<float>(rows - 1, 1).ToArray());

        long[] indices = [rows - 1, boundary, 12345, boundary - 1, 0, rows - 1];
        float[] looked = new float[indices.Length * dim];
        table.Embedding<long, float>(indices, looked);
        float[] expected = indices.SelectMany(row => written.Contains(row) ? Row(row, dim) : new float[dim]).ToArray();
        TestAssert.BitEqual(expected, looked, "gather across element 2^31");

        // Bags [rows-1, boundary, 12345] and [boundary-1, 0, rows-1]: the sums, means and maxima of those rows.
        long[] offsets = [0, 3];
        foreach (EmbeddingBagMode mode in Enum.GetValues<EmbeddingBagMode>())
        {
            float[] bags = new float[2 * dim];
            table.EmbeddingBag<long, long, float>(indices, offsets, mode, bags);
            float[] reference = new float[2 * dim];
            for (int bag = 0; bag < 2; bag++)
            {
                for (int column = 0; column < dim; column++)
                {
                    float[] column3 = Enumerable.Range(3 * bag, 3).Select(i => expected[i * dim + column]).ToArray();
                    float sum = 0;
                    foreach (float value in column3)
                    {
                        sum += value;
                    }

                    reference[bag * dim + column] = mode switch
                    {
                        EmbeddingBagMode.Sum => sum,
                        EmbeddingBagMode.Mean => sum / 3,
                        _ => column3.Max(),
                    };
                }
            }

            TestAssert.BitEqual(reference, bags, $"bag {mode} across element 2^31");
        }

        var error = Assert.Throws<ArgumentOutOfRangeException>(() => table.Embedding<long, float>([rows], new float[dim]));
        Assert.Contains($"num_embeddings = {rows}", error.Message);
    }

    [Fact]
    public void SparseTable_WritableRowsPastTwoTo31ReachTheFile()
    {
        long rows = TwoTo31 + 5;
        string path = SparseTable("npy", rows, 1, []);
        using (EmbeddingTable table = EmbeddingTable.Open(path, writable: true))
        {
            table.GetWritableRows<float>(rows - 2, 2).Fill(7.5f);
            table.Flush();
        }

        using var file = new FileStream(path, FileMode.Open, FileAccess.Read);
        file.Seek(-8, SeekOrigin.End);
        byte[] tail = new byte[8];
        file.ReadExactly(tail);
        Assert.Equal([7.5f, 7.5f], MemoryMarshal.Cast<byte, float>(tail).ToArray());
    }

    [Fact]
    public void SparsePackedTable_PastTwoTo31Bytes_ServesQuantizedLookupsAndBags()
    {
        // 8-bit rows of dimension 8 are 16 bytes: 2^27 + 3 rows are 2^31 + 48 bytes.
        const int Dim = 8;
        var layout = new QuantizedRowLayout(QuantizedBits.Eight, Dim);
        long rows = (TwoTo31 / layout.RowBytes) + 3, boundary = TwoTo31 / layout.RowBytes;
        // The rows in memory: [0] all zero bytes (as every unwritten row of the file), [1..3] packed values.
        byte[] small = new byte[4 * layout.RowBytes];
        EmbeddingPrimitives.Quantize(TestData.Table(3, Dim, seed: 8), Dim, QuantizedBits.Eight, small.AsSpan((int)layout.RowBytes));
        long[] fileRows = [boundary - 1, boundary, rows - 1];

        byte[] header = TableFiles.Npy(TableElementType.UInt8, rows, layout.RowBytes, []);
        string path = _directory.Write("packed.npy", header);
        using (var file = new FileStream(path, FileMode.Open, FileAccess.Write))
        {
            file.SetLength(header.Length + rows * layout.RowBytes);
            for (int k = 0; k < 3; k++)
            {
                file.Seek(header.Length + fileRows[k] * layout.RowBytes, SeekOrigin.Begin);
                file.Write(small.AsSpan((int)((k + 1) * layout.RowBytes), (int)layout.RowBytes));
            }
        }

        using EmbeddingTable table = EmbeddingTable.Open(path);
        Assert.True(table.ElementCount > int.MaxValue);
        long[] indices = [rows - 1, boundary, 12345, boundary - 1, rows - 1];
        long[] sameInMemory = [3, 2, 0, 1, 3];
        float[] expected = new float[indices.Length * Dim], actual = new float[indices.Length * Dim];
        EmbeddingPrimitives.QuantizedEmbedding<long>(sameInMemory, small, layout, expected);
        table.QuantizedEmbedding<long>(indices, layout, actual);
        TestAssert.BitEqual(expected, actual, "quantized lookup across byte 2^31");

        long[] offsets = [0, 2];
        float[] bagExpected = new float[2 * Dim], bagActual = new float[2 * Dim];
        EmbeddingPrimitives.QuantizedEmbeddingBag<long, long>(sameInMemory, offsets, small, layout, EmbeddingBagMode.Mean, bagExpected);
        table.QuantizedEmbeddingBag<long, long>(indices, offsets, layout, EmbeddingBagMode.Mean, bagActual);
        TestAssert.BitEqual(bagExpected, bagActual, "quantized mean bag across byte 2^31");
        Assert.Throws<ArgumentOutOfRangeException>(() => table.QuantizedEmbedding<long>([rows], layout, new float[Dim]));
    }

    private static float[] Row(long row, int dim) => Enumerable.Range(0, dim).Select(column => Value(row, column)).ToArray();

    /// <summary>A float32 table file of <paramref name="rows"/> × <paramref name="dim"/>: the header, the length set (a hole), then <paramref name="written"/> rows filled in.</summary>
    private string SparseTable(string format, long rows, int dim, long[] written)
    {
        byte[] header = format == "npy"
            ? TableFiles.Npy(TableElementType.Float32, rows, dim, [])
            : TableFiles.Safetensors(TableElementType.Float32, rows, dim, []);
        string path = _directory.Write($"huge.{format}", header);
        using var file = new FileStream(path, FileMode.Open, FileAccess.Write);
        file.SetLength(header.Length + rows * dim * sizeof(float));
        foreach (long row in written)
        {
            file.Seek(header.Length + row * dim * sizeof(float), SeekOrigin.Begin);
            file.Write(MemoryMarshal.AsBytes(Row(row, dim).AsSpan()));
        }

        return path;
    }
}
