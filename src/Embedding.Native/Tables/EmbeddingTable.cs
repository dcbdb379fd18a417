using System;
using System.IO;
using System.IO.MemoryMappedFiles;
using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace Embedding.Native;

/// <summary>
/// An embedding table in a <c>.npy</c> or <c>.safetensors</c> file, memory-mapped: nothing is read until
/// rows are used, so a table larger than memory serves lookups and bags, paged in from the file as
/// its rows are touched. The files are those <c>embedding_native.tables.save</c> writes (and numpy's
/// <c>np.save</c> or the safetensors library write for 2-D tables): float32, float64, float16,
/// bfloat16 (.safetensors only) or uint8 (packed quantized rows), little-endian, C order.
/// </summary>
/// <remarks>
/// <para><see cref="Open"/> validates the whole header before anything is mapped, as the Python reader
/// does, and refuses every malformed file with <see cref="InvalidDataException"/> naming the file and
/// the problem (wrong magic or version, a truncated header or one past the end of the file, a header
/// that is not a plain literal / JSON, an unsupported dtype, a shape that is not 2-D, Fortran order,
/// data offsets that disagree with the shape, truncated data or trailing bytes, misaligned data, a
/// tensor name missing or ambiguous, a size that overflows 64 bits).</para>
/// <para>Spans and pointers from a table are valid until <see cref="Dispose"/>; using one afterwards
/// reads unmapped memory. A read-only table's pages are mapped read-only: write through
/// <see cref="GetWritableRows{T}"/> / <see cref="AsSpan{T}"/> of a table opened writable. As with any
/// mapping, shrinking the file while it is mapped makes the vanished rows fault (SIGBUS).</para>
/// <para>Thread safety: lookups, bags and span reads may run on many threads at once; <see cref="Dispose"/>
/// must not overlap any other use.</para>
/// </remarks>
public sealed unsafe class EmbeddingTable : IDisposable
{
    private readonly MemoryMappedFile _file;
    private readonly MemoryMappedViewAccessor _view;
    private byte* _mapping;

    private EmbeddingTable(string path, TableFileLayout layout, bool writable, MemoryMappedFile file, MemoryMappedViewAccessor view, byte* mapping)
    {
        Path = path;
        ElementType = layout.ElementType;
        Rows = layout.Rows;
        Columns = layout.Columns;
        DataOffset = layout.DataOffset;
        IsWritable = writable;
        _file = file;
        _view = view;
        _mapping = mapping;
    }

    /// <summary>The file's path, as given to <see cref="Open"/>.</summary>
    public string Path { get; }

    /// <summary>The element type of the table.</summary>
    public TableElementType ElementType { get; }

    /// <summary>The number of rows (<c>num_embeddings</c>).</summary>
    public long Rows { get; }

    /// <summary>The number of columns (<c>embedding_dim</c>; bytes per packed row for a <see cref="TableElementType.UInt8"/> table).</summary>
    public long Columns { get; }

    /// <summary>The byte at which the table's data starts in the file.</summary>
    public long DataOffset { get; }

    /// <summary>Whether the mapping is writable (writes reach the file; <see cref="Flush"/> forces them to disk).</summary>
    public bool IsWritable { get; }

    /// <summary>The number of elements, <c>Rows × Columns</c>; may exceed <see cref="int.MaxValue"/>.</summary>
    public long ElementCount => Rows * Columns;

    /// <summary>The address of the first element (row-major, C order), or zero for a table with no elements.</summary>
    /// <exception cref="ObjectDisposedException">The table was disposed.</exception>
    public nint DataPointer
    {
        get
        {
            byte* data = Data;
            return ElementCount == 0 ? 0 : (nint)data;
        }
    }

    private byte* Data
    {
        get
        {
            ObjectDisposedException.ThrowIf(_mapping == null, this);
            return _mapping + DataOffset;
        }
    }

