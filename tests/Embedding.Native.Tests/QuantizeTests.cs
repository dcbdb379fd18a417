using System;
using System.Buffers.Binary;
using System.Collections.Generic;
using System.Linq;
using Xunit;

namespace Embedding.Native.Tests;

/// <summary>
/// Packing and unpacking of row-wise quantized tables (<see cref="EmbeddingPrimitives.Quantize(ReadOnlySpan{float}, int, QuantizedBits, Span{byte})"/>,
/// <c>QuantizeOptimized</c>, <c>Dequantize</c>): exact bytes for crafted rows as torch 1.13 packs them
/// (ties, constant rows, ±0, huge ranges, subnormals, inf and NaN), the round-trip bound, odd
/// dimensions, float16 tables, thread counts, the searches torch never finishes, and every refusal.
/// The broad comparison with torch over random tables is tests/python/test_quantize_parity.py.
/// </summary>
public sealed class QuantizeTests
{
    private static readonly QuantizedBits[] AllBits = [QuantizedBits.Eight, QuantizedBits.Four, QuantizedBits.Two];

    private static float F(uint bits) => BitConverter.UInt32BitsToSingle(bits);

    /// <summary>
    /// One row each, packed by torch 1.13 (<c>embedding_bag_{byte,4bit,2bit}_prepack</c> of a [1, 4] or
    /// [1, 8] float32 tensor): the row's float32 bits, then torch's packed bytes for 8, 4 and 2 bits.
    /// </summary>
    public static IEnumerable<object[]> TorchRows() =>
        new (string Name, uint[] Row, string Byte, string Four, string Two)[]
        {
            // 0.5, 1.5, 2.5, 3.5, 127.5, 128.5 at inverse 1: ties go to even codes.
            ("ties", [0x00000000, 0x3F000000, 0x3FC00000, 0x40200000, 0x40600000, 0x437F0000, 0x42FF0000, 0x43008000],
                "0000020204FF80800000803F00000000", "0000F088404C0000", "00AC50550000"),
            ("constant", [0x40A00000, 0x40A00000, 0x40A00000, 0x40A00000], "00000000000000000000A040", "0000003C0045", "00003C0045"),
            ("negzero_first", [0x80000000, 0x00000000, 0x00000000, 0x80000000], "000000000000000000000080", "0000003C0080", "00003C0080"),
            ("poszero_first", [0x00000000, 0x80000000, 0x80000000, 0x00000000], "000000000000000000000000", "0000003C0000", "00003C0000"),
            ("huge_range", [0xFF61B1E6, 0x7F61B1E6, 0x00000000, 0x3F800000], "000000000000807FE6B161FF", "0000007C00FC", "00007C00FC"),
            ("subnormal", [0x00000001, 0x00000000, 0x00000002, 0x000116C2], "000000001801000000000000", "0000003C0000", "00003C0000"),
            ("nan_first", [0x7FC00000, 0x3F800000, 0x40000000, 0x40400000], "000000000000C07F0000C07F", "0000007E007E", "00007E007E"),
            ("nan_later", [0x3F800000, 0x7FC00000, 0x40000000, 0x40400000], "000080FF8180003C0000803F", "00F84430003C", "E05539003C"),
            ("pos_inf", [0x3F800000, 0x7F800000, 0x40000000, 0x40400000], "000000000000807F0000803F", "0000007C003C", "00007C003C"),
            ("neg_inf", [0x3F800000, 0x40000000, 0xFF800000, 0x40400000], "000000000000807F000080FF", "0000007C00FC", "00007C00FC"),
            ("half_overflow", [0x477FF000, 0x477FF000, 0x477FF000, 0x477FF000], "000000000000000000F07F47", "000000FC007C", "0000FC007C"),
            ("half_rounding_up", [0x447A1333, 0x447A1333, 0x447A199A, 0x447A1CCD], "0000AAFF3A3A1A3A33137A44", "FFFFD39AD163", "FF44A4D163"),
            ("mixed", [0xBFA00000, 0x3F400000, 0x40600000, 0xC0000000, 0x3DCCCCCD, 0x3E4CCCCD, 0x3E99999A, 0x40E00000],
                "154E9C003C3E41FF9190103D000000C0", "510943F4CD3800C0", "24D5004200C0"),
        }.Select(c => new object[] { c.Name, c.Row, c.Byte, c.Four, c.Two });

