using System.Collections.Generic;
using System.Linq;
using Embedding.Generators.Helpers;
using Embedding.Generators.Model;

namespace Embedding.Generators.Emitters
{
    /// <summary>
    /// One variant of an operation that gets its own kernels: the name prefix of its kernels, which is
    /// also its <c>KernelOperation</c> member in the kernel key.
    /// </summary>
    internal class KernelVariant
    {
        public KernelVariant(string name)
        {
            Name = name;
        }

        /// <summary>Prefix of the kernel names and the <c>KernelOperation</c> member, e.g. <c>Gather</c> or <c>BagMean</c>.</summary>
        public string Name { get; }
    }

    /// <summary>
    /// The skeleton every kernel family shares: kernel names, its arms of the kernel set's
    /// <c>Find</c> switch, and the per-(element group, dimension) file that holds one kernel per
    /// (variant, index type, width that fits). An emitter supplies only what is specific to its
    /// operation: its element groups, the delegate type, the variants and one kernel body. The
    /// arithmetic is not emitted: a kernel body is the runtime's operators (the same ones the generic
    /// kernels run) called with the dimension folded into straight-line code.
    /// </summary>
    internal abstract class KernelFamily
    {
        /// <summary>
        /// The using aliases every kernel file declares for the runtime's kernel parts, inside its namespace,
        /// so a kernel reads like hand-written code while a consumer type of the same name in that namespace
        /// is a compile error (CS0576), never a silent change of meaning.
        /// </summary>
        private static readonly string[] CommonAliases =
        {
            "Hints = global::Embedding.Native.KernelHints",
            "Rows = global::Embedding.Native.KernelRows",
        };

        /// <summary>The families, in the order their tables and files are emitted.</summary>
        public static readonly KernelFamily[] All = { GatherEmitter.Instance, ScatterAddEmitter.Instance, BagEmitter.Instance, QuantizedBagEmitter.Instance };

        /// <summary>The operation's part of the per-dimension file name, e.g. <c>Gather</c>.</summary>
        public abstract string FileTag { get; }

        /// <summary><c>Name_F32_I32_D64_V512</c>: variant, element group, index type, dimension, width.</summary>
        public static string KernelName(string variant, ElementGroup group, int dimension, IndexType index, Width width) =>
            variant + "_" + group.KeyName + "_" + index.KeyName + "_D" + dimension + "_" + width.KeyName;

        /// <summary>The element groups this family emits kernels for, given what the set asks for.</summary>
        public abstract IEnumerable<ElementGroup> Groups(KernelSetSpec spec);

        /// <summary>This family's arms of the <c>Find</c> switch: one per (variant, table type, index type, dimension, width).</summary>
        public abstract void EmitFindArms(SourceWriter writer, KernelSetSpec spec);

        /// <summary>The kernels of one dimension: for each requested variant, index type and width that fits, one kernel.</summary>
        public abstract void EmitKernels(SourceWriter writer, KernelSetSpec spec, ElementGroup group, int dimension);

        /// <summary>The using aliases of one file: the common ones, then the operators this family's kernels call.</summary>
        public IEnumerable<string> Aliases(ElementGroup group) => CommonAliases.Concat(OperatorAliases(group));

        /// <summary>The runtime operators (and their vector types) this family's kernels call, as <c>Alias = global::Type</c>.</summary>
        protected abstract IEnumerable<string> OperatorAliases(ElementGroup group);
    }

    /// <summary>A <see cref="KernelFamily"/> whose variants are of type <typeparamref name="TVariant"/>.</summary>
    internal abstract class KernelFamily<TVariant> : KernelFamily
        where TVariant : KernelVariant
    {
        /// <summary>The variants, in emission order.</summary>
        protected abstract IReadOnlyList<TVariant> Variants { get; }

        /// <summary>The delegate type of this family's kernels for one element group and index type.</summary>
        protected abstract string DelegateType(ElementGroup group, IndexType index);

        /// <summary>One kernel: its doc comment, attribute and body.</summary>
        protected abstract void EmitKernel(SourceWriter writer, TVariant variant, ElementGroup group, int dimension, IndexType index, Width width);

        /// <summary>The variants the set asks for: all of them unless a family selects.</summary>
        protected virtual IEnumerable<TVariant> VariantsFor(KernelSetSpec spec) => Variants;

        /// <summary>The table types a group's kernels answer for in the kernel key: the requested types of the group.</summary>
        protected virtual IEnumerable<TableType> Tables(KernelSetSpec spec, ElementGroup group) => spec.Types.Within(group);

        /// <summary>The widths that have a kernel of <paramref name="variant"/> for <paramref name="dimension"/>: those of which one vector fits in a row.</summary>
        protected virtual IEnumerable<Width> Widths(TVariant variant, ElementGroup group, int dimension) => Width.For(dimension, group.Bytes);

        public sealed override void EmitFindArms(SourceWriter writer, KernelSetSpec spec)
        {
            foreach (ElementGroup group in Groups(spec))
            {
                string tables = string.Join(" or ", Tables(spec, group).Select(type => "global::Embedding.Native.EmbeddingType." + type.EnumName));
                foreach (IndexType index in IndexTypes.All)
                {
                    foreach (int dimension in spec.Dimensions)
                    {
                        foreach (TVariant variant in VariantsFor(spec))
                        {
                            foreach (Width width in Widths(variant, group, dimension))
                            {
                                writer.Line("(global::Embedding.Native.KernelOperation." + variant.Name + ", " + tables + ", global::Embedding.Native.EmbeddingIndexType." + index.TableSuffix + ", "
                                    + dimension + ", global::Embedding.Native.VectorWidth." + width.EnumName + ") => (" + DelegateType(group, index) + ")" + KernelName(variant.Name, group, dimension, index, width) + ",");
                            }
                        }
                    }
                }
            }
        }

        public sealed override void EmitKernels(SourceWriter writer, KernelSetSpec spec, ElementGroup group, int dimension)
        {
            bool first = true;
            foreach (TVariant variant in VariantsFor(spec))
            {
                foreach (IndexType index in IndexTypes.All)
                {
                    foreach (Width width in Widths(variant, group, dimension))
                    {
                        if (!first)
                        {
                            writer.Line();
                        }

                        first = false;
                        EmitKernel(writer, variant, group, dimension, index, width);
                    }
                }
            }
        }
    }
}