    /// <summary>
    /// Opens and maps the table in <paramref name="path"/>. A file that starts with the .npy magic string,
    /// or whose name ends in <c>.npy</c>, is read as .npy; any other as .safetensors.
    /// </summary>
    /// <param name="path">The file.</param>
    /// <param name="writable">Map it read-write (the file must be writable): writes to the table's memory reach the file.</param>
    /// <param name="name">For .safetensors: the tensor to map; null maps the file's only tensor. Must be null for .npy.</param>
    /// <returns>The mapped table; dispose it to unmap.</returns>
    /// <exception cref="InvalidDataException">The file is not a valid table file; the message names the file and the problem.</exception>
    /// <exception cref="ArgumentException"><paramref name="name"/> is given for a .npy file.</exception>
    /// <exception cref="IOException">The file cannot be opened or mapped (<see cref="FileNotFoundException"/>, ...).</exception>
    /// <exception cref="UnauthorizedAccessException">The file cannot be opened with the access asked for.</exception>
    public static EmbeddingTable Open(string path, bool writable = false, string? name = null)
    {
        ArgumentNullException.ThrowIfNull(path);
        // Others may read and write the file meanwhile, as with numpy's memmap; FileShare.Delete lets a
        // writer replace it by rename (the old mapping keeps the old contents).
        var stream = new FileStream(path, FileMode.Open, writable ? FileAccess.ReadWrite : FileAccess.Read, FileShare.ReadWrite | FileShare.Delete, bufferSize: 0);
        MemoryMappedFile? file = null;
        MemoryMappedViewAccessor? view = null;
        try
        {
            long fileSize = stream.Length;
            TableFileLayout layout = ReadLayout(stream, fileSize, path, name);
            MemoryMappedFileAccess access = writable ? MemoryMappedFileAccess.ReadWrite : MemoryMappedFileAccess.Read;
            file = MemoryMappedFile.CreateFromFile(stream, mapName: null, capacity: 0, access, HandleInheritability.None, leaveOpen: false);
            // The whole file, header included, as one view: its start is page-aligned, as the advice needs.
            view = file.CreateViewAccessor(0, fileSize, access);
            byte* mapping = null;
            view.SafeMemoryMappedViewHandle.AcquirePointer(ref mapping);
            MemoryAdvice.Random(mapping, (long)view.SafeMemoryMappedViewHandle.ByteLength);
            return new EmbeddingTable(path, layout, writable, file, view, mapping + view.PointerOffset);
        }
        catch
        {
            view?.Dispose();
            if (file is not null)
            {
                file.Dispose();
            }
            else
            {
                stream.Dispose();
            }

            throw;
        }
    }

    private static TableFileLayout ReadLayout(FileStream stream, long fileSize, string path, string? name)
    {
        Span<byte> magic = stackalloc byte[NpyHeader.Magic.Length];
        bool npy = (TableFileBytes.ReadAt(stream.SafeFileHandle, magic, 0) == magic.Length && magic.SequenceEqual(NpyHeader.Magic))
            || path.EndsWith(".npy", StringComparison.OrdinalIgnoreCase);
        if (!npy)
        {
            return SafetensorsHeader.Read(stream.SafeFileHandle, fileSize, name, path);
        }

        if (name is not null)
        {
            throw new ArgumentException($"'{path}': .npy files hold one unnamed table; a tensor name applies to .safetensors", nameof(name));
        }

        return NpyHeader.Read(stream.SafeFileHandle, fileSize, path);
    }

    /// <summary>
    /// The whole table as a read-only span of <typeparamref name="T"/>, for the span API
    /// (<see cref="EmbeddingPrimitives"/>) when it holds at most <see cref="int.MaxValue"/> elements.
    /// </summary>
    /// <typeparam name="T"><see cref="float"/>, <see cref="double"/>, <see cref="Half"/>, <see cref="Native.BFloat16"/> or <see cref="byte"/>, matching <see cref="ElementType"/>.</typeparam>
    /// <exception cref="ArgumentException"><typeparamref name="T"/> does not match the element type.</exception>
    /// <exception cref="NotSupportedException">The table holds more than <see cref="int.MaxValue"/> elements: use <see cref="GetRows{T}"/>, <see cref="Embedding{TIndex, T}"/>, <see cref="EmbeddingBag{TIndex, TOffset, T}"/> or the quantized lookups.</exception>
    public ReadOnlySpan<T> AsReadOnlySpan<T>()
        where T : unmanaged => WholeTable<T>(writable: false);

    /// <summary>The whole table as a writable span, for a table opened writable (optimizer steps, renorm).</summary>
    /// <inheritdoc cref="AsReadOnlySpan{T}"/>
    /// <exception cref="InvalidOperationException">The table was opened read-only.</exception>
    public Span<T> AsSpan<T>()
        where T : unmanaged => WholeTable<T>(writable: true);