    [Theory]
    [MemberData(nameof(TorchRows))]
    public void Quantize_GivesTorchsBytesForCraftedRows(string name, uint[] row, string eight, string four, string two)
    {
        float[] weight = row.Select(F).ToArray();
        foreach ((QuantizedBits bits, string hex) in new[] { (QuantizedBits.Eight, eight), (QuantizedBits.Four, four), (QuantizedBits.Two, two) })
        {
            byte[] packed = new byte[hex.Length / 2];
            EmbeddingPrimitives.Quantize(weight, weight.Length, bits, packed);
            Assert.True(Convert.FromHexString(hex).AsSpan().SequenceEqual(packed), $"{name}, {(int)bits}-bit: torch {hex}, got {Convert.ToHexString(packed)}");
        }
    }

    /// <summary>A weight of three random rows and torch 1.13's optimized 4- and 2-bit packing of it for three (nbins, ratio) pairs.</summary>
    public static IEnumerable<object[]> TorchOptimizedRows()
    {
        yield return [QuantizedBits.Four, 200, 0.16, new[] { "0B7F7BA60737E9C2", "8FE9045CEA34EBC1", "6048A29F0336AEC3" }];
        yield return [QuantizedBits.Four, 50, 0.5, new[] { "0B8F7BA623371EC3", "8FE9045CE434DFC1", "6048A29F0336AEC3" }];
        yield return [QuantizedBits.Four, 7, 0.9, new[] { "0B8F8BA6493764C3", "8FE9045CFD340FC2", "6048A29F0336AEC3" }];
        yield return [QuantizedBits.Two, 200, 0.16, new[] { "7296E03F8CC1", "EB71AD3D0FC2", "64B8933E1EC3" }];
        yield return [QuantizedBits.Two, 50, 0.5, new[] { "7296D43F7AC1", "EB719D3D0FC2", "64B8763E01C3" }];
        yield return [QuantizedBits.Two, 7, 0.9, new[] { "7296CD3F70C1", "EB71593D0FC2", "14B8713E12C2" }];
    }

    private static readonly float[] OptimizedWeight = new uint[]
    {
        0x3FBF33E5, 0xC06C7524, 0x404884AC, 0xBE457E39, 0x3FAE2D48, 0xBE8BD80C, 0xBF421935, 0x3F6D1CC6,
        0x3FD31352, 0xBECF63FE, 0xBE9C73FB, 0x3FAF89F2, 0xBFDECEA5, 0xC041D752, 0x3F4A3B10, 0xBFABAA34,
        0xC075CDB8, 0xBFD065D2, 0xBF6F68F2, 0xC018BADC, 0xC03F090E, 0x3D96118C, 0x3FE5B221, 0xBEEEBA2D,
    }.Select(F).ToArray();

    [Theory]
    [MemberData(nameof(TorchOptimizedRows))]
    public void QuantizeOptimized_GivesTorchsBytes(QuantizedBits bits, int numBins, double ratio, string[] rows)
    {
        string expected = string.Concat(rows);
        byte[] packed = new byte[expected.Length / 2];
        EmbeddingPrimitives.QuantizeOptimized(OptimizedWeight, 8, bits, packed, numBins, ratio);
        Assert.Equal(expected, Convert.ToHexString(packed));

        // The float16 overload widens exactly: the same bytes as the float32 table of the rounded values.
        Half[] half = OptimizedWeight.Select(x => (Half)x).ToArray();
        byte[] fromHalf = new byte[packed.Length], fromWidened = new byte[packed.Length];
        EmbeddingPrimitives.QuantizeOptimized(half, 8, bits, fromHalf, numBins, ratio);
        EmbeddingPrimitives.QuantizeOptimized(half.Select(x => (float)x).ToArray(), 8, bits, fromWidened, numBins, ratio);
        Assert.Equal(fromWidened, fromHalf);
    }

