using System;
using Xunit;

namespace Embedding.Native.Tests;

/// <summary>
/// <c>EmbeddingPrimitives.Clear</c>, which every overwriting backward starts with: vector stores up to
/// <see cref="EmbeddingPrimitives.CachedClearBytes"/>, libc's memset above. Both sides of the bound and every tail
/// length leave +0.0 in each element of the block and nothing outside it.
/// </summary>
public sealed class GradientClearTests
{
    private const int Guard = 80;

    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    [InlineData(3)]
    [InlineData(15)]
    [InlineData(16)]
    [InlineData(17)]
    [InlineData(63)]
    [InlineData(64)]
    [InlineData(65)]
    [InlineData(1000)]
    public void SmallBlocks_AreZeroAndTheirNeighboursUntouched(int length)
    {
        ClearsExactly<float>(length, 1, float.NaN);
        ClearsExactly<double>(length, 3, -1.5);
        ClearsExactly<Half>(length, 1, (Half)(-2));
        ClearsExactly<byte>(length, 5, 0xA5);
    }

    [Theory]
    [InlineData(-1)]
    [InlineData(0)]
    [InlineData(1)]
    public void BlocksAroundTheBound_AreZeroAndTheirNeighboursUntouched(int elementsPastTheBound)
    {
        int length = (int)(EmbeddingPrimitives.CachedClearBytes / sizeof(float)) + elementsPastTheBound;
        ClearsExactly<float>(length, 1, -0.0f);
        ClearsExactly<Half>(length * 2 + 1, 3, Half.NegativeInfinity);
    }

    private static void ClearsExactly<T>(int length, int start, T fill)
        where T : unmanaged, IEquatable<T>
    {
        var buffer = new T[start + length + Guard];
        Array.Fill(buffer, fill);
        EmbeddingPrimitives.Clear(ref buffer[start], length);
        for (int i = 0; i < buffer.Length; i++)
        {
            bool inside = i >= start && i < start + length;
            if (inside ? !IsPositiveZero(buffer[i]) : !buffer[i].Equals(fill) && !BitsEqual(buffer[i], fill))
            {
                Assert.Fail($"{typeof(T).Name} block of {length} at {start}: element {i} is {buffer[i]} ({(inside ? "inside, not +0.0" : "outside, changed")}).");
            }
        }
    }

    private static bool IsPositiveZero<T>(T value)
        where T : unmanaged => BitsEqual(value, default(T));

    private static unsafe bool BitsEqual<T>(T a, T b)
        where T : unmanaged => new ReadOnlySpan<byte>(&a, sizeof(T)).SequenceEqual(new ReadOnlySpan<byte>(&b, sizeof(T)));
}
