using System.Globalization;

namespace Embedding.Native;

/// <summary>
/// The error texts shared by the C# exceptions and the C ABI's last-error message, so both
/// boundaries explain a failure in the same words.
/// </summary>
internal static class EmbeddingErrors
{
    /// <summary>torch's own assertion text for a bad padding_idx, kept verbatim for parity.</summary>
    public const string PaddingIndexOutOfRange = "Padding_idx must be within num_embeddings";

    public static string IndexOutOfRange(long position, long value, long rows) => rows == 0
        ? string.Create(CultureInfo.InvariantCulture, $"index {value} at position {position} is out of range: the table has no rows")
        : string.Create(CultureInfo.InvariantCulture, $"index {value} at position {position} is out of range: valid indices are 0 to {rows - 1} (num_embeddings = {rows})");

    public static string PaddingIndex(long paddingIndex, long rows) =>
        string.Create(CultureInfo.InvariantCulture, $"{PaddingIndexOutOfRange}: padding_idx {paddingIndex} is not in [-{rows}, {rows})");
}
