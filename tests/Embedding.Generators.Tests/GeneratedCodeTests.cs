using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Runtime.CompilerServices;
using System.Text.RegularExpressions;
using Microsoft.CodeAnalysis;
using Xunit;

namespace Embedding.Generators.Tests;

/// <summary>
/// What the generated files look like: headers, attributes, hint names, stable text, and
/// checked-in baselines. Set EMB_UPDATE_BASELINES=1 to rewrite the baselines from the current output.
/// </summary>
public sealed class GeneratedCodeTests
{
    private const string Source = """
        using Embedding.Native;

        namespace Consumer.Models;

        [EmbeddingKernels(5, 16, 130, 1000)]
        public sealed partial class ModelKernels;
        """;

    /// <summary>Quantized bags only: dims with an overlapping last vector, padding codes (D = 6 at 2 bits) and no vector at all (D = 3 at 2 bits), and a looped row (D = 130 at Vector128).</summary>
    private const string QuantizedSource = """
        using Embedding.Native;

        namespace Consumer.Models;

        [EmbeddingKernels(3, 5, 6, 16, 130, 1000, Types = EmbeddingTypes.None, Quantized = QuantizedBitWidths.All)]
        public sealed partial class QuantizedKernels;
        """;

    public static TheoryData<string, string> BaselineCases => new()
    {
        {
            "Dims5And16",
            """
            using Embedding.Native;

            namespace Consumer;

            [EmbeddingKernels(16, 5)]
            internal sealed partial class SmallKernels;
            """
        },
        {
            "QuantizedDims6And16",
            """
            using Embedding.Native;

            namespace Consumer;

            [EmbeddingKernels(16, 6, Types = EmbeddingTypes.None, Quantized = QuantizedBitWidths.All)]
            internal sealed partial class QuantizedKernels;
            """
        },
    };

    [Fact]
    public void Generate_NamesFilesAfterNamespaceTypeAndDimension()
    {
        GeneratorRunResult result = GeneratorHarness.Run(Source);

        Assert.Equal(
            [
                "Consumer.Models.ModelKernels.g.cs",
                "Consumer.Models.ModelKernels.Gather.32Bit.D5.g.cs",
                "Consumer.Models.ModelKernels.Gather.32Bit.D16.g.cs",
                "Consumer.Models.ModelKernels.Gather.32Bit.D130.g.cs",
                "Consumer.Models.ModelKernels.Gather.32Bit.D1000.g.cs",
                "Consumer.Models.ModelKernels.ScatterAdd.F32.D5.g.cs",
                "Consumer.Models.ModelKernels.ScatterAdd.F32.D16.g.cs",
                "Consumer.Models.ModelKernels.ScatterAdd.F32.D130.g.cs",
                "Consumer.Models.ModelKernels.ScatterAdd.F32.D1000.g.cs",
                "Consumer.Models.ModelKernels.Bag.F32.D5.g.cs",
                "Consumer.Models.ModelKernels.Bag.F32.D16.g.cs",
                "Consumer.Models.ModelKernels.Bag.F32.D130.g.cs",
                "Consumer.Models.ModelKernels.Bag.F32.D1000.g.cs",
            ],
            result.GeneratedSources.Select(source => source.HintName));
    }

