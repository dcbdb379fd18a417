using System;

namespace Embedding.Native;

/// <summary>
/// Asks the Embedding.Generators source generator for kernels specialised to the given embedding
/// dimensions. Put it on a top-level <c>partial</c> class; the generator makes the class an
/// <see cref="EmbeddingKernelSet"/> and registers it with <see cref="EmbeddingKernelRegistry"/>
/// when the assembly loads, so every call with one of these dimensions runs the specialised code.
/// </summary>
/// <example>
/// <code>
/// [EmbeddingKernels(48, 200)]
/// internal sealed partial class MyModelKernels;
/// </code>
/// </example>
[AttributeUsage(AttributeTargets.Class, AllowMultiple = false, Inherited = false)]
public sealed class EmbeddingKernelsAttribute : Attribute
{
    /// <summary>Creates the attribute with the dimensions to specialise.</summary>
    /// <param name="dimensions">Embedding dimensions (columns per row); each in 1 … 65536.</param>
    public EmbeddingKernelsAttribute(params int[] dimensions) => Dimensions = dimensions;

    /// <summary>The dimensions to specialise, as written.</summary>
    public int[] Dimensions { get; }
}
