using System.Collections.Generic;
using System.Collections.Immutable;
using System.Linq;
using System.Threading;
using Embedding.Generators.Helpers;
using Embedding.Generators.Model;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;
using Microsoft.CodeAnalysis.CSharp.Syntax;

namespace Embedding.Generators
{
    public sealed partial class EmbeddingKernelGenerator
    {
        /// <summary>Turns one attributed class into a <see cref="KernelSetSpec"/> and its diagnostics.</summary>
        internal static class Parser
        {
            public static ParseResult Parse(GeneratorAttributeSyntaxContext context, CancellationToken cancellationToken)
            {
                var type = (INamedTypeSymbol)context.TargetSymbol;
                var declaration = (TypeDeclarationSyntax)context.TargetNode;
                var diagnostics = new List<DiagnosticInfo>();
                Location typeLocation = declaration.Identifier.GetLocation();
                string typeName = type.Name;

                if (!declaration.Modifiers.Any(SyntaxKind.PartialKeyword))
                {
                    diagnostics.Add(DiagnosticInfo.Create(DiagnosticDescriptors.TypeNotPartial, typeLocation, typeName));
                }

                bool hasOwnBase = type.BaseType is { SpecialType: not SpecialType.System_Object } baseType
                    && baseType.ToDisplayString() != "Embedding.Native.EmbeddingKernelSet";
                bool hasParameterlessConstructor = type.InstanceConstructors.Any(constructor => constructor.Parameters.Length == 0);
                if (type.ContainingType is not null || type.IsGenericType || type.IsStatic || type.IsAbstract || type.IsRecord || type.IsFileLocal || hasOwnBase || !hasParameterlessConstructor)
                {
                    diagnostics.Add(DiagnosticInfo.Create(DiagnosticDescriptors.UnsupportedTypeShape, typeLocation, typeName));
                }

                cancellationToken.ThrowIfCancellationRequested();

                AttributeData attribute = context.Attributes[0];
                Location attributeLocation = attribute.ApplicationSyntaxReference?.GetSyntax(cancellationToken).GetLocation() ?? typeLocation;
                ImmutableArray<TypedConstant> values = attribute.ConstructorArguments.Length == 1
                    && attribute.ConstructorArguments[0] is { Kind: TypedConstantKind.Array, IsNull: false } argument
                    ? argument.Values
                    : ImmutableArray<TypedConstant>.Empty;

                var dimensions = new SortedSet<int>();
                foreach (TypedConstant value in values)
                {
                    if (value.Value is not int dimension)
                    {
                        continue;
                    }

                    if (dimension <= 0)
                    {
                        diagnostics.Add(DiagnosticInfo.Create(DiagnosticDescriptors.DimensionNotPositive, attributeLocation, Text(dimension), typeName));
                    }
                    else if (dimension > KernelShapeLimits.MaxDimension)
                    {
                        diagnostics.Add(DiagnosticInfo.Create(DiagnosticDescriptors.DimensionTooLarge, attributeLocation, Text(dimension), typeName, Text(KernelShapeLimits.MaxDimension)));
                    }
                    else if (!dimensions.Add(dimension))
                    {
                        diagnostics.Add(DiagnosticInfo.Create(DiagnosticDescriptors.DuplicateDimension, attributeLocation, Text(dimension), typeName));
                    }
                }

                if (values.Length == 0)
                {
                    diagnostics.Add(DiagnosticInfo.Create(DiagnosticDescriptors.NoDimensions, attributeLocation, typeName));
                }

                TableTypeSet types = TableTypeSet.Default;
                QuantizedWidthSet quantized = QuantizedWidthSet.None;
                foreach (KeyValuePair<string, TypedConstant> named in attribute.NamedArguments)
                {
                    if (named.Key == "Types" && named.Value.Value is int flags)
                    {
                        types = new TableTypeSet(flags);
                    }
                    else if (named.Key == "Quantized" && named.Value.Value is int widths)
                    {
                        quantized = new QuantizedWidthSet(widths);
                    }
                }

                if (types.Flags == 0 && quantized.IsEmpty)
                {
                    diagnostics.Add(DiagnosticInfo.Create(DiagnosticDescriptors.NoTableTypes, attributeLocation, typeName));
                }
                else if ((types.Flags & ~TableTypeSet.AllFlags) != 0)
                {
                    diagnostics.Add(DiagnosticInfo.Create(DiagnosticDescriptors.UnknownTableTypes, attributeLocation, typeName, Hex(types.Flags)));
                }

                if ((quantized.Flags & ~QuantizedWidthSet.AllFlags) != 0)
                {
                    diagnostics.Add(DiagnosticInfo.Create(DiagnosticDescriptors.UnknownQuantizedWidths, attributeLocation, typeName, Hex(quantized.Flags)));
                }

                bool emittable = dimensions.Count > 0 && !diagnostics.Any(d => d.Descriptor.DefaultSeverity == DiagnosticSeverity.Error);
                KernelSetSpec? spec = emittable
                    ? new KernelSetSpec(
                        type.ContainingNamespace.IsGlobalNamespace ? null : type.ContainingNamespace.ToDisplayString(),
                        typeName,
                        Accessibility(type),
                        new EquatableArray<int>(dimensions),
                        types,
                        quantized)
                    : null;
                return new ParseResult(spec, new EquatableArray<DiagnosticInfo>(diagnostics));
            }

            private static string Accessibility(INamedTypeSymbol type) =>
                type.DeclaredAccessibility == Microsoft.CodeAnalysis.Accessibility.Public ? "public" : "internal";

            private static string Text(int value) => value.ToString(System.Globalization.CultureInfo.InvariantCulture);

            private static string Hex(int flags) => "0x" + flags.ToString("X", System.Globalization.CultureInfo.InvariantCulture);
        }

        /// <summary>The limit shared with the runtime through <c>KernelShape</c>.</summary>
        private static class KernelShapeLimits
        {
            public const int MaxDimension = Embedding.Native.KernelShape.MaxSpecialisedDimension;
        }
    }
}