    [Fact]
    public void Generate_NamesQuantizedFilesAfterDimensionAndEmitsNoFloatKernelsWithoutTypes()
    {
        SortedDictionary<string, string> sources = GeneratorHarness.Sources(GeneratorHarness.Run(QuantizedSource));

        Assert.Equal(
            [
                "Consumer.Models.QuantizedKernels.QuantizedBag.F32.D1000.g.cs",
                "Consumer.Models.QuantizedKernels.QuantizedBag.F32.D130.g.cs",
                "Consumer.Models.QuantizedKernels.QuantizedBag.F32.D16.g.cs",
                "Consumer.Models.QuantizedKernels.QuantizedBag.F32.D3.g.cs",
                "Consumer.Models.QuantizedKernels.QuantizedBag.F32.D5.g.cs",
                "Consumer.Models.QuantizedKernels.QuantizedBag.F32.D6.g.cs",
                "Consumer.Models.QuantizedKernels.g.cs",
            ],
            sources.Keys);
        string set = sources["Consumer.Models.QuantizedKernels.g.cs"];
        Assert.Contains("public override global::Embedding.Native.EmbeddingTypes Types => global::Embedding.Native.EmbeddingTypes.None;", set, StringComparison.Ordinal);
        Assert.Contains("public override global::Embedding.Native.QuantizedBitWidths Quantized => global::Embedding.Native.QuantizedBitWidths.Two | global::Embedding.Native.QuantizedBitWidths.Four | global::Embedding.Native.QuantizedBitWidths.Eight;", set, StringComparison.Ordinal);
        Assert.DoesNotContain("KernelOperation.Gather", set, StringComparison.Ordinal);
        Assert.Contains("(global::Embedding.Native.KernelOperation.QuantizedBag4Bit, global::Embedding.Native.EmbeddingType.Float32, global::Embedding.Native.EmbeddingIndexType.Int64, 16, global::Embedding.Native.VectorWidth.Vector512) => (global::Embedding.Native.QuantizedBagKernel<long>)QuantizedBag4Bit_F32_I64_D16_V512,", set, StringComparison.Ordinal);

        // A float set says nothing about quantized tables (the base class answers None).
        Assert.DoesNotContain("Quantized", GeneratorHarness.Sources(GeneratorHarness.Run(Source))["Consumer.Models.ModelKernels.g.cs"], StringComparison.Ordinal);
    }

    [Fact]
    public void Generate_QuantizedWidthsSelectTheirKernelsNextToTheFloatOnes()
    {
        SortedDictionary<string, string> sources = GeneratorHarness.Sources(GeneratorHarness.Run(
            "using Embedding.Native;\n\nnamespace Consumer;\n\n[EmbeddingKernels(8, Quantized = QuantizedBitWidths.Four)]\npublic sealed partial class Kernels;\n"));

        Assert.Equal(
            ["Consumer.Kernels.Bag.F32.D8.g.cs", "Consumer.Kernels.Gather.32Bit.D8.g.cs", "Consumer.Kernels.QuantizedBag.F32.D8.g.cs", "Consumer.Kernels.ScatterAdd.F32.D8.g.cs", "Consumer.Kernels.g.cs"],
            sources.Keys);
        Assert.Equal(
            ["QuantizedBag4Bit_F32_I32_D8_V256", "QuantizedBag4Bit_F32_I32_D8_V128", "QuantizedBag4Bit_F32_I32_D8_Scalar", "QuantizedBag4Bit_F32_I64_D8_V256", "QuantizedBag4Bit_F32_I64_D8_V128", "QuantizedBag4Bit_F32_I64_D8_Scalar"],
            KernelNames(sources["Consumer.Kernels.QuantizedBag.F32.D8.g.cs"]));
    }

    [Fact]
    public void Model_QuantizedWidthsMirrorTheRuntime()
    {
        Type widths = typeof(EmbeddingKernelGenerator).Assembly.GetType("Embedding.Generators.Model.QuantizedWidths", throwOnError: true)!;
        object[] all = ((Array)widths.GetField("All")!.GetValue(null)!).Cast<object>().ToArray();
        string Text(object width, string property) => width.GetType().GetProperty(property)!.GetValue(width)!.ToString()!;
        int Number(object width, string property) => (int)width.GetType().GetProperty(property)!.GetValue(width)!;

        Assert.Equal(
            Enum.GetValues<Embedding.Native.QuantizedBitWidths>().Where(value => value is not (Embedding.Native.QuantizedBitWidths.None or Embedding.Native.QuantizedBitWidths.All)).Select(value => value.ToString()).Order(StringComparer.Ordinal),
            all.Select(width => Text(width, "EnumName")).Order(StringComparer.Ordinal));
        foreach (object width in all)
        {
            var bits = Enum.Parse<Embedding.Native.QuantizedBitWidths>(Text(width, "EnumName"));
            Assert.Equal((int)bits, Number(width, "Flag"));
            Assert.Equal((int)Enum.Parse<Embedding.Native.QuantizedBits>(Text(width, "EnumName")), Number(width, "Bits"));
            Assert.Equal(new Embedding.Native.QuantizedRowLayout((Embedding.Native.QuantizedBits)(int)bits, 1).CodesPerByte, Number(width, "CodesPerByte"));
            Assert.True(Enum.TryParse<Embedding.Native.KernelOperation>(Text(width, "Operation"), out _), Text(width, "Operation"));
            Assert.NotNull(typeof(Embedding.Native.KernelOperation).Assembly.GetType("Embedding.Native." + Text(width, "RowType")));
        }
    }

