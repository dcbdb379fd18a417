using System;
using System.IO;
using System.Linq;
using System.Reflection;
using System.Runtime.InteropServices;
using Embedding.Native.Interop;
using Xunit;

namespace Embedding.Native.Tests;

/// <summary>The C header and the library's exports, for the export tests that check one against the other.</summary>
internal static class HeaderDeclarations
{
    /// <summary>
    /// Asserts that each of <paramref name="names"/> is an <c>[UnmanagedCallersOnly]</c> entry point of
    /// <see cref="NativeExports"/> and that <c>embedding_native.h</c> declares it (<c>EMB_API int32_t name(</c>).
    /// </summary>
    public static void AssertExportedAndDeclared(params string[] names)
    {
        string header = Text();
        string[] exported = typeof(NativeExports)
            .GetMethods(BindingFlags.Public | BindingFlags.Static)
            .Select(method => method.GetCustomAttribute<UnmanagedCallersOnlyAttribute>()?.EntryPoint)
            .OfType<string>()
            .ToArray();
        foreach (string name in names)
        {
            Assert.Contains(name, exported);
            Assert.Contains($"EMB_API int32_t {name}(", header, StringComparison.Ordinal);
        }
    }

    /// <summary>The text of the repository's <c>embedding_native.h</c>.</summary>
    public static string Text() => File.ReadAllText(HeaderPath());

    /// <summary>The repository's header, found above the test binaries.</summary>
    private static string HeaderPath()
    {
        for (var directory = new DirectoryInfo(AppContext.BaseDirectory); directory is not null; directory = directory.Parent)
        {
            string candidate = Path.Combine(directory.FullName, "src", "Embedding.Native", "include", "embedding_native.h");
            if (File.Exists(candidate))
            {
                return candidate;
            }
        }

        throw new FileNotFoundException("embedding_native.h not found above the test directory");
    }
}