    [Fact]
    public void QuantizeOptimized_WithRatioZeroSearchesNothing()
    {
        // minBins = numBins, so the loop test lo + range < hi fails at once: plain min and max.
        float[] weight = TestData.Table(50, 37, seed: 5);
        foreach (QuantizedBits bits in new[] { QuantizedBits.Four, QuantizedBits.Two })
        {
            long bytes = 50 * new QuantizedRowLayout(bits, 37).RowBytes;
            byte[] plain = new byte[bytes], optimized = new byte[bytes];
            EmbeddingPrimitives.Quantize(weight, 37, bits, plain);
            EmbeddingPrimitives.QuantizeOptimized(weight, 37, bits, optimized, 200, 0.0);
            Assert.Equal(plain, optimized);
        }
    }

    [Theory]
    [InlineData(new uint[] { 0x00000001, 0x00000000, 0x00000002, 0x00000003 })]   // subnormals: the step underflows to 0
    [InlineData(new uint[] { 0x4CBEBC20, 0x4CBEBC24, 0x4CBEBC20, 0x4CBEBC20 })]   // 1e8 and 1e8 + 32: a step below half an ulp
    [InlineData(new uint[] { 0x4CBEBC20, 0x4CBEBC28, 0x4CBEBC20, 0x4CBEBC20 })]   // 1e8 and 1e8 + 64
    public void QuantizeOptimized_StopsWhereTorchLoopsForever(uint[] row)
    {
        // torch 1.13 never returns for these rows: the chosen move leaves the bound as it was, so every
        // iteration repeats the last. The search stops at that fixed point; no local minimum was passed,
        // so the range is the row's own.
        float[] weight = row.Select(F).ToArray();
        foreach (QuantizedBits bits in new[] { QuantizedBits.Four, QuantizedBits.Two })
        {
            long bytes = new QuantizedRowLayout(bits, 4).RowBytes;
            byte[] plain = new byte[bytes], optimized = new byte[bytes];
            EmbeddingPrimitives.Quantize(weight, 4, bits, plain);
            EmbeddingPrimitives.QuantizeOptimized(weight, 4, bits, optimized);
            Assert.Equal(plain, optimized);
        }
    }

    [Fact]
    public void Quantize_WritesExactlyTheRowsAndLeavesTheRestOfTheBuffer()
    {
        foreach (QuantizedBits bits in AllBits)
        {
            foreach (int dim in TestData.Dims)
            {
                const int Rows = 3;
                long rowBytes = new QuantizedRowLayout(bits, dim).RowBytes;
                float[] weight = TestData.Table(Rows, dim, seed: dim);
                byte[] packed = new byte[(Rows * rowBytes) + 9];
                packed.AsSpan().Fill(0xA5);
                EmbeddingPrimitives.Quantize(weight, dim, bits, packed);
                Assert.True(packed.AsSpan((int)(Rows * rowBytes)).ToArray().All(b => b == 0xA5), $"{(int)bits}-bit, dim {dim}: wrote past its rows");

                byte[] exact = new byte[Rows * rowBytes];
                EmbeddingPrimitives.Quantize(weight, dim, bits, exact);
                Assert.True(exact.AsSpan().SequenceEqual(packed.AsSpan(0, exact.Length)), $"{(int)bits}-bit, dim {dim}: a longer buffer changed the rows");
            }
        }
    }

    [Fact]
    public void Quantize_OddDimensionsPackLikeTorchsPaddedRowWithZeroPadding()
    {
        // A row padded with copies of its first element has the same min and max, so torch's packing of
        // the padded row (a dimension it accepts) is ours except for the padding codes, which are 0 here.
        foreach (QuantizedBits bits in new[] { QuantizedBits.Four, QuantizedBits.Two })
        {
            int perByte = 8 / (int)bits;
            foreach (int dim in TestData.Dims.Where(d => d % perByte != 0))
            {
                int padded = (dim + perByte - 1) / perByte * perByte;
                float[] row = RandomTable(1, dim, seed: 100 + dim);
                float[] wide = row.Concat(Enumerable.Repeat(row[0], padded - dim)).ToArray();
                var layout = new QuantizedRowLayout(bits, dim);
                Assert.Equal(new QuantizedRowLayout(bits, padded).RowBytes, layout.RowBytes);

                byte[] ours = new byte[layout.RowBytes], theirs = new byte[layout.RowBytes];
                EmbeddingPrimitives.Quantize(row, dim, bits, ours);
                EmbeddingPrimitives.Quantize(wide, padded, bits, theirs);
                int usedBits = (dim % perByte) * (int)bits;
                theirs[layout.CodeBytes - 1] &= (byte)((1 << usedBits) - 1);
                Assert.True(theirs.AsSpan().SequenceEqual(ours), $"{(int)bits}-bit, dim {dim}");
            }
        }
    }

