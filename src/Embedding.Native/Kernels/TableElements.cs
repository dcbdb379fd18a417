using System;

namespace Embedding.Native;

/// <summary>How each <see cref="EmbeddingType"/> is held in C#: its element type and size.</summary>
internal static class TableElements
{
    /// <summary>The table type whose elements are <typeparamref name="T"/>.</summary>
    public static EmbeddingType TypeOf<T>()
        where T : unmanaged =>
        typeof(T) == typeof(float) ? EmbeddingType.Float32 :
        typeof(T) == typeof(double) ? EmbeddingType.Float64 :
        typeof(T) == typeof(Half) ? EmbeddingType.Float16 :
        typeof(T) == typeof(BFloat16) ? EmbeddingType.BFloat16 :
        throw new NotSupportedException($"{typeof(T).Name} is not a table element type");

    /// <summary>Bytes per element of <paramref name="type"/>.</summary>
    public static int Size(EmbeddingType type) => type switch
    {
        EmbeddingType.Float64 => sizeof(double),
        EmbeddingType.Float16 or EmbeddingType.BFloat16 => sizeof(ushort),
        _ => sizeof(float),
    };

    /// <summary>The lower-case torch name of <paramref name="type"/>, for messages.</summary>
    public static string Name(EmbeddingType type) => type switch
    {
        EmbeddingType.Float32 => "float32",
        EmbeddingType.Float64 => "float64",
        EmbeddingType.Float16 => "float16",
        EmbeddingType.BFloat16 => "bfloat16",
        _ => $"dtype {(int)type}",
    };
}
