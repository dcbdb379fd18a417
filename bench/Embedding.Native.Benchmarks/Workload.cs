using System;

namespace Embedding.Native.Benchmarks;

/// <summary>How the benchmarks draw indices: the distributions of the project's performance method.</summary>
public enum IndexDistribution
{
    /// <summary>Every row equally likely.</summary>
    Uniform,

    /// <summary>Truncated Zipf, a = 1.05, ranks scattered over the table by <c>r * 2654435761 mod V</c>.</summary>
    Zipf,
}

/// <summary>Deterministic inputs shared by the benchmarks (fixed seeds).</summary>
public static class Workload
{
    public static float[] Table(long rows, int dim, int seed = 1)
    {
        var random = new Random(seed);
        var table = GC.AllocateUninitializedArray<float>(checked((int)(rows * dim)));
        for (int i = 0; i < table.Length; i++)
        {
            table[i] = (float)(random.NextDouble() * 2 - 1);
        }

        return table;
    }

    public static long[] Indices(int count, long rows, IndexDistribution distribution, int seed = 2)
    {
        var random = new Random(seed);
        var indices = new long[count];
        if (distribution == IndexDistribution.Uniform)
        {
            for (int i = 0; i < count; i++)
            {
                indices[i] = random.NextInt64(rows);
            }

            return indices;
        }

        // Inverse-CDF sampling of a truncated Zipf over `rows` ranks, then a bijection that
        // scatters popular ranks over the table instead of packing them at its start.
        double[] cumulative = new double[rows];
        double sum = 0;
        for (long r = 0; r < rows; r++)
        {
            sum += Math.Pow(r + 1, -1.05);
            cumulative[r] = sum;
        }

        for (int i = 0; i < count; i++)
        {
            long rank = Array.BinarySearch(cumulative, random.NextDouble() * sum);
            rank = rank < 0 ? Math.Min(~rank, rows - 1) : rank;
            indices[i] = (long)((ulong)rank * 2654435761UL % (ulong)rows);
        }

        return indices;
    }

    /// <summary>Fails the benchmark setup when a kernel disagrees with the reference, so nothing wrong is timed.</summary>
    public static void Verify(ReadOnlySpan<float> expected, ReadOnlySpan<float> actual, string what)
    {
        if (!expected.SequenceEqual(actual))
        {
            throw new InvalidOperationException($"{what}: the kernel disagrees with the reference; refusing to time it.");
        }
    }

    /// <summary>As <see cref="Verify(ReadOnlySpan{float}, ReadOnlySpan{float}, string)"/> for integer outputs (the arg-max rows of a max bag).</summary>
    public static void Verify(ReadOnlySpan<long> expected, ReadOnlySpan<long> actual, string what)
    {
        if (!expected.SequenceEqual(actual))
        {
            throw new InvalidOperationException($"{what}: the kernel disagrees with the reference; refusing to time it.");
        }
    }
}