    /// <summary>Rows <c>[firstRow, firstRow + rowCount)</c> as a read-only span: any part of a table of any size, up to <see cref="int.MaxValue"/> elements at a time.</summary>
    /// <typeparam name="T">The element type, as for <see cref="AsReadOnlySpan{T}"/>.</typeparam>
    /// <param name="firstRow">The first row.</param>
    /// <param name="rowCount">How many rows.</param>
    /// <exception cref="ArgumentOutOfRangeException">The rows are not all in the table, or hold more than <see cref="int.MaxValue"/> elements.</exception>
    /// <exception cref="ArgumentException"><typeparamref name="T"/> does not match the element type.</exception>
    public ReadOnlySpan<T> GetRows<T>(long firstRow, int rowCount)
        where T : unmanaged => RowSpan<T>(firstRow, rowCount, writable: false);

    /// <summary>Rows <c>[firstRow, firstRow + rowCount)</c> as a writable span, for a table opened writable.</summary>
    /// <inheritdoc cref="GetRows{T}"/>
    /// <exception cref="InvalidOperationException">The table was opened read-only.</exception>
    public Span<T> GetWritableRows<T>(long firstRow, int rowCount)
        where T : unmanaged => RowSpan<T>(firstRow, rowCount, writable: true);

    /// <summary>
    /// Looks up rows: <see cref="EmbeddingPrimitives.Embedding(ReadOnlySpan{long}, ReadOnlySpan{float}, int, Span{float})"/>
    /// on this table, whatever its size (row indices past 2^31 elements are served: no span covers the table).
    /// </summary>
    /// <remarks>
    /// <code>
    /// D = Columns
    /// for i in 0 .. indices.Length-1:
    ///     require 0 &lt;= indices[i] &lt; Rows              // else throws, nothing written
    ///     destination[i*D .. i*D+D-1] = table[indices[i]*D .. indices[i]*D+D-1]
    /// </code>
    /// Values are copied bit for bit.
    /// </remarks>
    /// <typeparam name="TIndex"><see cref="int"/> or <see cref="long"/>.</typeparam>
    /// <typeparam name="T">The table's element type: <see cref="float"/>, <see cref="double"/>, <see cref="Half"/> or <see cref="Native.BFloat16"/>.</typeparam>
    /// <param name="indices">Row indices.</param>
    /// <param name="destination">Receives <c>indices.Length × Columns</c> elements.</param>
    /// <exception cref="ArgumentOutOfRangeException">An index is negative or not below <see cref="Rows"/>.</exception>
    /// <exception cref="ArgumentException"><typeparamref name="T"/> does not match the element type; the destination is too short or overlaps the table or the indices.</exception>
    /// <exception cref="NotSupportedException">A packed (uint8) table, <see cref="Columns"/> above <see cref="int.MaxValue"/>, or <typeparamref name="TIndex"/> neither int nor long.</exception>
    public void Embedding<TIndex, T>(ReadOnlySpan<TIndex> indices, Span<T> destination)
        where TIndex : unmanaged, IBinaryInteger<TIndex>
        where T : unmanaged
    {
        int dimension = FloatDimension<T>(nameof(destination));
        CheckIndexType<TIndex>(nameof(TIndex));
        long required = (long)indices.Length * dimension;
        if (destination.Length < required)
        {
            throw new ArgumentException($"The destination holds {destination.Length} elements; {indices.Length} indices × {dimension} columns need {required}.", nameof(destination));
        }

        Span<byte> written = MemoryMarshal.AsBytes(destination[..(int)required]);
        ref readonly T table = ref First<T>();
        if (EmbeddingPrimitives.OverlapsTable(written, in Unsafe.As<T, byte>(ref Unsafe.AsRef(in table)), ElementCount * sizeof(T)) || written.Overlaps(MemoryMarshal.AsBytes(indices)))
        {
            throw new ArgumentException("The destination overlaps the table or the indices.", nameof(destination));
        }

        nint bad = EmbeddingPrimitives.Gather(
            (EmbeddingType)ElementType, in table, Rows, dimension,
            in MemoryMarshal.GetReference(indices), indices.Length, ref MemoryMarshal.GetReference(destination), KernelDispatch.BestWidth);
        if (bad >= 0)
        {
            long value = long.CreateTruncating(indices[(int)bad]);
            throw new ArgumentOutOfRangeException(nameof(indices), value, EmbeddingErrors.IndexOutOfRange(bad, value, Rows));
        }
    }

