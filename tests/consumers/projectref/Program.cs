// Embedding.Native through a ProjectReference: checks that the consumer's own [EmbeddingKernels]
// class was generated and registered for D = 48, and that a lookup at D = 48 gives the table's rows.
using System;
using Embedding.Native;

namespace ProjectRefConsumer;

/// <summary>D = 48 is not among the library's own specialised dimensions.</summary>
[EmbeddingKernels(48)]
internal sealed partial class MyKernels;

internal static class Program
{
    private static int Main()
    {
        const int NumEmbeddings = 10;
        const int Dim = 48;
        float[] weight = new float[NumEmbeddings * Dim];
        for (int i = 0; i < weight.Length; i++)
        {
            weight[i] = (i * 0.5f) - 7.0f;
        }

        int failures = 0;
        if (!EmbeddingKernelRegistry.IsSpecialised(Dim))
        {
            Console.Error.WriteLine("FAILED: no specialised kernel registered for D=48");
            failures++;
        }

        // Through object: without the generator MyKernels is a plain class, and this still compiles.
        bool mine = false;
        foreach (EmbeddingKernelSet set in EmbeddingKernelRegistry.Sets)
        {
            mine |= (object)set is MyKernels && set.Dimensions.Contains(Dim);
        }

        if (!mine)
        {
            Console.Error.WriteLine("FAILED: the generated MyKernels set is not registered for D=48");
            failures++;
        }

        long[] indices = [0, 3, 9, 3];
        float[] rows = new float[indices.Length * Dim];
        EmbeddingPrimitives.Embedding(indices, weight, Dim, rows);
        for (int i = 0; i < indices.Length; i++)
        {
            if (!weight.AsSpan((int)indices[i] * Dim, Dim).SequenceEqual(rows.AsSpan(i * Dim, Dim)))
            {
                Console.Error.WriteLine($"FAILED: row {i} (index {indices[i]}) differs from the table");
                failures++;
            }
        }

        Console.WriteLine(failures == 0
            ? $"projectref consumer: OK (D={Dim} specialised by {nameof(MyKernels)})"
            : $"projectref consumer: {failures} failure(s)");
        return failures == 0 ? 0 : 1;
    }
}
