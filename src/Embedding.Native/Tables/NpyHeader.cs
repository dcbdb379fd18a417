using System;
using System.Buffers.Binary;
using System.Collections.Generic;
using System.Numerics;
using System.Text;
using Microsoft.Win32.SafeHandles;

namespace Embedding.Native;

/// <summary>
/// The .npy header (numpy's NEP 1 format), read and validated as <c>embedding_native.tables.load</c>
/// reads it: <c>\x93NUMPY</c>, a major and minor version byte (1.0, 2.0 or 3.0), the header length
/// (2 bytes little-endian in 1.0, 4 in 2.0 and 3.0), then a Python dict literal
/// <c>{'descr': ..., 'fortran_order': False, 'shape': (rows, columns), }</c> ending in a newline, then
/// the data, which must fill the rest of the file exactly.
/// </summary>
internal static class NpyHeader
{
    /// <summary>The magic string every .npy file starts with.</summary>
    public static ReadOnlySpan<byte> Magic => [0x93, (byte)'N', (byte)'U', (byte)'M', (byte)'P', (byte)'Y'];

    /// <summary>numpy refuses longer headers too: a guard against reading a hostile length.</summary>
    private const int MaxHeaderBytes = 1 << 20;

    /// <summary>The descr strings of the table types; numpy writes <c>|u1</c> for bytes, <c>&lt;u1</c> is the same type.</summary>
    private static readonly Dictionary<string, TableElementType> s_types = new(StringComparer.Ordinal)
    {
        ["<f4"] = TableElementType.Float32,
        ["<f8"] = TableElementType.Float64,
        ["<f2"] = TableElementType.Float16,
        ["|u1"] = TableElementType.UInt8,
        ["<u1"] = TableElementType.UInt8,
    };

    /// <summary>Reads the header of the .npy file open as <paramref name="file"/> (<paramref name="fileSize"/> bytes) and checks that the data fills the rest.</summary>
    /// <exception cref="System.IO.InvalidDataException">The file is not a valid .npy table; the message names <paramref name="path"/> and the problem.</exception>
    public static TableFileLayout Read(SafeFileHandle file, long fileSize, string path)
    {
        Span<byte> prefix = stackalloc byte[Magic.Length + 2 + 4];
        int got = TableFileBytes.ReadAt(file, prefix[..(Magic.Length + 2)], 0);
        if (got < Magic.Length + 2 || !prefix[..Magic.Length].SequenceEqual(Magic))
        {
            throw TableFileLayout.Invalid(path, "not a .npy file (the magic string \\x93NUMPY is missing)");
        }

        int major = prefix[Magic.Length], minor = prefix[Magic.Length + 1];
        if (major is not (1 or 2 or 3) || minor != 0)
        {
            throw TableFileLayout.Invalid(path, $".npy format version {major}.{minor} is not supported (1.0, 2.0 and 3.0 are)");
        }

        int lengthBytes = major == 1 ? 2 : 4;
        Span<byte> length = prefix.Slice(Magic.Length + 2, lengthBytes);
        if (TableFileBytes.ReadAt(file, length, Magic.Length + 2) < lengthBytes)
        {
            throw TableFileLayout.Invalid(path, "the header is truncated");
        }

        long headerLength = major == 1 ? BinaryPrimitives.ReadUInt16LittleEndian(length) : BinaryPrimitives.ReadUInt32LittleEndian(length);
        long dataOffset = Magic.Length + 2 + lengthBytes + headerLength;
        if (headerLength > MaxHeaderBytes)
        {
            throw TableFileLayout.Invalid(path, $"the header length {headerLength} exceeds the {MaxHeaderBytes}-byte limit");
        }

        if (dataOffset > fileSize)
        {
            throw TableFileLayout.Invalid(path, $"the header length {headerLength} runs past the end of the file ({fileSize} bytes)");
        }

        byte[] raw = new byte[headerLength];
        if (TableFileBytes.ReadAt(file, raw, Magic.Length + 2 + lengthBytes) < headerLength)
        {
            throw TableFileLayout.Invalid(path, "the header is truncated");
        }

        string text;
        try
        {
            // 1.0 and 2.0 headers are latin-1 (every byte is a character); 3.0 headers are UTF-8.
            text = major == 3 ? new UTF8Encoding(false, throwOnInvalidBytes: true).GetString(raw) : Encoding.Latin1.GetString(raw);
        }
        catch (DecoderFallbackException)
        {
            throw TableFileLayout.Invalid(path, "the header is not text");
        }

        if (!text.EndsWith('\n'))
        {
            throw TableFileLayout.Invalid(path, "the header does not end with a newline");
        }

        TableFileLayout layout = Fields(ParseDict(text, path), dataOffset, path);
        CheckLength(layout, fileSize, path);
        return layout;
    }

