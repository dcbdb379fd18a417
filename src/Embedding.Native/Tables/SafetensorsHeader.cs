using System;
using System.Buffers.Binary;
using System.Collections.Generic;
using System.Globalization;
using System.Numerics;
using System.Text;
using System.Text.Json;
using Microsoft.Win32.SafeHandles;

namespace Embedding.Native;

/// <summary>
/// The .safetensors header, read and validated as <c>embedding_native.tables.load</c> reads it: 8 bytes
/// little-endian N, then N bytes of JSON mapping each tensor's name to
/// <c>{"dtype", "shape", "data_offsets": [begin, end]}</c> (offsets relative to the byte after the
/// header) plus an optional <c>"__metadata__"</c> of string pairs, then the data buffer, which the
/// tensors must tile exactly: no overlap, no hole, nothing after the last (the safetensors library's
/// own rule). A file may hold several tensors; the table is the one named, or the only one.
/// </summary>
/// <remarks>
/// The JSON is read with <see cref="Utf8JsonReader"/> into plain values (no serializer, no
/// reflection: safe under trimming and NativeAOT). A key repeated in any object is refused, as the
/// Python reader refuses it.
/// </remarks>
internal static class SafetensorsHeader
{
    private const int LengthBytes = sizeof(ulong);

    /// <summary>The safetensors library refuses headers past 100 MB; so do we.</summary>
    private const long MaxHeaderBytes = 100_000_000;

    private const string MetadataKey = "__metadata__";

    /// <summary>The dtypes a table may have.</summary>
    private static readonly Dictionary<string, TableElementType> s_tableTypes = new(StringComparer.Ordinal)
    {
        ["F32"] = TableElementType.Float32,
        ["F64"] = TableElementType.Float64,
        ["F16"] = TableElementType.Float16,
        ["BF16"] = TableElementType.BFloat16,
        ["U8"] = TableElementType.UInt8,
    };

    /// <summary>Element sizes of dtypes that are not tables, so a file holding them beside a table is still checked.</summary>
    private static readonly Dictionary<string, int> s_otherSizes = new(StringComparer.Ordinal)
    {
        ["BOOL"] = 1, ["I8"] = 1, ["F8_E5M2"] = 1, ["F8_E4M3"] = 1, ["I16"] = 2, ["U16"] = 2,
        ["I32"] = 4, ["U32"] = 4, ["I64"] = 8, ["U64"] = 8,
    };

    /// <summary>
    /// Reads the header of the .safetensors file open as <paramref name="file"/> (<paramref name="fileSize"/> bytes)
    /// and returns the layout of tensor <paramref name="name"/> (null: the file's only tensor).
    /// </summary>
    /// <exception cref="System.IO.InvalidDataException">The file is not a valid .safetensors file, or the tensor is missing, ambiguous or not a table; the message names <paramref name="path"/> and the problem.</exception>
    public static TableFileLayout Read(SafeFileHandle file, long fileSize, string? name, string path)
    {
        Span<byte> length = stackalloc byte[LengthBytes];
        if (TableFileBytes.ReadAt(file, length, 0) < LengthBytes)
        {
            throw TableFileLayout.Invalid(path, "not a .safetensors file (shorter than the 8-byte header length)");
        }

        ulong headerLength = BinaryPrimitives.ReadUInt64LittleEndian(length);
        if (headerLength > MaxHeaderBytes)
        {
            throw TableFileLayout.Invalid(path, $"the header length {headerLength} exceeds the {MaxHeaderBytes}-byte limit");
        }

        long bufferStart = LengthBytes + (long)headerLength;
        if (bufferStart > fileSize)
        {
            throw TableFileLayout.Invalid(path, $"the header length {headerLength} runs past the end of the file ({fileSize} bytes)");
        }

        byte[] raw = new byte[headerLength];
        if (TableFileBytes.ReadAt(file, raw, LengthBytes) < raw.Length)
        {
            throw TableFileLayout.Invalid(path, "the header is truncated");
        }

        if (raw.Length == 0 || raw[0] != (byte)'{')
        {
            throw TableFileLayout.Invalid(path, "the header is not a JSON object");
        }

        Dictionary<object, object> fields = ParseJson(raw, path);
        if (fields.Remove(MetadataKey, out object? metadata) && metadata is not PythonNone
            && !(metadata is Dictionary<object, object> pairs && AllStrings(pairs)))
        {
            throw TableFileLayout.Invalid(path, "__metadata__ is not a map of strings");
        }

        var tensors = new List<Tensor>(fields.Count);
        foreach (KeyValuePair<object, object> field in fields)
        {
            tensors.Add(Entry((string)field.Key, field.Value, path));
        }

        CheckBufferLayout(tensors, fileSize - bufferStart, path);
        return Select(tensors, name, bufferStart, path);
    }