    [Fact]
    public void Generate_NamesFilesAfterTypeAloneInGlobalNamespace()
    {
        GeneratorRunResult result = GeneratorHarness.Run("using Embedding.Native;\n\n[EmbeddingKernels(8)]\npublic sealed partial class GlobalKernels;\n");

        Assert.Equal(
            ["GlobalKernels.g.cs", "GlobalKernels.Gather.32Bit.D8.g.cs", "GlobalKernels.ScatterAdd.F32.D8.g.cs", "GlobalKernels.Bag.F32.D8.g.cs"],
            result.GeneratedSources.Select(source => source.HintName));
        Assert.DoesNotContain("namespace", GeneratorHarness.Sources(result)["GlobalKernels.g.cs"], StringComparison.Ordinal);
    }

    [Fact]
    public void Generate_StartsEveryFileWithAutoGeneratedHeader()
    {
        foreach ((string hintName, string text) in GeneratorHarness.Sources(GeneratorHarness.Run(Source)))
        {
            Assert.True(text.StartsWith("// <auto-generated/>\n#nullable enable\n", StringComparison.Ordinal), hintName);
        }
    }

    [Fact]
    public void Generate_MarksKernelSetAndEveryKernelAsGeneratedCode()
    {
        SortedDictionary<string, string> sources = GeneratorHarness.Sources(GeneratorHarness.Run(Source));
        string attribute = "[global::System.CodeDom.Compiler.GeneratedCode(\"Embedding.Generators\", \"" + GeneratorHarness.GeneratorVersion + "\")]";

        Assert.Contains(attribute + "\npublic sealed partial class ModelKernels : global::Embedding.Native.EmbeddingKernelSet", sources["Consumer.Models.ModelKernels.g.cs"], StringComparison.Ordinal);
        foreach ((string hintName, string text) in sources.Where(source => source.Key.Contains(".Gather.", StringComparison.Ordinal)))
        {
            int kernels = Regex.Count(text, @"private static void Gather_32Bit_I(32|64)_D\d+_(V128|V256|V512|Scalar)\(");
            Assert.True(kernels > 0, hintName);
            Assert.Equal(kernels, Regex.Count(text, Regex.Escape(attribute) + @"\n\s+private static void Gather_"));
            Assert.Equal(kernels, Regex.Count(text, @"/// <summary>Gather, 32-bit elements \(float32\), int(32|64) indices, dim \d+: "));
        }

        foreach ((string hintName, string text) in sources.Where(source => source.Key.Contains(".ScatterAdd.", StringComparison.Ordinal)))
        {
            int kernels = Regex.Count(text, @"private static void ScatterAdd_F32_I(32|64)_D\d+_(V128|V256|V512|Scalar)\(");
            Assert.True(kernels > 0, hintName);
            Assert.Equal(kernels, Regex.Count(text, Regex.Escape(attribute) + @"\n\s+private static void ScatterAdd_"));
            Assert.Equal(kernels, Regex.Count(text, @"/// <summary>Scatter-add, f32 gradient, int(32|64) indices, dim \d+: "));
        }

        SortedDictionary<string, string> quantized = GeneratorHarness.Sources(GeneratorHarness.Run(QuantizedSource));
        Assert.Contains(attribute + "\npublic sealed partial class QuantizedKernels : global::Embedding.Native.EmbeddingKernelSet", quantized["Consumer.Models.QuantizedKernels.g.cs"], StringComparison.Ordinal);
        foreach ((string hintName, string text) in quantized.Where(source => source.Key.Contains(".QuantizedBag.", StringComparison.Ordinal)))
        {
            int kernels = Regex.Count(text, @"private static void QuantizedBag(Byte|4Bit|2Bit)_F32_I(32|64)_D\d+_(V128|V256|V512|Scalar)\(");
            Assert.True(kernels > 0, hintName);
            Assert.Equal(kernels, Regex.Count(text, Regex.Escape(attribute) + @"\n\s+private static void QuantizedBag"));
            Assert.Equal(kernels, Regex.Count(text, @"/// <summary>Quantized bag, (8|4|2)-bit rows, int(32|64) indices, dim \d+: "));
        }
    }

