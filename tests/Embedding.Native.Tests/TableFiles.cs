using System;
using System.Buffers.Binary;
using System.IO;
using System.Linq;
using System.Text;

namespace Embedding.Native.Tests;

/// <summary>
/// Table files built byte for byte as the Python package writes them (<c>_tables/npy.py</c> and
/// <c>_tables/safetensors.py</c>: the same header text, padding and alignment), and the raw builders
/// the bad-file cases use.
/// </summary>
internal static class TableFiles
{
    /// <summary>What each element type is called in each format (null: the format has no name for it).</summary>
    public static (string? NpyDescr, string SafetensorsDtype, int Size) Names(TableElementType type) => type switch
    {
        TableElementType.Float32 => ("<f4", "F32", 4),
        TableElementType.Float64 => ("<f8", "F64", 8),
        TableElementType.Float16 => ("<f2", "F16", 2),
        TableElementType.BFloat16 => (null, "BF16", 2),
        _ => ("|u1", "U8", 1),
    };

    /// <summary>A .npy file as <c>npy.encode_header</c> + the data: version 1.0, the dict padded with spaces so the data starts on a 64-byte boundary.</summary>
    public static byte[] Npy(TableElementType type, long rows, long columns, ReadOnlySpan<byte> data) =>
        NpyBytes($"{{'descr': '{Names(type).NpyDescr}', 'fortran_order': False, 'shape': ({rows}, {columns}), }}", data);

    /// <summary>A .safetensors file as <c>safetensors.encode_header</c> + the data: compact JSON, one tensor, spaces up to an 8-byte boundary.</summary>
    public static byte[] Safetensors(TableElementType type, long rows, long columns, ReadOnlySpan<byte> data, string name = "weight", string? metadataJson = null)
    {
        long bytes = rows * columns * Names(type).Size;
        string metadata = metadataJson is null ? "" : $"\"__metadata__\":{metadataJson},";
        return SafetensorsText($"{{{metadata}\"{name}\":{{\"dtype\":\"{Names(type).SafetensorsDtype}\",\"shape\":[{rows},{columns}],\"data_offsets\":[0,{bytes}]}}}}", data);
    }

    /// <summary>The test suite's <c>_npy_bytes</c>: a version-1.0 (or other) header around <paramref name="headerText"/>, padded to 64 bytes.</summary>
    public static byte[] NpyBytes(string headerText, ReadOnlySpan<byte> data, byte major = 1, byte minor = 0)
    {
        int prefix = major == 1 ? 10 : 12;
        string text = headerText + new string(' ', Mod(-(prefix + headerText.Length + 1), 64)) + "\n";
        byte[] header = Encoding.Latin1.GetBytes(text);
        var file = new MemoryStream();
        file.Write([0x93, (byte)'N', (byte)'U', (byte)'M', (byte)'P', (byte)'Y', major, minor]);
        Span<byte> length = stackalloc byte[4];
        if (major == 1)
        {
            BinaryPrimitives.WriteUInt16LittleEndian(length, (ushort)header.Length);
            file.Write(length[..2]);
        }
        else
        {
            BinaryPrimitives.WriteUInt32LittleEndian(length, (uint)header.Length);
            file.Write(length);
        }

        file.Write(header);
        file.Write(data);
        return file.ToArray();
    }

    /// <summary>A well-formed float32 .npy file of zeros.</summary>
    public static byte[] GoodNpy(int rows = 2, int columns = 3) =>
        NpyBytes($"{{'descr': '<f4', 'fortran_order': False, 'shape': ({rows}, {columns}), }}", new byte[4 * rows * columns]);

    /// <summary>The test suite's <c>_safetensors_text</c>: 8-byte length, the JSON (padded to 8 bytes, or deliberately to a 4-byte misalignment), the data.</summary>
    public static byte[] SafetensorsText(string json, ReadOnlySpan<byte> data, bool aligned = true)
    {
        byte[] text = Encoding.UTF8.GetBytes(json);
        if (aligned)
        {
            text = [.. text, .. Enumerable.Repeat((byte)' ', Mod(-(8 + text.Length), 8))];
        }
        else if ((8 + text.Length) % 4 == 0)
        {
            text = [.. text, (byte)' '];
        }

        byte[] file = new byte[8 + text.Length + data.Length];
        BinaryPrimitives.WriteUInt64LittleEndian(file, (ulong)text.Length);
        text.CopyTo(file, 8);
        data.CopyTo(file.AsSpan(8 + text.Length));
        return file;
    }

    /// <summary>The JSON of one tensor entry named "weight" (a well-formed float32 [2, 3] unless told otherwise).</summary>
    public static string Entry(string dtype = "\"F32\"", string shape = "[2, 3]", string offsets = "[0, 24]", string name = "weight") =>
        $"\"{name}\": {{\"dtype\": {dtype}, \"shape\": {shape}, \"data_offsets\": {offsets}}}";

    /// <summary>Random table bytes for <paramref name="type"/> (finite values for the float types), seed fixed.</summary>
    public static byte[] RandomData(TableElementType type, int elements, int seed)
    {
        var random = new Random(seed);
        int size = Names(type).Size;
        byte[] data = new byte[elements * size];
        for (int i = 0; i < elements; i++)
        {
            float value = (float)(random.NextDouble() * 8 - 4);
            Span<byte> at = data.AsSpan(i * size, size);
            switch (type)
            {
                case TableElementType.Float32: BinaryPrimitives.WriteSingleLittleEndian(at, value); break;
                case TableElementType.Float64: BinaryPrimitives.WriteDoubleLittleEndian(at, value * 1.000001); break;
                case TableElementType.Float16: BinaryPrimitives.WriteHalfLittleEndian(at, (Half)value); break;
                case TableElementType.BFloat16: BinaryPrimitives.WriteUInt16LittleEndian(at, (ushort)(BitConverter.SingleToUInt32Bits(value) >> 16)); break;
                default: at[0] = (byte)random.Next(256); break;
            }
        }

        return data;
    }

    private static int Mod(int value, int modulus) => ((value % modulus) + modulus) % modulus;
}

/// <summary>A fresh directory under the system's temporary directory, deleted with everything in it on dispose.</summary>
internal sealed class TemporaryDirectory : IDisposable
{
    public TemporaryDirectory() => Path = Directory.CreateTempSubdirectory("emb-tables-").FullName;

    public string Path { get; }

    /// <summary>Writes <paramref name="bytes"/> to <paramref name="name"/> in the directory; returns its path.</summary>
    public string Write(string name, byte[] bytes)
    {
        string path = System.IO.Path.Combine(Path, name);
        File.WriteAllBytes(path, bytes);
        return path;
    }

    public void Dispose() => Directory.Delete(Path, recursive: true);
}
