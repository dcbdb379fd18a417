using System;
using System.Linq;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.Text;

namespace Embedding.Generators.Helpers
{
    /// <summary>
    /// A diagnostic captured without any reference to a <see cref="Compilation"/> or syntax tree,
    /// so it can live in a cached pipeline value. Turned back into a <see cref="Diagnostic"/> only
    /// when it is reported.
    /// </summary>
    internal sealed record DiagnosticInfo(
        DiagnosticDescriptor Descriptor,
        string FilePath,
        TextSpan Span,
        LinePositionSpan LineSpan,
        EquatableArray<string> MessageArguments)
    {
        public static DiagnosticInfo Create(DiagnosticDescriptor descriptor, Location? location, params string[] arguments)
        {
            FileLinePositionSpan lines = location?.GetLineSpan() ?? default;
            return new DiagnosticInfo(
                descriptor,
                lines.Path ?? string.Empty,
                location?.SourceSpan ?? default,
                lines.Span,
                new EquatableArray<string>(arguments));
        }

        public Diagnostic ToDiagnostic(Compilation compilation)
        {
            SyntaxTree? tree = FilePath.Length == 0 ? null : compilation.SyntaxTrees.FirstOrDefault(t => t.FilePath == FilePath);
            Location location = tree is not null ? Location.Create(tree, Span)
                : FilePath.Length == 0 ? Location.None : Location.Create(FilePath, Span, LineSpan);
            object[] arguments = new object[MessageArguments.Count];
            for (int i = 0; i < arguments.Length; i++)
            {
                arguments[i] = MessageArguments[i];
            }

            return Diagnostic.Create(Descriptor, location, arguments);
        }
    }
}