    /// <summary>
    /// Reduces bags of rows: <see cref="EmbeddingPrimitives.EmbeddingBag{TIndex, TOffset}(ReadOnlySpan{TIndex}, ReadOnlySpan{TOffset}, ReadOnlySpan{float}, int, EmbeddingBagMode, Span{float}, bool, ReadOnlySpan{float}, long, Span{long})"/>
    /// on this table (embeddingDim = <see cref="Columns"/>), whatever its size, with the same arithmetic, checks and results.
    /// </summary>
    /// <typeparam name="TIndex"><see cref="int"/> or <see cref="long"/>.</typeparam>
    /// <typeparam name="TOffset"><see cref="int"/> or <see cref="long"/>.</typeparam>
    /// <typeparam name="T">The table's element type: <see cref="float"/>, <see cref="double"/> or <see cref="Half"/> (torch 1.13 has no bfloat16 bag on the CPU).</typeparam>
    /// <param name="indices">The row of every position.</param>
    /// <param name="offsets">Where each bag starts.</param>
    /// <param name="mode">The reduction.</param>
    /// <param name="destination">Receives <c>bags × Columns</c> elements.</param>
    /// <param name="includeLastOffset">torch's CSR form: the last offset ends the last bag.</param>
    /// <param name="perSampleWeights">Empty, or one weight per position (<see cref="EmbeddingBagMode.Sum"/> only).</param>
    /// <param name="paddingIndex">A normalised row whose positions count for nothing, or <see cref="EmbeddingPrimitives.NoPadding"/>.</param>
    /// <param name="maxIndices">With <see cref="EmbeddingBagMode.Max"/>: receives <c>bags × Columns</c> rows, or empty for the values only.</param>
    /// <exception cref="ArgumentOutOfRangeException">An index or <paramref name="paddingIndex"/> is outside the table, or <paramref name="mode"/> is unknown.</exception>
    /// <exception cref="ArgumentException"><typeparamref name="T"/> does not match the element type; malformed offsets; per-sample weights with mean or max or of the wrong length; an output too short or overlapping an input.</exception>
    /// <exception cref="NotSupportedException">A packed (uint8) or bfloat16 table, <see cref="Columns"/> above <see cref="int.MaxValue"/>, or an index type neither int nor long.</exception>
    public void EmbeddingBag<TIndex, TOffset, T>(ReadOnlySpan<TIndex> indices, ReadOnlySpan<TOffset> offsets, EmbeddingBagMode mode, Span<T> destination, bool includeLastOffset = false, ReadOnlySpan<T> perSampleWeights = default, long paddingIndex = EmbeddingPrimitives.NoPadding, Span<long> maxIndices = default)
        where TIndex : unmanaged, IBinaryInteger<TIndex>
        where TOffset : unmanaged, IBinaryInteger<TOffset>
        where T : unmanaged
    {
        int dimension = FloatDimension<T>(nameof(destination));
        EmbeddingPrimitives.EmbeddingBagAtWidth(indices, offsets, in First<T>(), Rows, dimension, mode, destination, includeLastOffset, perSampleWeights, paddingIndex, maxIndices, KernelDispatch.BestWidth);
    }

