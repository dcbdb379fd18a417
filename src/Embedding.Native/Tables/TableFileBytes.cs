using System;
using System.IO;
using Microsoft.Win32.SafeHandles;

namespace Embedding.Native;

/// <summary>Positioned reads of a table file's header bytes.</summary>
internal static class TableFileBytes
{
    /// <summary>Reads into <paramref name="buffer"/> from byte <paramref name="offset"/> until it is full or the file ends; returns the bytes read.</summary>
    public static int ReadAt(SafeFileHandle file, Span<byte> buffer, long offset)
    {
        int total = 0;
        while (total < buffer.Length)
        {
            int read = RandomAccess.Read(file, buffer[total..], offset + total);
            if (read == 0)
            {
                break;
            }

            total += read;
        }

        return total;
    }
}
