namespace Embedding.Native;

/// <summary>
/// The dimensions the library specialises out of the box: common model sizes from word vectors
/// (300) and sentence encoders (384, 768) to LLM token embeddings (1536 … 4096), plus the small
/// powers of two that recommendation tables use, for every table type. Consumers add their own with
/// the same attribute.
/// </summary>
[EmbeddingKernels(8, 16, 32, 64, 96, 128, 256, 300, 384, 512, 768, 1024, 1536, 2048, 4096, Types = EmbeddingTypes.All)]
internal sealed partial class DefaultEmbeddingKernels;