    [Fact]
    public void RoundTrip_IsWithinHalfAStepOfEveryElement()
    {
        foreach (QuantizedBits bits in AllBits)
        {
            foreach (int dim in TestData.Dims)
            {
                const int Rows = 4;
                float[] weight = RandomTable(Rows, dim, seed: 7 * dim);
                var layout = new QuantizedRowLayout(bits, dim);
                byte[] packed = new byte[Rows * layout.RowBytes];
                float[] restored = new float[Rows * dim];
                EmbeddingPrimitives.Quantize(weight, dim, bits, packed);
                EmbeddingPrimitives.Dequantize(packed, dim, bits, restored);
                for (int r = 0; r < Rows; r++)
                {
                    ReadOnlySpan<float> row = weight.AsSpan(r * dim, dim);
                    ReadOnlySpan<byte> packedRow = packed.AsSpan((int)(r * layout.RowBytes), (int)layout.RowBytes);
                    (float scale, float bias) = ScaleBias(packedRow, layout);
                    float min = row.ToArray().Min(), max = row.ToArray().Max();
                    // Half a step, plus (4/2-bit) the float16 rounding of the bias and of the scale,
                    // plus a few float32 roundings of the operands.
                    float magnitude = Math.Max(Math.Abs(min), Math.Abs(max));
                    float bound = (scale / 2) + Math.Abs(bias - min) + ((max - min) / 512) + (8 * (MathF.BitIncrement(magnitude) - magnitude));
                    for (int j = 0; j < dim; j++)
                    {
                        float error = Math.Abs(restored[(r * dim) + j] - row[j]);
                        Assert.True(error <= bound, $"{(int)bits}-bit, dim {dim}, row {r}, column {j}: |{restored[(r * dim) + j]} - {row[j]}| = {error} > {bound}");
                    }
                }
            }
        }
    }

    [Fact]
    public void Quantize_Float16TableEqualsItsExactFloat32Widening()
    {
        foreach (QuantizedBits bits in AllBits)
        {
            foreach (int dim in new[] { 1, 2, 3, 7, 8, 64, 129 })
            {
                Half[] half = RandomTable(6, dim, seed: dim).Select(x => (Half)(x * 100)).ToArray();
                half[0] = Half.NaN;
                half[^1] = Half.NegativeInfinity;
                float[] widened = half.Select(x => (float)x).ToArray();
                long bytes = 6 * new QuantizedRowLayout(bits, dim).RowBytes;
                byte[] fromHalf = new byte[bytes], fromFloat = new byte[bytes];
                EmbeddingPrimitives.Quantize(half, dim, bits, fromHalf);
                EmbeddingPrimitives.Quantize(widened, dim, bits, fromFloat);
                Assert.Equal(fromFloat, fromHalf);
            }
        }
    }

    [Fact]
    public void Dequantize_RoundsTheProductThenTheSum()
    {
        // torch 1.13 unpacks 103 · 0x3F11D996 + 0xC0B367FD as 0x42544D2D; a fused multiply-add gives 0x42544D2E.
        byte[] packed = new byte[9];
        packed[0] = 103;
        BinaryPrimitives.WriteUInt32LittleEndian(packed.AsSpan(1), 0x3F11D996);
        BinaryPrimitives.WriteUInt32LittleEndian(packed.AsSpan(5), 0xC0B367FD);
        float[] output = new float[1];
        EmbeddingPrimitives.Dequantize(packed, 1, QuantizedBits.Eight, output);
        Assert.Equal(0x42544D2Du, BitConverter.SingleToUInt32Bits(output[0]));
    }

