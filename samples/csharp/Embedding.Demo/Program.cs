// torch.nn.Embedding's documentation example, from C# through the managed Span API.
//
//     dotnet Embedding.Demo.dll WEIGHTS_BIN OUT_BIN
//
// WEIGHTS_BIN holds a 10 x 5 float32 table (50 values, row-major, little-endian), for example
// nn.Embedding(10, 5).weight.detach().numpy().tofile(path). The demo
//
//   1. looks up the rows {1, 2, 4}                        -> a 3 x 5 result
//   2. looks up the batch {{1, 2, 4, 5}, {4, 3, 2, 9}}     -> 2 x 4 x 5, and averages each batch
//      row's 4 embeddings, as a bag-of-words model does   -> a 2 x 5 result
//
// prints both, and writes them to OUT_BIN as 25 float32 values: the 15 lookup values, then the
// 10 means. It does exactly what samples/c/demo.c does, so samples/demo.py can compare the two
// with PyTorch. Here the library runs as ordinary managed code under the JIT, not NativeAOT.

using System;
using System.Buffers.Binary;
using System.Globalization;
using System.IO;
using System.Text;
using Embedding.Native;

namespace Embedding.Demo;

internal static class Program
{
    private const int NumEmbeddings = 10; // rows in the table
    private const int EmbeddingDim = 5;   // columns: the size of one embedding vector
    private const int Batch = 2;          // batch rows in step 2
    private const int Bag = 4;            // indices per batch row

    private static int Main(string[] args)
    {
        if (args.Length != 2)
        {
            Console.Error.WriteLine("usage: dotnet Embedding.Demo.dll WEIGHTS_BIN OUT_BIN");
            return 2;
        }

        Version? version = typeof(EmbeddingPrimitives).Assembly.GetName().Version;
        Console.WriteLine($"Embedding.Native {version?.ToString(3)}, tier {IsaTiers.Name(IsaTiers.Compiled)}, managed (JIT)");

        try
        {
            Run(args[0], args[1]);
            return 0;
        }
        catch (ArgumentException exception)
        {
            // The Span API reports a bad index, shape or buffer as an ArgumentException (the C ABI
            // returns a status instead); its message is the same text emb_last_error() gives.
            Console.Error.WriteLine($"EmbeddingPrimitives.Embedding failed: {exception.Message}");
            return 1;
        }
        catch (Exception exception) when (exception is IOException or UnauthorizedAccessException or InvalidDataException)
        {
            Console.Error.WriteLine(exception.Message);
            return 1;
        }
    }

    private static void Run(string weightsPath, string outPath)
    {
        // The table: nn.Embedding(10, 5).weight, row-major.
        float[] weight = ReadFloats(weightsPath, NumEmbeddings * EmbeddingDim);

        // Step 1: embedding(torch.tensor([1, 2, 4])). long indices, like torch's LongTensor.
        long[] indices = [1, 2, 4];
        float[] lookup = new float[indices.Length * EmbeddingDim];
        EmbeddingPrimitives.Embedding(indices, weight, EmbeddingDim, lookup);
        Console.WriteLine($"embedding([1, 2, 4]) -> {indices.Length} x {EmbeddingDim}:");
        PrintMatrix(lookup, indices.Length, EmbeddingDim);

        // Step 2: a batch of two 4-word sentences, flattened row-major: 8 indices give 8
        // embeddings, a 2 x 4 x 5 result.
        long[] batch = [1, 2, 4, 5, 4, 3, 2, 9];
        float[] embedded = new float[Batch * Bag * EmbeddingDim];
        EmbeddingPrimitives.Embedding(batch, weight, EmbeddingDim, embedded);

        // Mean over each batch row's embeddings (SimpleNN's embedded.mean(dim=1)): add the 4
        // vectors in index order in float, then divide by 4. The C demo does exactly the same.
        float[] means = new float[Batch * EmbeddingDim];
        for (int b = 0; b < Batch; b++)
        {
            for (int d = 0; d < EmbeddingDim; d++)
            {
                float sum = 0.0f;
                for (int w = 0; w < Bag; w++)
                {
                    sum += embedded[(b * Bag + w) * EmbeddingDim + d];
                }

                means[b * EmbeddingDim + d] = sum / Bag;
            }
        }

        Console.WriteLine($"embedding([[1, 2, 4, 5], [4, 3, 2, 9]]).mean(dim=1) -> {Batch} x {EmbeddingDim}:");
        PrintMatrix(means, Batch, EmbeddingDim);

        // Step 3: hand both results back to the Python side for comparison.
        float[] results = [.. lookup, .. means];
        WriteFloats(outPath, results);
        Console.WriteLine($"wrote {results.Length} float32 values to {outPath} (15 lookup values, then 10 means)");
    }

    /// <summary>Reads exactly <paramref name="count"/> little-endian float32 values.</summary>
    private static float[] ReadFloats(string path, int count)
    {
        byte[] bytes = File.ReadAllBytes(path);
        if (bytes.Length != count * sizeof(float))
        {
            throw new InvalidDataException($"{path}: expected exactly {count} float32 values ({count * sizeof(float)} bytes), found {bytes.Length} bytes");
        }

        float[] values = new float[count];
        for (int i = 0; i < count; i++)
        {
            values[i] = BinaryPrimitives.ReadSingleLittleEndian(bytes.AsSpan(i * sizeof(float)));
        }

        return values;
    }

    /// <summary>Writes the values as little-endian float32, whatever the machine's byte order.</summary>
    private static void WriteFloats(string path, float[] values)
    {
        byte[] bytes = new byte[values.Length * sizeof(float)];
        for (int i = 0; i < values.Length; i++)
        {
            BinaryPrimitives.WriteSingleLittleEndian(bytes.AsSpan(i * sizeof(float)), values[i]);
        }

        File.WriteAllBytes(path, bytes);
    }

    /// <summary>Prints a row-major matrix in the same layout as the C demo ("%10.4f").</summary>
    private static void PrintMatrix(float[] values, int rows, int columns)
    {
        StringBuilder line = new();
        for (int r = 0; r < rows; r++)
        {
            line.Clear().Append("  [");
            for (int c = 0; c < columns; c++)
            {
                line.Append(((double)values[r * columns + c]).ToString("F4", CultureInfo.InvariantCulture).PadLeft(10));
            }

            Console.WriteLine(line.Append(" ]"));
        }
    }
}