    private static Dictionary<object, object> ParseDict(string text, string path)
    {
        object parsed;
        try
        {
            parsed = PythonLiteral.Parse(text);
        }
        catch (PythonLiteralException failure)
        {
            // Python parses before it evaluates: text that is not a dict display at all is "not a dict literal".
            bool dictDisplay = text.TrimStart().StartsWith('{');
            throw TableFileLayout.Invalid(path, failure.Error == PythonLiteralError.NotALiteral && dictDisplay
                ? "the header holds something other than literals"
                : "the header is not a Python dict literal");
        }

        return parsed as Dictionary<object, object> ?? throw TableFileLayout.Invalid(path, "the header is not a Python dict literal");
    }

    private static TableFileLayout Fields(Dictionary<object, object> fields, long dataOffset, string path)
    {
        if (fields.Count != 3 || !fields.ContainsKey("descr") || !fields.ContainsKey("fortran_order") || !fields.ContainsKey("shape"))
        {
            // Python's message: sorted(map(str, keys)), each shown as a string.
            var keys = new List<string>(fields.Count);
            foreach (object key in fields.Keys)
            {
                keys.Add(key as string ?? PythonLiteral.Repr(key));
            }

            keys.Sort(StringComparer.Ordinal);
            throw TableFileLayout.Invalid(path, $"the header has keys [{string.Join(", ", keys.ConvertAll(PythonLiteral.Repr))}]; expected descr, fortran_order, shape");
        }

        object descr = fields["descr"], fortranOrder = fields["fortran_order"], shape = fields["shape"];
        if (descr is not string name || !s_types.TryGetValue(name, out TableElementType type))
        {
            throw TableFileLayout.Invalid(path, $"element type {PythonLiteral.Repr(descr)} is not supported (tables are '<f2', '<f4', '<f8', '<u1', '|u1')");
        }

        if (fortranOrder is not false)
        {
            throw TableFileLayout.Invalid(path, "the data is in Fortran (column-major) order; tables must be C order");
        }

        // bool is not an int here: Python's check is `type(n) is int`.
        if (shape is not PythonTuple tuple || !tuple.Items.TrueForAll(n => n is BigInteger { Sign: >= 0 }))
        {
            throw TableFileLayout.Invalid(path, $"the shape {PythonLiteral.Repr(shape)} is not a tuple of non-negative integers");
        }

        if (tuple.Items.Count != 2)
        {
            throw TableFileLayout.Invalid(path, $"the shape {PythonLiteral.Repr(shape)} is not 2-D; a table is (num_embeddings, embedding_dim)");
        }

        return TableFileLayout.Create(type, (BigInteger)tuple.Items[0], (BigInteger)tuple.Items[1], dataOffset, path, PythonLiteral.Repr(shape));
    }

    /// <summary>The data must start aligned to its elements and end exactly at the end of the file.</summary>
    private static void CheckLength(TableFileLayout layout, long fileSize, string path)
    {
        int size = TableFileLayout.ElementSize(layout.ElementType);
        if (layout.DataOffset % size != 0)
        {
            throw TableFileLayout.Invalid(path, $"the data starts at byte {layout.DataOffset}, not aligned to its elements");
        }

        long expected = layout.DataOffset + layout.Rows * layout.Columns * size;
        if (fileSize < expected)
        {
            throw TableFileLayout.Invalid(path, $"the file is truncated: shape ({layout.Rows}, {layout.Columns}) needs {expected} bytes, the file has {fileSize}");
        }

        if (fileSize > expected)
        {
            throw TableFileLayout.Invalid(path, $"the file has {fileSize - expected} bytes after the table's data");
        }
    }
}