    [Theory]
    [InlineData(QuantizedBits.Eight, 0x7FC00001u, 0xFFC00002u, 0x7FC00001u)]   // NaN scale and NaN bias: the product's NaN
    [InlineData(QuantizedBits.Eight, 0x3F800000u, 0xFFC00002u, 0xFFC00002u)]   // NaN bias alone
    [InlineData(QuantizedBits.Eight, 0x7F800000u, 0xFF800000u, 0xFFC00000u)]   // inf · code - inf: the default NaN
    [InlineData(QuantizedBits.Four, 0x7E01u, 0xFE02u, 0x7FC02000u)]             // float16 NaNs widen with their payload
    [InlineData(QuantizedBits.Four, 0x7C00u, 0xFC00u, 0xFFC00000u)]
    [InlineData(QuantizedBits.Two, 0x7E01u, 0xFE02u, 0x7FC02000u)]
    public void Dequantize_GivesTorchsNaNs(QuantizedBits bits, uint scale, uint bias, uint expected)
    {
        // Codes 1, 2, 3, 1 (torch's results, observed with these scale and bias bits).
        var layout = new QuantizedRowLayout(bits, 4);
        byte[] packed = new byte[layout.RowBytes];
        int[] codes = [1, 2, 3, 1];
        for (int j = 0; j < 4; j++)
        {
            packed[j * (int)bits / 8] |= (byte)(codes[j] << (j * (int)bits % 8));
        }

        if (bits == QuantizedBits.Eight)
        {
            BinaryPrimitives.WriteUInt32LittleEndian(packed.AsSpan(layout.CodeBytes), scale);
            BinaryPrimitives.WriteUInt32LittleEndian(packed.AsSpan(layout.CodeBytes + 4), bias);
        }
        else
        {
            BinaryPrimitives.WriteUInt16LittleEndian(packed.AsSpan(layout.CodeBytes), (ushort)scale);
            BinaryPrimitives.WriteUInt16LittleEndian(packed.AsSpan(layout.CodeBytes + 2), (ushort)bias);
        }

        float[] output = new float[4];
        EmbeddingPrimitives.Dequantize(packed, 4, bits, output);
        Assert.All(output, value => Assert.Equal(expected.ToString("X8"), BitConverter.SingleToUInt32Bits(value).ToString("X8")));
    }

    [Fact]
    public void Dequantize_ReadsEveryCodeSlotInTorchsOrder()
    {
        // Scale 1, bias 0: the output is the code itself, column j from bits·(j % perByte) of byte j / perByte.
        foreach (QuantizedBits bits in AllBits)
        {
            foreach (int dim in new[] { 1, 2, 3, 4, 5, 9, 31, 64 })
            {
                var layout = new QuantizedRowLayout(bits, dim);
                int maxCode = (1 << (int)bits) - 1;
                int[] codes = Enumerable.Range(0, dim).Select(j => (j * 7 + 3) % (maxCode + 1)).ToArray();
                byte[] packed = new byte[layout.RowBytes];
                for (int j = 0; j < dim; j++)
                {
                    packed[j / layout.CodesPerByte] |= (byte)(codes[j] << (j % layout.CodesPerByte * (int)bits));
                }

                if (bits == QuantizedBits.Eight)
                {
                    BinaryPrimitives.WriteSingleLittleEndian(packed.AsSpan(dim), 1.0f);
                }
                else
                {
                    BinaryPrimitives.WriteHalfLittleEndian(packed.AsSpan(layout.CodeBytes), (Half)1);
                }

                float[] output = new float[dim];
                EmbeddingPrimitives.Dequantize(packed, dim, bits, output);
                Assert.Equal(codes.Select(c => (float)c), output);
            }
        }
    }