    [Fact]
    public void Generate_EmitsKernelPerIndexTypeForEachWidthThatFits()
    {
        SortedDictionary<string, string> sources = GeneratorHarness.Sources(GeneratorHarness.Run(Source));

        Assert.Equal(["Gather_32Bit_I32_D5_V128", "Gather_32Bit_I32_D5_Scalar", "Gather_32Bit_I64_D5_V128", "Gather_32Bit_I64_D5_Scalar"], KernelNames(sources["Consumer.Models.ModelKernels.Gather.32Bit.D5.g.cs"]));
        Assert.Equal(8, KernelNames(sources["Consumer.Models.ModelKernels.Gather.32Bit.D16.g.cs"]).Length);
        Assert.Equal(["ScatterAdd_F32_I32_D5_V128", "ScatterAdd_F32_I32_D5_Scalar", "ScatterAdd_F32_I64_D5_V128", "ScatterAdd_F32_I64_D5_Scalar"], KernelNames(sources["Consumer.Models.ModelKernels.ScatterAdd.F32.D5.g.cs"]));
    }

    [Fact]
    public void Generate_EmitsQuantizedKernelsForTheWidthsThatFitTheColumnsOfWholeCodeBytes()
    {
        SortedDictionary<string, string> sources = GeneratorHarness.Sources(GeneratorHarness.Run(QuantizedSource));
        string[] Names(int dim, string operation) =>
            KernelNames(sources["Consumer.Models.QuantizedKernels.QuantizedBag.F32.D" + dim + ".g.cs"]).Where(name => name.StartsWith(operation + "_", StringComparison.Ordinal) && name.Contains("_I32_", StringComparison.Ordinal)).ToArray();

        // D = 3: no whole byte of 2-bit codes holds a Vector128's four columns; 8-bit codes neither (three columns).
        Assert.Equal(["QuantizedBagByte_F32_I32_D3_Scalar"], Names(3, "QuantizedBagByte"));
        Assert.Equal(["QuantizedBag2Bit_F32_I32_D3_Scalar"], Names(3, "QuantizedBag2Bit"));
        // D = 6: 2-bit rows cover columns 0..3 with vectors (one byte), the last two are padding-byte columns.
        Assert.Equal(["QuantizedBag2Bit_F32_I32_D6_V128", "QuantizedBag2Bit_F32_I32_D6_Scalar"], Names(6, "QuantizedBag2Bit"));
        Assert.Equal(["QuantizedBag4Bit_F32_I32_D16_V512", "QuantizedBag4Bit_F32_I32_D16_V256", "QuantizedBag4Bit_F32_I32_D16_V128", "QuantizedBag4Bit_F32_I32_D16_Scalar"], Names(16, "QuantizedBag4Bit"));
    }

