using System;
using System.Buffers.Binary;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using Xunit;

namespace Embedding.Native.Tests;

/// <summary>
/// Malformed table files: the crafted files of the Python suite (tests/python/test_table_files.py,
/// BAD_NPY and BAD_SAFETENSORS, rebuilt here byte for byte), plus sizes past 64 bits. Each must be
/// refused with <see cref="InvalidDataException"/> naming the file and the flaw it was built to have.
/// </summary>
public sealed class TableFileValidationTests : IDisposable
{
    private readonly TemporaryDirectory _directory = new();

    public void Dispose() => _directory.Dispose();

    private static byte[] Npy(string header, int dataBytes = 24) => TableFiles.NpyBytes(header, new byte[dataBytes]);

    private static byte[] Json(string json, int dataBytes = 24, bool aligned = true) => TableFiles.SafetensorsText(json, new byte[dataBytes], aligned);

    private static byte[] WithLength(ulong length, string text)
    {
        byte[] bytes = new byte[8 + text.Length];
        BinaryPrimitives.WriteUInt64LittleEndian(bytes, length);
        System.Text.Encoding.ASCII.GetBytes(text).CopyTo(bytes, 8);
        return bytes;
    }

    private static readonly byte[] s_good = TableFiles.GoodNpy();

    /// <summary>Each bad .npy file and what its message must say.</summary>
    private static readonly Dictionary<string, (byte[] File, string Problem)> s_badNpy = new()
    {
        ["empty file"] = ([], "magic"),
        ["bad magic"] = ([0x93, (byte)'N', (byte)'U', (byte)'M', (byte)'P', (byte)'X', .. s_good[6..]], "magic"),
        ["wrong version"] = ([.. s_good[..6], 4, 0, .. s_good[8..]], "version 4.0"),
        ["truncated header"] = (s_good[..40], "runs past the end"),
        ["truncated length"] = (s_good[..9], "header is truncated"),
        ["header length past EOF"] = ([.. s_good[..8], 0x88, 0x13, .. s_good[10..]], "runs past the end"),
        ["truncated data"] = (s_good[..^1], "truncated"),
        ["trailing bytes"] = ([.. s_good, 0], "after"),
        ["function call"] = (Npy("__import__('os').system('false')"), "dict literal"),
        ["call inside dict"] = (Npy("{'descr': str('<f4'), 'fortran_order': False, 'shape': (2, 3), }"), "other than literals"),
        ["not a dict"] = (Npy("[1, 2, 3]"), "dict literal"),
        ["syntax error"] = (Npy("{'descr': '<f4', "), "dict literal"),
        ["missing key"] = (Npy("{'descr': '<f4', 'shape': (2, 3), }"), "expected descr"),
        ["extra key"] = (Npy("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), 'x': 1}"), "expected descr"),
        ["int64 dtype"] = (Npy("{'descr': '<i8', 'fortran_order': False, 'shape': (2, 3), }", 48), "'<i8' is not supported"),
        ["big-endian dtype"] = (Npy("{'descr': '>f4', 'fortran_order': False, 'shape': (2, 3), }"), "'>f4' is not supported"),
        ["structured dtype"] = (Npy("{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (2, 3), }"), "is not supported"),
        ["fortran order"] = (Npy("{'descr': '<f4', 'fortran_order': True, 'shape': (2, 3), }"), "Fortran"),
        ["1-D shape"] = (Npy("{'descr': '<f4', 'fortran_order': False, 'shape': (6,), }"), "not 2-D"),
        ["3-D shape"] = (Npy("{'descr': '<f4', 'fortran_order': False, 'shape': (1, 2, 3), }"), "not 2-D"),
        ["negative shape"] = (Npy("{'descr': '<f4', 'fortran_order': False, 'shape': (-2, 3), }"), "non-negative"),
        ["float shape"] = (Npy("{'descr': '<f4', 'fortran_order': False, 'shape': (2.0, 3), }"), "non-negative"),
        ["bool shape"] = (Npy("{'descr': '<f4', 'fortran_order': False, 'shape': (True, 3), }"), "non-negative"),
        ["list shape"] = (Npy("{'descr': '<f4', 'fortran_order': False, 'shape': [2, 3], }"), "non-negative"),
        ["no newline"] = (s_good.Select(b => b == (byte)'\n' ? (byte)' ' : b).ToArray(), "newline"),
        // Beyond the Python suite: a shape whose byte size overflows 64 bits, a zero fortran_order.
        ["size overflow"] = (Npy("{'descr': '<f4', 'fortran_order': False, 'shape': (4611686018427387904, 4), }"), "too large"),
        ["huge dimension"] = (Npy("{'descr': '<f4', 'fortran_order': False, 'shape': (0, 100000000000000000000), }", 0), "too large"),
        ["fortran order 0"] = (Npy("{'descr': '<f4', 'fortran_order': 0, 'shape': (2, 3), }"), "Fortran"),
        ["version 1.1"] = ([.. s_good[..6], 1, 1, .. s_good[8..]], "version 1.1"),
        // Python's 4300-digit limit on ints, which also keeps a hostile header cheap to refuse.
        ["5000-digit integer"] = (Npy("{'descr': '<f4', 'fortran_order': False, 'shape': (" + new string('7', 5000) + ", 3), }"), "dict literal"),
        ["900000-digit integer"] = (TableFiles.NpyBytes("{'descr': '<f4', 'fortran_order': False, 'shape': (0x" + new string('f', 900_000) + ", 3), }", new byte[24], major: 2), "dict literal"),
    };