    [Fact]
    public void QuantizeAndDequantize_GiveTheSameBitsForEveryThreadCount()
    {
        const int Rows = 4096, Dim = 64;
        float[] weight = TestData.Table(Rows, Dim, seed: 42);
        Half[] half = weight.Select(x => (Half)x).ToArray();
        foreach (QuantizedBits bits in AllBits)
        {
            long bytes = Rows * new QuantizedRowLayout(bits, Dim).RowBytes;
            byte[] single = new byte[bytes];
            float[] restoredSingle = new float[Rows * Dim];
            EmbeddingPrimitives.Quantize<float>(weight, Dim, bits, single, threads: 1);
            EmbeddingPrimitives.Dequantize(single, Dim, bits, restoredSingle, threads: 1);
            foreach (int threads in new[] { 2, 3, 4 })
            {
                byte[] packed = new byte[bytes];
                float[] restored = new float[Rows * Dim];
                EmbeddingPrimitives.Quantize<float>(weight, Dim, bits, packed, threads);
                Assert.Equal(single, packed);
                EmbeddingPrimitives.Dequantize(single, Dim, bits, restored, threads);
                TestAssert.BitEqual(restoredSingle, restored, $"{(int)bits}-bit dequantize, {threads} threads");
                EmbeddingPrimitives.Quantize<Half>(half, Dim, bits, packed, threads);
                byte[] halfSingle = new byte[bytes];
                EmbeddingPrimitives.Quantize<Half>(half, Dim, bits, halfSingle, threads: 1);
                Assert.Equal(halfSingle, packed);
                if (bits != QuantizedBits.Eight)
                {
                    // The search reads each row about 65 times: 256 rows are enough to split.
                    byte[] optimizedSingle = new byte[bytes / 16], optimized = new byte[bytes / 16];
                    EmbeddingPrimitives.QuantizeOptimized<float>(weight.AsSpan(0, Rows / 16 * Dim), Dim, bits, optimizedSingle, 200, 0.16, threads: 1);
                    EmbeddingPrimitives.QuantizeOptimized<float>(weight.AsSpan(0, Rows / 16 * Dim), Dim, bits, optimized, 200, 0.16, threads);
                    Assert.Equal(optimizedSingle, optimized);
                }
            }
        }
    }

    [Fact]
    public void QuantizeAndDequantize_AllocateNothing()
    {
        float[] weight = TestData.Table(64, 33, seed: 3);
        byte[] packed = new byte[64 * new QuantizedRowLayout(QuantizedBits.Four, 33).RowBytes];
        float[] restored = new float[64 * 33];
        void Run()
        {
            EmbeddingPrimitives.Quantize(weight, 33, QuantizedBits.Four, packed);
            EmbeddingPrimitives.QuantizeOptimized(weight, 33, QuantizedBits.Four, packed);
            EmbeddingPrimitives.Dequantize(packed, 33, QuantizedBits.Four, restored);
        }

        Run();
        Assert.Equal(0, TestAssert.AllocatedBytes(Run));
    }

    [Fact]
    public void Quantize_RefusesBadArgumentsBeforeWriting()
    {
        float[] weight = TestData.Table(3, 4, seed: 1);
        byte[] packed = new byte[64];
        packed.AsSpan().Fill(0xA5);

        Assert.Throws<ArgumentOutOfRangeException>("embeddingDim", () => EmbeddingPrimitives.Quantize(weight, 0, QuantizedBits.Eight, packed));
        Assert.Throws<ArgumentOutOfRangeException>("bits", () => EmbeddingPrimitives.Quantize(weight, 4, (QuantizedBits)3, packed));
        Assert.Throws<ArgumentException>("weight", () => EmbeddingPrimitives.Quantize(weight, 5, QuantizedBits.Eight, packed));
        Assert.Throws<ArgumentException>("packed", () => EmbeddingPrimitives.Quantize(weight, 4, QuantizedBits.Eight, packed.AsSpan(0, 35)));
        Assert.Throws<ArgumentException>("packed", () => EmbeddingPrimitives.Quantize(new Half[8], 4, QuantizedBits.Four, packed.AsSpan(0, 11)));
        Assert.Throws<ArgumentOutOfRangeException>("bits", () => EmbeddingPrimitives.QuantizeOptimized(weight, 4, QuantizedBits.Eight, packed));
        Assert.Throws<ArgumentOutOfRangeException>("numBins", () => EmbeddingPrimitives.QuantizeOptimized(weight, 4, QuantizedBits.Four, packed, numBins: 0));
        Assert.Throws<ArgumentOutOfRangeException>("ratio", () => EmbeddingPrimitives.QuantizeOptimized(weight, 4, QuantizedBits.Four, packed, ratio: 1.5));
        Assert.Throws<ArgumentOutOfRangeException>("ratio", () => EmbeddingPrimitives.QuantizeOptimized(weight, 4, QuantizedBits.Four, packed, ratio: -0.1));
        Assert.Throws<ArgumentOutOfRangeException>("ratio", () => EmbeddingPrimitives.QuantizeOptimized(weight, 4, QuantizedBits.Four, packed, ratio: double.NaN));
        Assert.True(packed.All(b => b == 0xA5));

        // The packed rows may not overlap the weight's bytes.
        byte[] shared = new byte[64];
        Span<float> asFloats = System.Runtime.InteropServices.MemoryMarshal.Cast<byte, float>(shared.AsSpan());
        Assert.Throws<ArgumentException>("packed", () => EmbeddingPrimitives.Quantize(System.Runtime.InteropServices.MemoryMarshal.Cast<byte, float>(shared.AsSpan(0, 32)), 4, QuantizedBits.Eight, shared.AsSpan(16)));
        Assert.Equal(0, asFloats[4]);

        // Empty tables are fine and write nothing.
        EmbeddingPrimitives.Quantize(ReadOnlySpan<float>.Empty, 4, QuantizedBits.Two, Span<byte>.Empty);
        EmbeddingPrimitives.QuantizeOptimized(ReadOnlySpan<float>.Empty, 4, QuantizedBits.Two, Span<byte>.Empty);
    }