    [Fact]
    public void Generate_QuantizedTailsOverlapAndPaddingCodesRunThroughTheScalarOperators()
    {
        SortedDictionary<string, string> sources = GeneratorHarness.Sources(GeneratorHarness.Run(QuantizedSource));
        string d6 = Kernel(sources["Consumer.Models.QuantizedKernels.QuantizedBag.F32.D6.g.cs"], "QuantizedBag4Bit_F32_I32_D6_V128");
        string d6TwoBit = Kernel(sources["Consumer.Models.QuantizedKernels.QuantizedBag.F32.D6.g.cs"], "QuantizedBag2Bit_F32_I64_D6_V128");
        string d130 = Kernel(sources["Consumer.Models.QuantizedKernels.QuantizedBag.F32.D130.g.cs"], "QuantizedBagByte_F32_I32_D130_V128");
        string d16 = Kernel(sources["Consumer.Models.QuantizedKernels.QuantizedBag.F32.D16.g.cs"], "QuantizedBagByte_F32_I32_D16_V512");

        // 4-bit D = 6 at Vector128: columns 0..3 and 2..5 (overlapping by two, starting on a byte), no scalar columns.
        Assert.Contains("a1 = Codes128.MultiplyAdd(a1, Codes128.Codes4(ref codes, 2), in factors);", d6, StringComparison.Ordinal);
        Assert.DoesNotContain("CodesScalar", d6, StringComparison.Ordinal);
        // 2-bit D = 6 at Vector128: one vector, then columns 4 and 5 (padding codes share their byte) one at a time.
        Assert.Contains("a0 = Codes128.MultiplyAdd(a0, Codes128.Codes2(ref codes, 0), in factors);", d6TwoBit, StringComparison.Ordinal);
        Assert.Contains("a1 = CodesScalar.MultiplyAdd(a1, CodesScalar.Codes2(ref codes, 5), in factors);", d6TwoBit, StringComparison.Ordinal);
        Assert.Contains("CodesScalar.Store(rows.Finish<float, CodesScalar>(a0, count), ref target, 4);", d6TwoBit, StringComparison.Ordinal);
        // D = 130 at Vector128: 32 whole vectors, a loop over 8 blocks of four, then the last vector overlapping by two.
        Assert.Contains("for (nuint block = 0; block < 128; block += 16)", d130, StringComparison.Ordinal);
        Assert.Contains("a3 = Codes128.MultiplyAdd(a3, Codes128.Codes8(ref codes, block + 12), in factors);", d130, StringComparison.Ordinal);
        Assert.Contains("a0 = Codes128.MultiplyAdd(a0, Codes128.Codes8(ref codes, 126), in factors);", d130, StringComparison.Ordinal);
        // D = 16 at Vector512: exactly one accumulator (the generic kernel computes its four, clamped onto the row).
        Assert.Contains("Floats512 a0 = Codes512.Zero;", d16, StringComparison.Ordinal);
        Assert.DoesNotContain("a1", d16, StringComparison.Ordinal);
        // Blocks as wide as the generic kernel's: eight at Vector512 for rows over four vectors (D = 1000: a loop of 128 columns).
        Assert.Contains("for (nuint block = 0; block < 896; block += 128)", Kernel(sources["Consumer.Models.QuantizedKernels.QuantizedBag.F32.D1000.g.cs"], "QuantizedBagByte_F32_I32_D1000_V512"), StringComparison.Ordinal);
        Assert.Contains("for (nuint block = 0; block < 16; block += 4)", Kernel(sources["Consumer.Models.QuantizedKernels.QuantizedBag.F32.D16.g.cs"], "QuantizedBagByte_F32_I32_D16_Scalar"), StringComparison.Ordinal);
        // The row size is a constant of the kernel.
        Assert.Contains("var rows = new Quantized8I32(in packed, 16, in indices, in starts, numBags, paddingIndex, in mapping, in perSampleWeights, mean);", d16, StringComparison.Ordinal);
    }