    private static readonly string s_entry = "{" + TableFiles.Entry() + "}";

    /// <summary>Each bad .safetensors file and what its message must say.</summary>
    private static readonly Dictionary<string, (byte[] File, string Problem)> s_badSafetensors = new()
    {
        ["shorter than length"] = ([0x10, 0, 0], "shorter"),
        ["header length past EOF"] = (WithLength(1 << 20, "{}"), "runs past the end"),
        ["huge header length"] = (WithLength(1UL << 62, "{}"), "limit"),
        ["truncated header"] = (Json(s_entry)[..30], "runs past the end"),
        ["not json"] = (WithLength(5, "{abc}"), "not valid JSON"),
        ["json array"] = (WithLength(2, "[]"), "not a JSON object"),
        ["duplicate keys"] = (Json("{" + TableFiles.Entry() + ", " + TableFiles.Entry() + "}"), "duplicate key"),
        ["truncated data"] = (Json(s_entry, 23), "truncated"),
        ["trailing bytes"] = (Json(s_entry, 25), "after"),
        ["unknown dtype"] = (Json("{" + TableFiles.Entry(dtype: "\"F33\"") + "}"), "unknown dtype"),
        ["unsupported dtype"] = (Json("{" + TableFiles.Entry(dtype: "\"I32\"") + "}"), "not supported"),
        ["1-D shape"] = (Json("{" + TableFiles.Entry(shape: "[6]") + "}"), "not 2-D"),
        ["3-D shape"] = (Json("{" + TableFiles.Entry(shape: "[1, 2, 3]") + "}"), "not 2-D"),
        ["negative shape"] = (Json("{" + TableFiles.Entry(shape: "[-2, -3]") + "}"), "non-negative"),
        ["offsets reversed"] = (Json("{" + TableFiles.Entry(offsets: "[24, 0]") + "}"), "end before they begin"),
        ["offsets disagree with shape"] = (Json("{" + TableFiles.Entry(offsets: "[0, 20]") + "}", 20), "needs 24 bytes"),
        ["hole before the data"] = (Json("{" + TableFiles.Entry(offsets: "[4, 28]") + "}", 28), "hole"),
        ["misaligned data"] = (Json(s_entry, aligned: false), "not aligned"),
        ["missing field"] = (Json("{\"weight\": {\"dtype\": \"F32\", \"shape\": [2, 3]}}"), "not a {dtype"),
        ["bad metadata"] = (Json("{\"__metadata__\": {\"a\": 1}, " + TableFiles.Entry() + "}"), "__metadata__"),
        ["several tensors without name"] = (Json("{" + TableFiles.Entry(name: "a") + ", " + TableFiles.Entry(offsets: "[24, 48]", name: "b") + "}", 48), "pass name"),
        ["overlapping tensors"] = (Json("{" + TableFiles.Entry(name: "a") + ", " + TableFiles.Entry(shape: "[1, 2]", offsets: "[16, 24]", name: "b") + "}"), "overlaps"),
        // Beyond the Python suite.
        ["duplicate key inside an entry"] = (Json("{\"weight\": {\"dtype\": \"F32\", \"dtype\": \"F32\", \"shape\": [2, 3], \"data_offsets\": [0, 24]}}"), "duplicate key"),
        ["float in shape"] = (Json("{" + TableFiles.Entry(shape: "[2.0, 3]") + "}"), "non-negative"),
        ["bool in shape"] = (Json("{" + TableFiles.Entry(shape: "[true, 3]") + "}"), "non-negative"),
        ["text after the JSON"] = (Json(s_entry + "x"), "not valid JSON"),
        ["no tensors"] = (Json("{}", 0), "holds 0 tensors"),
        ["size overflow"] = (Json("{" + TableFiles.Entry(shape: "[0, 100000000000000000000]", offsets: "[0, 0]") + "}", 0), "too large"),
        ["5000-digit integer"] = (Json("{" + TableFiles.Entry(shape: "[" + new string('7', 5000) + ", 3]") + "}"), "not valid JSON"),
        ["not UTF-8"] = (Json("{\"w?eight\": 1}").Select(b => b == (byte)'?' ? (byte)0xFF : b).ToArray(), "not valid JSON"),
    };