    /// <summary>
    /// Bags of a packed quantized table (uint8 rows of <paramref name="layout"/>):
    /// <see cref="EmbeddingPrimitives.QuantizedEmbeddingBag{TIndex, TOffset}(ReadOnlySpan{TIndex}, ReadOnlySpan{TOffset}, ReadOnlySpan{byte}, QuantizedRowLayout, EmbeddingBagMode, Span{float}, bool, ReadOnlySpan{float}, long, ReadOnlySpan{int})"/>
    /// on this table, whatever its size, with the same arithmetic, checks and results.
    /// </summary>
    /// <typeparam name="TIndex"><see cref="int"/> or <see cref="long"/>.</typeparam>
    /// <typeparam name="TOffset"><see cref="int"/> or <see cref="long"/>.</typeparam>
    /// <param name="indices">The row (or, pruned, the mapping entry) of every position.</param>
    /// <param name="offsets">Where each bag starts.</param>
    /// <param name="layout">The rows' code width and dimension; its <see cref="QuantizedRowLayout.RowBytes"/> must equal <see cref="Columns"/>.</param>
    /// <param name="mode"><see cref="EmbeddingBagMode.Sum"/> or <see cref="EmbeddingBagMode.Mean"/>.</param>
    /// <param name="destination">Receives <c>bags × layout.Dimension</c> floats.</param>
    /// <param name="includeLastOffset">torch's CSR form.</param>
    /// <param name="perSampleWeights">Empty, or one float weight per position (sum only).</param>
    /// <param name="paddingIndex">An index whose positions count for nothing, or <see cref="EmbeddingPrimitives.NoPadding"/>.</param>
    /// <param name="compressedIndicesMapping">Empty, or the pruned table's mapping from index to row (-1: pruned).</param>
    /// <exception cref="NotSupportedException">The table holds floats, not packed rows (use <see cref="EmbeddingBag{TIndex, TOffset, T}"/>); max mode.</exception>
    /// <exception cref="ArgumentException">The layout's row size is not <see cref="Columns"/>; the arguments the span overload refuses.</exception>
    /// <exception cref="ArgumentOutOfRangeException">An index, mapping entry or padding index out of range.</exception>
    public void QuantizedEmbeddingBag<TIndex, TOffset>(ReadOnlySpan<TIndex> indices, ReadOnlySpan<TOffset> offsets, QuantizedRowLayout layout, EmbeddingBagMode mode, Span<float> destination, bool includeLastOffset = false, ReadOnlySpan<float> perSampleWeights = default, long paddingIndex = EmbeddingPrimitives.NoPadding, ReadOnlySpan<int> compressedIndicesMapping = default)
        where TIndex : unmanaged, IBinaryInteger<TIndex>
        where TOffset : unmanaged, IBinaryInteger<TOffset>
    {
        CheckPacked(layout);
        EmbeddingPrimitives.QuantizedEmbeddingBag(indices, offsets, in First<byte>(), ElementCount, layout, mode, destination, includeLastOffset, perSampleWeights, paddingIndex, compressedIndicesMapping, KernelDispatch.BestWidth);
    }

    /// <summary>
    /// Looks up rows of a packed quantized table, dequantized:
    /// <see cref="EmbeddingPrimitives.QuantizedEmbedding{TIndex}(ReadOnlySpan{TIndex}, ReadOnlySpan{byte}, QuantizedRowLayout, Span{float}, ReadOnlySpan{int})"/> on this table, whatever its size.
    /// </summary>
    /// <typeparam name="TIndex"><see cref="int"/> or <see cref="long"/>.</typeparam>
    /// <param name="indices">Row indices (or, pruned, mapping entries).</param>
    /// <param name="layout">The rows' code width and dimension; its <see cref="QuantizedRowLayout.RowBytes"/> must equal <see cref="Columns"/>.</param>
    /// <param name="destination">Receives <c>indices.Length × layout.Dimension</c> floats.</param>
    /// <param name="compressedIndicesMapping">Empty, or the pruned table's mapping.</param>
    /// <exception cref="NotSupportedException">The table holds floats, not packed rows (use <see cref="Embedding{TIndex, T}"/>).</exception>
    /// <exception cref="ArgumentException">The layout's row size is not <see cref="Columns"/>; the arguments the span overload refuses.</exception>
    /// <exception cref="ArgumentOutOfRangeException">An index or mapping entry out of range.</exception>
    public void QuantizedEmbedding<TIndex>(ReadOnlySpan<TIndex> indices, QuantizedRowLayout layout, Span<float> destination, ReadOnlySpan<int> compressedIndicesMapping = default)
        where TIndex : unmanaged, IBinaryInteger<TIndex>
    {
        CheckPacked(layout);
        EmbeddingPrimitives.QuantizedEmbedding(indices, in First<byte>(), ElementCount, layout, destination, compressedIndicesMapping, KernelDispatch.BestWidth);
    }

    /// <summary>Writes the table's changed pages to the file and waits for the write (msync). A read-only table has nothing to write: a no-op.</summary>
    /// <exception cref="ObjectDisposedException">The table was disposed.</exception>
    /// <exception cref="IOException">The system could not write the pages.</exception>
    public void Flush()
    {
        ObjectDisposedException.ThrowIf(_mapping == null, this);
        if (IsWritable)
        {
            _view.Flush();
        }
    }

    /// <summary>Unmaps the table and closes the file. Writes to a writable table stay in the file (the system writes them back; <see cref="Flush"/> first to wait for it). Safe to call twice.</summary>
    public void Dispose()
    {
        if (_mapping == null)
        {
            return;
        }

        _mapping = null;
        _view.SafeMemoryMappedViewHandle.ReleasePointer();
        _view.Dispose();
        _file.Dispose();
    }

    private ref readonly T First<T>()
        where T : unmanaged => ref ElementCount == 0 ? ref Unsafe.NullRef<T>() : ref Unsafe.AsRef<T>(Data);

