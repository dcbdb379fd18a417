using System;

namespace Embedding.Native;

/// <summary>
/// The element type of an embedding table, and of the per-sample weights and gradients that go with
/// it (torch keeps them in the table's dtype). The values are the C ABI's <c>emb_dtype</c> numbers.
/// </summary>
public enum EmbeddingType
{
    /// <summary>IEEE binary32: <see cref="float"/>, <c>torch.float32</c>.</summary>
    Float32 = 1,

    /// <summary>IEEE binary64: <see cref="double"/>, <c>torch.float64</c>.</summary>
    Float64 = 2,

    /// <summary>IEEE binary16: <see cref="Half"/>, <c>torch.float16</c>.</summary>
    Float16 = 3,

    /// <summary>The upper half of a binary32: <see cref="Native.BFloat16"/>, <c>torch.bfloat16</c>.</summary>
    BFloat16 = 4,
}

/// <summary>A set of <see cref="EmbeddingType"/>s: the table types a kernel set specialises.</summary>
[Flags]
public enum EmbeddingTypes
{
    /// <summary>No type; not a valid request.</summary>
    None = 0,

    /// <summary><see cref="EmbeddingType.Float32"/>.</summary>
    Float32 = 1 << (EmbeddingType.Float32 - 1),

    /// <summary><see cref="EmbeddingType.Float64"/>.</summary>
    Float64 = 1 << (EmbeddingType.Float64 - 1),

    /// <summary><see cref="EmbeddingType.Float16"/>.</summary>
    Float16 = 1 << (EmbeddingType.Float16 - 1),

    /// <summary><see cref="EmbeddingType.BFloat16"/>.</summary>
    BFloat16 = 1 << (EmbeddingType.BFloat16 - 1),

    /// <summary>Every table type.</summary>
    All = Float32 | Float64 | Float16 | BFloat16,
}

/// <summary>The index element types: int32 and int64, as torch accepts. The values are <c>emb_dtype</c> numbers.</summary>
public enum EmbeddingIndexType
{
    /// <summary><see cref="int"/>, <c>torch.int32</c>.</summary>
    Int32 = 5,

    /// <summary><see cref="long"/>, <c>torch.int64</c>.</summary>
    Int64 = 6,
}
