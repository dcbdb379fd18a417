using System;
using System.Diagnostics.CodeAnalysis;

namespace Embedding.Native;

/// <summary>
/// Asks the Embedding.Generators source generator for kernels specialised to the given embedding
/// dimensions. Put it on a top-level <c>partial</c> class; the generator makes the class an
/// <see cref="EmbeddingKernelSet"/> and registers it with <see cref="EmbeddingKernelRegistry"/>
/// when the assembly loads, so every call with one of these dimensions runs the specialised code.
/// </summary>
/// <remarks>
/// The NuGet package carries the generator. A <c>ProjectReference</c> to Embedding.Native.csproj
/// does not (MSBuild does not pass a referenced project's analyzers on), so a project that builds
/// from source references the generator project as well (docs/project-reference.md). Without the
/// generator the compiler reports EMB0100 where the attribute is used, instead of building a class
/// with no kernels: the constructor carries an <see cref="ExperimentalAttribute"/> with that ID and
/// the generator assembly suppresses it. That is the only reason for the marker: the API is stable.
/// </remarks>
/// <example>
/// <code>
/// [EmbeddingKernels(48, 200)]
/// internal sealed partial class MyModelKernels;
///
/// [EmbeddingKernels(768, 1024, Types = EmbeddingTypes.Float16 | EmbeddingTypes.Float32)]
/// internal sealed partial class ServingKernels;
///
/// // Quantized bags only (8- and 4-bit rows), no float kernels.
/// [EmbeddingKernels(48, 96, Types = EmbeddingTypes.None, Quantized = QuantizedBitWidths.Eight | QuantizedBitWidths.Four)]
/// internal sealed partial class QuantizedKernels;
/// </code>
/// </example>
[AttributeUsage(AttributeTargets.Class, AllowMultiple = false, Inherited = false)]
public sealed class EmbeddingKernelsAttribute : Attribute
{
    /// <summary>Creates the attribute with the dimensions to specialise.</summary>
    /// <param name="dimensions">Embedding dimensions (columns per row); each in 1 … 65536.</param>
    // EMB0100 and its text: the generator's GeneratorAttachedSuppressor suppresses this ID, and
    // docs/diagnostics.md describes it; keep the three in step.
    [Experimental("EMB0100", Message =
        "[EmbeddingKernels] generates nothing here: the Embedding.Generators source generator is not attached to this project "
        + "(a ProjectReference to Embedding.Native.csproj does not bring it). Reference it next to Embedding.Native: "
        + "<ProjectReference Include=\".../src/Embedding.Generators/Embedding.Generators.csproj\" OutputItemType=\"Analyzer\" ReferenceOutputAssembly=\"false\" />, "
        + "or use the Embedding.Native NuGet package, which carries it (docs/project-reference.md). "
        + "Suppressing EMB0100 only hides that the class gets no kernels")]
    public EmbeddingKernelsAttribute(params int[] dimensions) => Dimensions = dimensions;

    /// <summary>The dimensions to specialise, as written.</summary>
    public int[] Dimensions { get; }

    /// <summary>
    /// The table types to specialise; float32 when not set. A gather is specialised per element size
    /// (float16 and bfloat16 share kernels); operations without specialised kernels for a type run
    /// their generic kernel for it.
    /// </summary>
    public EmbeddingTypes Types { get; set; } = EmbeddingTypes.Float32;

    /// <summary>
    /// The code widths of quantized tables whose bags (<c>EmbeddingPrimitives.QuantizedEmbeddingBag</c>) to
    /// specialise for the same dimensions; none when not set. With quantized widths,
    /// <see cref="Types"/> may be <see cref="EmbeddingTypes.None"/>: a set of quantized kernels only.
    /// </summary>
    public QuantizedBitWidths Quantized { get; set; }
}