    private Span<T> WholeTable<T>(bool writable)
        where T : unmanaged
    {
        if (ElementCount > int.MaxValue)
        {
            throw new NotSupportedException($"'{Path}' holds {ElementCount} elements, more than a span can ({int.MaxValue}); use GetRows for a range of rows, or the table's own lookups (Embedding, EmbeddingBag, QuantizedEmbedding, QuantizedEmbeddingBag)");
        }

        return RowSpan<T>(0, (int)Math.Min(Rows, int.MaxValue), writable, wholeTable: true);
    }

    private Span<T> RowSpan<T>(long firstRow, int rowCount, bool writable, bool wholeTable = false)
        where T : unmanaged
    {
        CheckElement<T>("T");
        if (writable && !IsWritable)
        {
            throw new InvalidOperationException($"'{Path}' is mapped read-only; open it with writable: true to write to it");
        }

        byte* data = Data;
        if (wholeTable)
        {
            // Columns == 0 may come with any number of rows: the span is then empty.
            return ElementCount == 0 ? default : new Span<T>(data, (int)ElementCount);
        }

        ArgumentOutOfRangeException.ThrowIfNegative(firstRow);
        ArgumentOutOfRangeException.ThrowIfNegative(rowCount);
        if (firstRow > Rows - rowCount)
        {
            throw new ArgumentOutOfRangeException(nameof(rowCount), $"rows [{firstRow}, {firstRow + rowCount}) are not all in the table of {Rows} rows");
        }

        long elements = rowCount * Columns;
        if (elements > int.MaxValue)
        {
            throw new ArgumentOutOfRangeException(nameof(rowCount), $"{rowCount} rows of {Columns} columns are {elements} elements, more than a span can hold ({int.MaxValue})");
        }

        return elements == 0 ? default : new Span<T>(data + firstRow * Columns * sizeof(T), (int)elements);
    }

    /// <summary>Checks that the table holds packed rows of <paramref name="layout"/>'s size.</summary>
    private void CheckPacked(QuantizedRowLayout layout)
    {
        if (ElementType != TableElementType.UInt8)
        {
            throw new NotSupportedException($"'{Path}' holds {TableFileLayout.Name(ElementType)} elements, not packed quantized rows: use Embedding / EmbeddingBag");
        }

        if (layout.RowBytes != Columns)
        {
            throw new ArgumentException($"'{Path}' has packed rows of {Columns} bytes; a {(int)layout.Bits}-bit row of dimension {layout.Dimension} has {layout.RowBytes}", nameof(layout));
        }

        ObjectDisposedException.ThrowIf(_mapping == null, this);
    }

    /// <summary>The row length for the float lookups, after checking <typeparamref name="T"/> against the table.</summary>
    private int FloatDimension<T>(string parameter)
        where T : unmanaged
    {
        if (ElementType == TableElementType.UInt8)
        {
            throw new NotSupportedException($"'{Path}' holds packed quantized rows (uint8): look them up with QuantizedEmbedding / QuantizedEmbeddingBag");
        }

        CheckElement<T>(parameter);
        if (Columns > int.MaxValue)
        {
            throw new NotSupportedException($"'{Path}' has rows of {Columns} elements; rows longer than {int.MaxValue} elements are not supported");
        }

        ObjectDisposedException.ThrowIf(_mapping == null, this);
        return (int)Columns;
    }

    private void CheckElement<T>(string parameter)
        where T : unmanaged
    {
        TableElementType? type = typeof(T) == typeof(float) ? TableElementType.Float32
            : typeof(T) == typeof(double) ? TableElementType.Float64
            : typeof(T) == typeof(Half) ? TableElementType.Float16
            : typeof(T) == typeof(BFloat16) ? TableElementType.BFloat16
            : typeof(T) == typeof(byte) ? TableElementType.UInt8
            : null;
        if (type != ElementType)
        {
            throw new ArgumentException($"'{Path}' holds {TableFileLayout.Name(ElementType)} elements, not {typeof(T).Name}", parameter);
        }
    }

    private static void CheckIndexType<TIndex>(string typeParameter)
    {
        if (typeof(TIndex) != typeof(int) && typeof(TIndex) != typeof(long))
        {
            throw new NotSupportedException($"{typeParameter} must be int or long, not {typeof(TIndex).Name} (torch takes int32 and int64 indices).");
        }
    }
}
