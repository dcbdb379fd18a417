namespace Embedding.Native;

/// <summary>
/// A gather kernel for one embedding dimension and vector width:
/// <c>for i in 0..count: destination[i*D .. (i+1)*D] = weight[indices[i]*D .. (indices[i]+1)*D]</c>.
/// </summary>
/// <remarks>
/// Kernels do no validation. The caller guarantees that every index is in <c>[0, rows)</c> and
/// that <paramref name="destination"/> holds <c>count × D</c> floats. Refs and a native-sized count
/// (not spans) let tables larger than 2³¹ elements pass through the C ABI.
/// </remarks>
/// <typeparam name="TIndex"><see cref="int"/> or <see cref="long"/>.</typeparam>
/// <param name="weight">First element of the row-major <c>[rows, D]</c> table.</param>
/// <param name="indices">First of <paramref name="count"/> row indices.</param>
/// <param name="count">Number of indices (rows to copy).</param>
/// <param name="destination">First element of the <c>[count, D]</c> output.</param>
public delegate void GatherKernel<TIndex>(ref readonly float weight, ref readonly TIndex indices, nint count, ref float destination)
    where TIndex : unmanaged;