    [Fact]
    public void Generate_ScatterAddTailsAreMaskedNeverOverlapping()
    {
        SortedDictionary<string, string> sources = GeneratorHarness.Sources(GeneratorHarness.Run(Source));
        string text = sources["Consumer.Models.ModelKernels.ScatterAdd.F32.D130.g.cs"];

        Assert.DoesNotContain("overlapping", text, StringComparison.Ordinal);
        Assert.Contains("Row512.AddMasked(ref gradient, ref target, 114, 14);", text, StringComparison.Ordinal);
        Assert.Contains("Row512.MultiplyAddMasked(ref gradient, scale, ref target, 114, 14);", text, StringComparison.Ordinal);
        Assert.DoesNotContain("Masked", sources["Consumer.Models.ModelKernels.ScatterAdd.F32.D16.g.cs"], StringComparison.Ordinal);
    }

    /// <summary>
    /// Each pass over a bag inlines the position bookkeeping and a block of multiply-adds: more than three copies in one
    /// kernel exhausted the JIT's inlining budget (a call and spills in the hot loop), so whole blocks loop.
    /// </summary>
    [Fact]
    public void Generate_QuantizedKernelsHoldAtMostThreePassesOverTheBag()
    {
        foreach ((string name, string text) in GeneratorHarness.Sources(GeneratorHarness.Run(QuantizedSource)).Where(source => source.Key.Contains(".QuantizedBag.", StringComparison.Ordinal)))
        {
            foreach (string kernel in KernelNames(text))
            {
                int passes = Regex.Count(Kernel(text, kernel), @"int count = 0;");
                Assert.True(passes is >= 1 and <= 3, $"{name}: {kernel} has {passes} passes over the bag in its body");
            }
        }
    }

    [Fact]
    public void Generate_KernelsCallTheRuntimeOperatorsAndEmitNoArithmetic()
    {
        SortedDictionary<string, string> sources = GeneratorHarness.Sources(GeneratorHarness.Run(Source));
        foreach ((string name, string text) in sources.Concat(GeneratorHarness.Sources(GeneratorHarness.Run(QuantizedSource))))
        {
            if (!name.Contains(".D", StringComparison.Ordinal))
            {
                continue;
            }

            foreach (string fragment in Arithmetic)
            {
                Assert.False(text.Contains(fragment, StringComparison.Ordinal), name + " emits " + fragment + ": kernel arithmetic belongs to the runtime's operators.");
            }
        }

        Assert.Contains("Row512.Copy(ref source, ref target, 0);", sources["Consumer.Models.ModelKernels.Gather.32Bit.D16.g.cs"], StringComparison.Ordinal);
        Assert.Contains("a0 = FusedWeightedSum.Accumulate<Floats512, float, Lanes512>(a0, Lanes512.Load(ref source, block), w);", sources["Consumer.Models.ModelKernels.Bag.F32.D1000.g.cs"], StringComparison.Ordinal);
        Assert.Contains("Lanes512.Store(Mean.Finish<Floats512, float, Lanes512>(a0, count), ref target, block);", sources["Consumer.Models.ModelKernels.Bag.F32.D1000.g.cs"], StringComparison.Ordinal);

        string quantized = GeneratorHarness.Sources(GeneratorHarness.Run(QuantizedSource))["Consumer.Models.QuantizedKernels.QuantizedBag.F32.D1000.g.cs"];
        Assert.Contains("ref byte codes = ref rows.Row(i, ref count, out var factors);", quantized, StringComparison.Ordinal);
        Assert.Contains("a0 = Codes512.MultiplyAdd(a0, Codes512.Codes4(ref codes, block), in factors);", quantized, StringComparison.Ordinal);
        Assert.Contains("Codes512.Store(rows.Finish<Floats512, Codes512>(a0, count), ref target, block);", quantized, StringComparison.Ordinal);
    }