    public static TheoryData<string> BadNpy() => new(s_badNpy.Keys);

    public static TheoryData<string> BadSafetensors() => new(s_badSafetensors.Keys);

    [Theory]
    [MemberData(nameof(BadNpy))]
    public void Open_RefusesBadNpyFiles(string flaw)
    {
        (byte[] file, string problem) = s_badNpy[flaw];
        AssertRefused(_directory.Write("bad.npy", file), problem);
    }

    [Theory]
    [MemberData(nameof(BadSafetensors))]
    public void Open_RefusesBadSafetensorsFiles(string flaw)
    {
        (byte[] file, string problem) = s_badSafetensors[flaw];
        AssertRefused(_directory.Write("bad.safetensors", file), problem);
    }

    [Fact]
    public void BadFiles_DifferFromGoodOnesOnlyInTheFlaw()
    {
        // The crafted files are built by the same helpers as these, which open.
        using (EmbeddingTable npy = EmbeddingTable.Open(_directory.Write("good.npy", s_good)))
        {
            Assert.Equal((2L, 3L), (npy.Rows, npy.Columns));
        }

        using EmbeddingTable safetensors = EmbeddingTable.Open(_directory.Write("good.safetensors",
            Json("{" + TableFiles.Entry() + ", \"__metadata__\": {\"a\": \"b\"}}")));
        Assert.Equal((2L, 3L), (safetensors.Rows, safetensors.Columns));
    }

    [Fact]
    public void Open_ReadsTheNpyMagicWhateverTheFileIsCalled()
    {
        // A .npy file under another name is read as .npy; a file without the magic, named .npy, as a bad .npy file.
        using (EmbeddingTable table = EmbeddingTable.Open(_directory.Write("table.bin", s_good)))
        {
            Assert.Equal(2, table.Rows);
        }

        AssertRefused(_directory.Write("table.NPY", Json(s_entry)), "magic");
    }

    private static void AssertRefused(string path, string problem)
    {
        foreach (bool writable in new[] { false, true })
        {
            var error = Assert.Throws<InvalidDataException>(() => EmbeddingTable.Open(path, writable));
            Assert.StartsWith($"'{path}': ", error.Message);
            Assert.Contains(problem, error.Message);
        }
    }
}
