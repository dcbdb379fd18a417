namespace Embedding.Native;

/// <summary>
/// The dimensions the library specialises out of the box: common model sizes from word vectors
/// (300) and sentence encoders (384, 768) to LLM token embeddings (1536 … 4096), plus the small
/// powers of two that recommendation tables use, for every table type. Consumers add their own with
/// the same attribute.
/// </summary>
[EmbeddingKernels(8, 16, 32, 64, 96, 128, 256, 300, 384, 512, 768, 1024, 1536, 2048, 4096, Types = EmbeddingTypes.All)]
internal sealed partial class DefaultEmbeddingKernels;

/// <summary>
/// The quantized bags the library specialises out of the box, for every code width: the row sizes of the
/// recommendation tables quantized tables are made for (DLRM-style models use 16 to 256). Other dimensions run
/// the generic kernel. The five dimensions add 236 KiB (x86-64-v4) to 332 KiB (x86-64-v2, where the unused
/// Vector256 and Vector512 bodies compile to software fallbacks) to each tier's library, 6-8%.
/// </summary>
[EmbeddingKernels(16, 32, 64, 128, 256, Types = EmbeddingTypes.None, Quantized = QuantizedBitWidths.All)]
internal sealed partial class DefaultQuantizedKernels;