    /// <summary>What a kernel file must not contain: loads, stores, arithmetic and conversions are the runtime operators' business.</summary>
    private static readonly string[] Arithmetic =
    [
        "LoadUnsafe", "StoreUnsafe", "FusedMultiplyAdd", "MultiplyAddEstimate", "ConditionalSelect", "CompilerServices.Unsafe", "file static class",
        " + x", " * w", "Widen", "Narrow", "Math.", "(double)", "(float)", " >> ", " << ", " & 0x",
    ];

    [Fact]
    public void Generate_EmitsNoPathsOrTimestamps()
    {
        string[] machineText =
        [
            GeneratorHarness.SourceRoot,
            Path.GetTempPath(),
            AppContext.BaseDirectory,
            Environment.CurrentDirectory,
            Environment.UserName,
            Environment.MachineName,
        ];

        foreach ((string hintName, string text) in GeneratorHarness.Sources(GeneratorHarness.Run(Source)))
        {
            foreach (string unstable in machineText.Where(value => value.Length > 2))
            {
                Assert.False(text.Contains(unstable, StringComparison.OrdinalIgnoreCase), $"{hintName} contains '{unstable}'");
            }

            Assert.DoesNotMatch(@"[A-Za-z]:\\|(^|[\s""'])/(home|tmp|work|usr|opt|var|Users|root)/", text);
            Assert.DoesNotMatch(@"\b(19|20)\d\d-\d\d-\d\d\b|\b\d\d:\d\d:\d\d\b", text);
            Assert.DoesNotContain(DateTime.UtcNow.Year.ToString(System.Globalization.CultureInfo.InvariantCulture), text, StringComparison.Ordinal);
            Assert.DoesNotContain("\r", text, StringComparison.Ordinal);
        }
    }

    [Fact]
    public void Generate_IsDeterministic()
    {
        SortedDictionary<string, string> first = GeneratorHarness.Sources(GeneratorHarness.Run(Source));
        SortedDictionary<string, string> second = GeneratorHarness.Sources(GeneratorHarness.Run(Source));

        Assert.Equal(first, second);
    }

    [Fact]
    public void Generate_SameOutputWhateverTheOrderOfDimensions()
    {
        SortedDictionary<string, string> ascending = GeneratorHarness.Sources(GeneratorHarness.Run(Source));
        SortedDictionary<string, string> shuffled = GeneratorHarness.Sources(GeneratorHarness.Run(
            Source.Replace("[EmbeddingKernels(5, 16, 130, 1000)]", "[EmbeddingKernels(1000, 16, 5, 130)]", StringComparison.Ordinal)));

        Assert.Equal(ascending, shuffled);
    }

    public static TheoryData<string, string> ConsumerShapes => new()
    {
        { "plain", "[EmbeddingKernels(8, 33)]\npublic sealed partial class Kernels;\n" },
        { "own members and a private constructor", "[EmbeddingKernels(8, 33)]\npublic sealed partial class Kernels\n{\n    private Kernels()\n    {\n    }\n\n    public static int Answer => 42;\n}\n" },
        { "consumer type named Unsafe", "internal static class Unsafe\n{\n}\n\n[EmbeddingKernels(8, 33)]\npublic sealed partial class Kernels;\n" },
        { "consumer type named Vector128", "internal sealed class Vector128\n{\n}\n\n[EmbeddingKernels(8, 33)]\npublic sealed partial class Kernels;\n" },
        { "consumer type named MathF", "internal static class MathF\n{\n}\n\n[EmbeddingKernels(8, 33)]\npublic sealed partial class Kernels;\n" },
        { "consumer type named Vector512", "internal sealed class Vector512\n{\n}\n\n[EmbeddingKernels(8, 33)]\npublic sealed partial class Kernels;\n" },
        { "constructor with parameters", "[EmbeddingKernels(8, 33)]\npublic sealed partial class Kernels\n{\n    public Kernels(int seed) => Seed = seed;\n\n    public int Seed { get; }\n}\n" },
        { "primary constructor", "[EmbeddingKernels(8, 33)]\npublic sealed partial class Kernels(int seed)\n{\n    public int Seed => seed;\n}\n" },
    };

