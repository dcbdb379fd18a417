namespace Embedding.Native;

/// <summary>
/// The element type of a table file (<see cref="EmbeddingTable"/>): one of the four
/// <see cref="EmbeddingType"/>s, or bytes, which hold packed quantized rows. The values are the C ABI's
/// <c>emb_dtype</c> numbers, so a float type converts to <see cref="EmbeddingType"/> by a cast.
/// </summary>
public enum TableElementType
{
    /// <summary><see cref="float"/>: .npy <c>&lt;f4</c>, .safetensors <c>F32</c>.</summary>
    Float32 = EmbeddingType.Float32,

    /// <summary><see cref="double"/>: .npy <c>&lt;f8</c>, .safetensors <c>F64</c>.</summary>
    Float64 = EmbeddingType.Float64,

    /// <summary><see cref="System.Half"/>: .npy <c>&lt;f2</c>, .safetensors <c>F16</c>.</summary>
    Float16 = EmbeddingType.Float16,

    /// <summary><see cref="Native.BFloat16"/>: .safetensors <c>BF16</c> only (.npy has no bfloat16 type).</summary>
    BFloat16 = EmbeddingType.BFloat16,

    /// <summary><see cref="byte"/>, packed quantized rows: .npy <c>|u1</c> (or <c>&lt;u1</c>), .safetensors <c>U8</c>.</summary>
    UInt8 = 7,
}
