namespace Embedding.Native;

/// <summary>
/// A gather kernel for one embedding dimension and vector width:
/// <c>for i in 0..count: destination[i*D .. (i+1)*D] = weight[indices[i]*D .. (indices[i]+1)*D]</c>.
/// </summary>
/// <remarks>
/// A gather moves bits, so kernels are shared by element size: <see cref="float"/> serves float32
/// tables, <see cref="double"/> float64, and <see cref="ushort"/> both float16 and bfloat16.
/// Kernels do no validation. The caller guarantees that every index is in <c>[0, rows)</c> and
/// that <paramref name="destination"/> holds <c>count × D</c> elements. Refs and a native-sized count
/// (not spans) let tables larger than 2³¹ elements pass through the C ABI.
/// </remarks>
/// <typeparam name="TElement"><see cref="ushort"/>, <see cref="float"/> or <see cref="double"/>: an element of the table's size.</typeparam>
/// <typeparam name="TIndex"><see cref="int"/> or <see cref="long"/>.</typeparam>
/// <param name="weight">First element of the row-major <c>[rows, D]</c> table.</param>
/// <param name="dimension">D, elements per row (a specialised kernel has it built in and ignores it).</param>
/// <param name="indices">First of <paramref name="count"/> row indices.</param>
/// <param name="count">Number of indices (rows to copy).</param>
/// <param name="destination">First element of the <c>[count, D]</c> output.</param>
public delegate void GatherKernel<TElement, TIndex>(ref readonly TElement weight, int dimension, ref readonly TIndex indices, nint count, ref TElement destination)
    where TElement : unmanaged
    where TIndex : unmanaged;
