using System.Collections.Generic;
using Embedding.Generators.Helpers;

namespace Embedding.Generators.Emitters
{
    /// <summary>
    /// One variant of an operation that gets its own kernels: the name prefix of its kernels and the
    /// leading part of its key in the dispatch switch (empty when the operation has one variant).
    /// </summary>
    internal class KernelVariant
    {
        public KernelVariant(string name, string keyPrefix)
        {
            Name = name;
            KeyPrefix = keyPrefix;
        }

        /// <summary>Prefix of the kernel names, e.g. <c>Gather</c> or <c>BagMean</c>.</summary>
        public string Name { get; }

        /// <summary>The switch key before <c>(dimension, width)</c>, ending in ", " when not empty.</summary>
        public string KeyPrefix { get; }
    }

    /// <summary>
    /// The skeleton every kernel family shares: kernel names, the dispatch switch of the kernel-set
    /// class, the per-dimension file that holds one kernel per (variant, index type, width that fits)
    /// and its file-local helper class. An emitter supplies only what is specific to its operation:
    /// the switch signature, the variants, one kernel body and the helpers.
    /// </summary>
    internal abstract class KernelFamily
    {
        /// <summary>The attribute every emitted helper that must inline carries.</summary>
        protected const string Inline = "[global::System.Runtime.CompilerServices.MethodImpl(global::System.Runtime.CompilerServices.MethodImplOptions.AggressiveInlining)]";

        /// <summary>Fully qualified, so a consumer type named <c>Unsafe</c> cannot change what a kernel means.</summary>
        protected const string Unsafe = "global::System.Runtime.CompilerServices.Unsafe";

        /// <summary>The runtime's cache hints (prefetch, streaming stores), shared by generated and generic kernels.</summary>
        protected const string Hints = "global::Embedding.Native.KernelHints";

        /// <summary>The families, in the order their tables and files are emitted.</summary>
        public static readonly KernelFamily[] All = { GatherEmitter.Instance, ScatterAddEmitter.Instance, BagEmitter.Instance };

        /// <summary>The operation's part of the per-dimension file name, e.g. <c>Gather</c>.</summary>
        public abstract string FileTag { get; }

        /// <summary><c>Name_F32_I32_D64_V512</c>: variant, element type, index type, dimension, width.</summary>
        public static string KernelName(string variant, int dimension, IndexType index, Width width) =>
            variant + "_F32_" + index.KeyName + "_D" + dimension + "_" + width.KeyName;

        /// <summary>The switch from (variant key, dimension, width) to kernel for one index type.</summary>
        public abstract void EmitTable(SourceWriter writer, IEnumerable<int> dimensions, IndexType index);

        /// <summary>The kernels of one dimension: for each variant, index type and width that fits, one kernel.</summary>
        public abstract void EmitKernels(SourceWriter writer, int dimension);

        /// <summary>The file-local helper class the kernels of one file call, after the kernel-set type.</summary>
        public abstract void EmitRowHelpers(SourceWriter writer);

        /// <summary>One <c>Index</c> helper per index type: the index at a position as a native integer.</summary>
        protected static void EmitIndexHelper(SourceWriter writer, IndexType index)
        {
            writer.Line("/// <summary>The " + index.Description + " index at position <paramref name=\"i\"/>, as a native integer.</summary>");
            writer.Line(Inline);
            writer.Line("public static nint Index(ref readonly " + index.CSharpName + " indices, nint i) => (nint)" + Unsafe + ".Add(ref " + Unsafe + ".AsRef(in indices), i);");
        }
    }

    /// <summary>A <see cref="KernelFamily"/> whose variants are of type <typeparamref name="TVariant"/>.</summary>
    internal abstract class KernelFamily<TVariant> : KernelFamily
        where TVariant : KernelVariant
    {
        /// <summary>The variants, in emission order.</summary>
        protected abstract IReadOnlyList<TVariant> Variants { get; }

        /// <summary>What the switch is: <c>public override ...? GetX(...) =&gt; (..., embeddingDim, width) switch</c>.</summary>
        protected abstract string TableSignature(IndexType index);

        /// <summary>One kernel: its doc comment, attribute and body.</summary>
        protected abstract void EmitKernel(SourceWriter writer, TVariant variant, int dimension, IndexType index, Width width);

        public sealed override void EmitTable(SourceWriter writer, IEnumerable<int> dimensions, IndexType index)
        {
            writer.Line("/// <inheritdoc/>");
            writer.Line(TableSignature(index));
            writer.Line("{");
            foreach (int dimension in dimensions)
            {
                foreach (TVariant variant in Variants)
                {
                    foreach (Width width in Width.For(dimension))
                    {
                        writer.Line("    (" + variant.KeyPrefix + dimension + ", global::Embedding.Native.VectorWidth." + width.EnumName + ") => " + KernelName(variant.Name, dimension, index, width) + ",");
                    }
                }
            }

            writer.Line("    _ => null,");
            writer.Line("};");
        }

        public sealed override void EmitKernels(SourceWriter writer, int dimension)
        {
            bool first = true;
            foreach (TVariant variant in Variants)
            {
                foreach (IndexType index in IndexTypes.All)
                {
                    foreach (Width width in Width.For(dimension))
                    {
                        if (!first)
                        {
                            writer.Line();
                        }

                        first = false;
                        EmitKernel(writer, variant, dimension, index, width);
                    }
                }
            }
        }
    }
}
