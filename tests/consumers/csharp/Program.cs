// Uses the Embedding.Native package as an application would: declares its own specialised
// dimensions, looks rows up at one of them, and checks that the generated kernel was the one
// registered for it and that the result is the table's rows, bit for bit.
using System;
using Embedding.Native;

namespace Consumer;

/// <summary>D = 48 and 200 are not among the library's own specialised dimensions.</summary>
[EmbeddingKernels(48, 200)]
internal sealed partial class MyKernels;

internal static class Program
{
    private static int Main(string[] args)
    {
        const int NumEmbeddings = 10;
        const int Dim = 48;
        float[] weight = new float[NumEmbeddings * Dim];
        for (int i = 0; i < weight.Length; i++)
        {
            weight[i] = (i * 0.25f) - 3.0f;
        }

        long[] indices = [1, 2, 4, 9];
        float[] rows = new float[indices.Length * Dim];
        EmbeddingPrimitives.Embedding(indices, weight, Dim, rows);

        int failures = 0;
        if (!EmbeddingKernelRegistry.IsSpecialised(Dim))
        {
            Console.Error.WriteLine("FAILED: no specialised kernel registered for D=48");
            failures++;
        }

        bool mine = false;
        foreach (EmbeddingKernelSet set in EmbeddingKernelRegistry.Sets)
        {
            mine |= set is MyKernels && set.Dimensions.Contains(Dim);
        }

        if (!mine)
        {
            Console.Error.WriteLine("FAILED: the generated MyKernels set is not registered for D=48");
            failures++;
        }

        for (int i = 0; i < indices.Length; i++)
        {
            ReadOnlySpan<float> expected = weight.AsSpan((int)indices[i] * Dim, Dim);
            ReadOnlySpan<float> actual = rows.AsSpan(i * Dim, Dim);
            if (!expected.SequenceEqual(actual))
            {
                Console.Error.WriteLine($"FAILED: row {i} (index {indices[i]}) differs from the table");
                failures++;
            }
        }

        try
        {
            EmbeddingPrimitives.Embedding(new long[] { NumEmbeddings }, weight, Dim, rows);
            Console.Error.WriteLine("FAILED: an out-of-range index was accepted");
            failures++;
        }
        catch (ArgumentOutOfRangeException)
        {
        }

        string runtime = args.Length > 0 ? args[0] : "?";
        Console.WriteLine(failures == 0
            ? $"csharp consumer ({runtime}): OK (D={Dim} specialised by {nameof(MyKernels)}, {indices.Length} rows)"
            : $"csharp consumer ({runtime}): {failures} failure(s)");
        return failures == 0 ? 0 : 1;
    }
}
