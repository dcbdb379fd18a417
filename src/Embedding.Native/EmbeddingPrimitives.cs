namespace Embedding.Native;

/// <summary>
/// Embedding operations with the exact semantics of <c>torch.nn.functional</c>, over spans.
/// </summary>
/// <remarks>
/// <para>
/// Conventions shared by every operation (the TensorPrimitives shape): inputs are
/// <see cref="System.ReadOnlySpan{T}"/>, the destination comes last, tables are row-major
/// <c>[num_embeddings, embedding_dim]</c> float32, indices are int32 or int64.
/// </para>
/// <para>
/// Failures throw before anything is written: <see cref="System.ArgumentOutOfRangeException"/>
/// for an index or option outside its range (the message names the position and the valid range),
/// <see cref="System.ArgumentException"/> for shapes that do not fit. No call allocates on success.
/// Calls that only read a table are safe from many threads at once.
/// </para>
/// </remarks>
public static partial class EmbeddingPrimitives
{
}