    /// <summary>One validated tensor entry: its dtype (a table type or not), shape and data offsets.</summary>
    private sealed record Tensor(string Name, string DType, TableElementType? Type, List<object> Shape, BigInteger Begin, BigInteger End);

    private static TableFileLayout Select(List<Tensor> tensors, string? name, long bufferStart, string path)
    {
        List<string> sorted = tensors.ConvertAll(tensor => tensor.Name);
        sorted.Sort(StringComparer.Ordinal);
        string names = string.Join(", ", sorted);
        if (name is null && tensors.Count != 1)
        {
            throw TableFileLayout.Invalid(path, $"the file holds {tensors.Count} tensors ({names}); pass name to choose one");
        }

        Tensor tensor = tensors.Find(candidate => name is null || candidate.Name == name)
            ?? throw TableFileLayout.Invalid(path, $"the file holds no tensor named {PythonLiteral.Repr(name!)} (it has {(names.Length > 0 ? names : "none")})");
        string quoted = PythonLiteral.Repr(tensor.Name);
        if (tensor.Type is not { } type)
        {
            throw TableFileLayout.Invalid(path, $"tensor {quoted} has dtype {PythonLiteral.Repr(tensor.DType)}, which is not supported (tables are F32, F64, F16, BF16, U8)");
        }

        if (tensor.Shape.Count != 2)
        {
            throw TableFileLayout.Invalid(path, $"tensor {quoted} has shape {PythonLiteral.Repr(tensor.Shape)}, not 2-D; a table is (num_embeddings, embedding_dim)");
        }

        // The buffer layout check put every offset inside the file, so this fits in a long.
        long dataOffset = bufferStart + (long)tensor.Begin;
        int size = TableFileLayout.ElementSize(type);
        if (dataOffset % size != 0)
        {
            throw TableFileLayout.Invalid(path, $"tensor {quoted} starts at byte {dataOffset}, not aligned to its {size}-byte elements");
        }

        return TableFileLayout.Create(type, (BigInteger)tensor.Shape[0], (BigInteger)tensor.Shape[1], dataOffset, path, PythonLiteral.Repr(tensor.Shape));
    }

    private static Tensor Entry(string key, object entry, string path)
    {
        string quoted = PythonLiteral.Repr(key);
        if (entry is not Dictionary<object, object> fields || fields.Count != 3
            || !fields.ContainsKey("dtype") || !fields.ContainsKey("shape") || !fields.ContainsKey("data_offsets"))
        {
            throw TableFileLayout.Invalid(path, $"tensor {quoted} is not a {{dtype, shape, data_offsets}} object");
        }

        object dtype = fields["dtype"], shape = fields["shape"], offsets = fields["data_offsets"];
        TableElementType? type = null;
        int size;
        if (dtype is string text && s_tableTypes.TryGetValue(text, out TableElementType tableType))
        {
            type = tableType;
            size = TableFileLayout.ElementSize(tableType);
        }
        else if (dtype is string other && s_otherSizes.TryGetValue(other, out int otherSize))
        {
            size = otherSize;
        }
        else
        {
            throw TableFileLayout.Invalid(path, $"tensor {quoted} has unknown dtype {PythonLiteral.Repr(dtype)}");
        }

        if (shape is not List<object> dimensions || !dimensions.TrueForAll(IsNonNegativeInteger))
        {
            throw TableFileLayout.Invalid(path, $"tensor {quoted} has shape {PythonLiteral.Repr(shape)}, not a list of non-negative integers");
        }

        if (offsets is not List<object> { Count: 2 } pair || !pair.TrueForAll(IsNonNegativeInteger))
        {
            throw TableFileLayout.Invalid(path, $"tensor {quoted} has data_offsets {PythonLiteral.Repr(offsets)}, not two non-negative integers");
        }

        BigInteger begin = (BigInteger)pair[0], end = (BigInteger)pair[1];
        if (begin > end)
        {
            throw TableFileLayout.Invalid(path, $"tensor {quoted} has data_offsets {PythonLiteral.Repr(offsets)} that end before they begin");
        }

        BigInteger needed = size;
        foreach (object n in dimensions)
        {
            needed *= (BigInteger)n;
        }

        if (end - begin != needed)
        {
            throw TableFileLayout.Invalid(path, $"tensor {quoted} has data_offsets {PythonLiteral.Repr(offsets)} ({end - begin} bytes) but shape {PythonLiteral.Repr(shape)} of {dtype} needs {needed} bytes");
        }

        return new Tensor(key, (string)dtype, type, dimensions, begin, end);
    }