    [Fact]
    public void Dequantize_RefusesBadArgumentsBeforeWriting()
    {
        byte[] packed = new byte[24];   // two 8-bit rows of dimension 4
        float[] output = new float[16];
        output.AsSpan().Fill(TestData.Sentinel);

        Assert.Throws<ArgumentOutOfRangeException>("embeddingDim", () => EmbeddingPrimitives.Dequantize(packed, -1, QuantizedBits.Eight, output));
        Assert.Throws<ArgumentOutOfRangeException>("bits", () => EmbeddingPrimitives.Dequantize(packed, 4, (QuantizedBits)1, output));
        Assert.Throws<ArgumentException>("packed", () => EmbeddingPrimitives.Dequantize(packed, 5, QuantizedBits.Eight, output));
        Assert.Throws<ArgumentException>("destination", () => EmbeddingPrimitives.Dequantize(packed, 4, QuantizedBits.Eight, output.AsSpan(0, 7)));
        Assert.True(output.All(x => BitConverter.SingleToUInt32Bits(x) == BitConverter.SingleToUInt32Bits(TestData.Sentinel)));

        byte[] shared = new byte[64];
        Assert.Throws<ArgumentException>("destination", () => EmbeddingPrimitives.Dequantize(
            shared.AsSpan(0, 12), 4, QuantizedBits.Eight, System.Runtime.InteropServices.MemoryMarshal.Cast<byte, float>(shared.AsSpan(8))));

        EmbeddingPrimitives.Dequantize(ReadOnlySpan<byte>.Empty, 4, QuantizedBits.Four, Span<float>.Empty);
    }

    /// <summary>Uniform values in [-scale, scale) for a seed-dependent scale between 2^-6 and 2^6, so minima and maxima fall anywhere in a row.</summary>
    private static float[] RandomTable(int rows, int dim, int seed)
    {
        var random = new Random(seed);
        float scale = MathF.Pow(2, random.Next(-6, 7));
        return Enumerable.Range(0, rows * dim).Select(_ => ((float)random.NextDouble() * 2 - 1) * scale).ToArray();
    }

    /// <summary>A packed row's scale and bias, widened to float.</summary>
    private static (float Scale, float Bias) ScaleBias(ReadOnlySpan<byte> row, QuantizedRowLayout layout) =>
        layout.Bits == QuantizedBits.Eight
            ? (BinaryPrimitives.ReadSingleLittleEndian(row[layout.CodeBytes..]), BinaryPrimitives.ReadSingleLittleEndian(row[(layout.CodeBytes + 4)..]))
            : ((float)BinaryPrimitives.ReadHalfLittleEndian(row[layout.CodeBytes..]), (float)BinaryPrimitives.ReadHalfLittleEndian(row[(layout.CodeBytes + 2)..]));
}