    /// <summary>For any class the generator accepts without an error, the generated code must compile.</summary>
    [Theory]
    [MemberData(nameof(ConsumerShapes))]
    public void Generate_ReportsErrorOrCompilesCleanly(string shape, string declaration)
    {
        (Compilation output, var generatorDiagnostics, GeneratorRunResult result) =
            GeneratorHarness.RunAndUpdate("using Embedding.Native;\n\nnamespace Consumer;\n\n" + declaration);

        Assert.Null(result.Exception);
        if (generatorDiagnostics.Any(d => d.Severity == DiagnosticSeverity.Error))
        {
            Assert.Empty(result.GeneratedSources);
            return;
        }

        Diagnostic[] errors = output.GetDiagnostics().Where(d => d.Severity == DiagnosticSeverity.Error).ToArray();
        Assert.True(errors.Length == 0, $"{shape}: the generator reported no error, but its output does not compile:\n{string.Join("\n", errors.Take(5))}");
    }

    [Theory]
    [MemberData(nameof(BaselineCases))]
    public void Generate_MatchesBaseline(string caseName, string source)
    {
        SortedDictionary<string, string> actual = GeneratorHarness.Sources(GeneratorHarness.Run(source));

        if (Environment.GetEnvironmentVariable("EMB_UPDATE_BASELINES") == "1")
        {
            string directory = Path.Combine(SourceBaselines(), caseName);
            if (Directory.Exists(directory))
            {
                Directory.Delete(directory, recursive: true);
            }

            Directory.CreateDirectory(directory);
            foreach ((string hintName, string text) in actual)
            {
                File.WriteAllText(Path.Combine(directory, hintName + ".txt"), GeneratorHarness.NormaliseVersion(text));
            }

            return;
        }

        string expectedDirectory = Path.Combine(AppContext.BaseDirectory, "Baselines", caseName);
        Assert.True(Directory.Exists(expectedDirectory), $"no baselines for '{caseName}'; run with EMB_UPDATE_BASELINES=1 to create them");
        string[] expectedNames = Directory.GetFiles(expectedDirectory, "*.txt")
            .Select(path => Path.GetFileName(path)[..^".txt".Length])
            .Order(StringComparer.Ordinal)
            .ToArray();
        Assert.Equal(expectedNames, actual.Keys.ToArray());

        foreach ((string hintName, string text) in actual)
        {
            string expected = File.ReadAllText(Path.Combine(expectedDirectory, hintName + ".txt")).ReplaceLineEndings("\n");
            string normalised = GeneratorHarness.NormaliseVersion(text);
            Assert.True(
                expected == normalised,
                $"{caseName}/{hintName} differs from its baseline (EMB_UPDATE_BASELINES=1 rewrites it); first difference at line {FirstDifferentLine(expected, normalised)}");
        }
    }

    private static string[] KernelNames(string text) =>
        Regex.Matches(text, @"private static void ((Gather|ScatterAdd|QuantizedBag\w+?)_\w+)\(").Select(match => match.Groups[1].Value).ToArray();

    /// <summary>The text of one kernel: from its signature to the next kernel's doc comment.</summary>
    private static string Kernel(string file, string name)
    {
        int start = file.IndexOf("private static void " + name + "(", StringComparison.Ordinal);
        Assert.True(start >= 0, name + " not emitted");
        int end = file.IndexOf("/// <summary>", start, StringComparison.Ordinal);
        return end < 0 ? file[start..] : file[start..end];
    }

    private static int FirstDifferentLine(string expected, string actual)
    {
        string[] left = expected.Split('\n');
        string[] right = actual.Split('\n');
        int line = 0;
        while (line < left.Length && line < right.Length && left[line] == right[line])
        {
            line++;
        }

        return line + 1;
    }

    private static string SourceBaselines([CallerFilePath] string thisFile = "") =>
        Path.Combine(Path.GetDirectoryName(thisFile)!, "Baselines");
}