    private static bool IsNonNegativeInteger(object value) => value is BigInteger { Sign: >= 0 };

    private static bool AllStrings(Dictionary<object, object> pairs)
    {
        foreach (object value in pairs.Values)
        {
            if (value is not string)
            {
                return false;
            }
        }

        return true;
    }

    /// <summary>The tensors tile the data buffer exactly: no overlap, no hole, nothing after the last.</summary>
    private static void CheckBufferLayout(List<Tensor> tensors, long bufferBytes, string path)
    {
        BigInteger position = BigInteger.Zero;
        // By (begin, end), as Python sorts; List.Sort is unstable, but tensors that tie on both fail either way.
        var byOffset = new List<Tensor>(tensors);
        byOffset.Sort((a, b) => a.Begin != b.Begin ? a.Begin.CompareTo(b.Begin) : a.End.CompareTo(b.End));
        foreach (Tensor tensor in byOffset)
        {
            if (tensor.Begin != position)
            {
                string problem = tensor.Begin < position ? "overlaps the tensor before it" : $"leaves a hole before byte {tensor.Begin}";
                throw TableFileLayout.Invalid(path, $"tensor {PythonLiteral.Repr(tensor.Name)} at data_offsets [{tensor.Begin}, {tensor.End}] {problem}");
            }

            position = tensor.End;
        }

        if (position < bufferBytes)
        {
            throw TableFileLayout.Invalid(path, $"the file has {bufferBytes - position} bytes after the last tensor's data");
        }

        if (position > bufferBytes)
        {
            throw TableFileLayout.Invalid(path, $"the file is truncated: the data needs {position} bytes, it has {bufferBytes}");
        }
    }

    /// <summary>The header as plain values: objects as dictionaries (in file order), arrays as lists, ints as <see cref="BigInteger"/>.</summary>
    private static Dictionary<object, object> ParseJson(byte[] raw, string path)
    {
        try
        {
            // Python decodes the whole header before parsing: a bad byte anywhere, spaces included, is refused.
            _ = new UTF8Encoding(false, throwOnInvalidBytes: true).GetCharCount(raw);
            var reader = new Utf8JsonReader(raw, new JsonReaderOptions { CommentHandling = JsonCommentHandling.Disallow, MaxDepth = 64 });
            reader.Read();
            object root = Value(ref reader);
            if (reader.Read())
            {
                throw new JsonException("extra data after the JSON object");
            }

            return (Dictionary<object, object>)root;
        }
        catch (Exception failure) when (failure is JsonException or DecoderFallbackException or InvalidOperationException or FormatException)
        {
            throw TableFileLayout.Invalid(path, $"the header is not valid JSON ({failure.Message})");
        }
    }

    private static object Value(ref Utf8JsonReader reader)
    {
        switch (reader.TokenType)
        {
            case JsonTokenType.StartObject:
                var fields = new Dictionary<object, object>();
                while (reader.Read() && reader.TokenType != JsonTokenType.EndObject)
                {
                    string key = reader.GetString()!;
                    reader.Read();
                    if (!fields.TryAdd(key, Value(ref reader)))
                    {
                        throw new JsonException($"duplicate key {PythonLiteral.Repr(key)}");
                    }
                }

                return fields;
            case JsonTokenType.StartArray:
                var items = new List<object>();
                while (reader.Read() && reader.TokenType != JsonTokenType.EndArray)
                {
                    items.Add(Value(ref reader));
                }

                return items;
            case JsonTokenType.String:
                return reader.GetString()!;
            case JsonTokenType.Number:
                // Python's json gives an int for a number without fraction or exponent, a float otherwise.
                string number = Encoding.ASCII.GetString(reader.ValueSpan);
                if (number.Length > PythonLiteral.MaxIntegerDigits + 1)
                {
                    throw new JsonException($"a number of {number.Length} characters (integers may have at most {PythonLiteral.MaxIntegerDigits} digits)");
                }

                return number.AsSpan().IndexOfAny(".eE") >= 0
                    ? double.Parse(number, NumberStyles.Float, CultureInfo.InvariantCulture)
                    : BigInteger.Parse(number, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture);
            case JsonTokenType.True:
                return true;
            case JsonTokenType.False:
                return false;
            case JsonTokenType.Null:
                return PythonNone.Instance;
            default:
                throw new JsonException($"unexpected {reader.TokenType}");
        }
    }
}
