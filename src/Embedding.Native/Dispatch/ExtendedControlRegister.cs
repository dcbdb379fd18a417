using System;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics.X86;

namespace Embedding.Native;

/// <summary>
/// Reads XCR0, the register in which the operating system says which register state (SSE, AVX,
/// AVX-512) it saves and restores; a CPU's AVX is only usable when both CPUID and XCR0 say so.
/// .NET has no XGETBV intrinsic, so on Linux and macOS five bytes of machine code run from a
/// page mapped for the purpose; Windows answers the same question through
/// <c>GetEnabledXStateFeatures</c>.
/// </summary>
internal static unsafe class ExtendedControlRegister
{
    // xor ecx, ecx / xgetbv / shl rdx, 32 / or rax, rdx / ret: XCR0 as one 64-bit value, no
    // arguments, so the same bytes serve every x86-64 calling convention.
    private static ReadOnlySpan<byte> XgetbvXcr0 => [0x31, 0xC9, 0x0F, 0x01, 0xD0, 0x48, 0xC1, 0xE2, 0x20, 0x48, 0x09, 0xD0, 0xC3];

    private const int ProtRead = 1, ProtWrite = 2, ProtExec = 4, MapPrivate = 2;

    /// <summary>
    /// XCR0, or null with the reason when it cannot be read. Call only when CPUID reports
    /// OSXSAVE: without it XGETBV is an invalid instruction.
    /// </summary>
    public static ulong? TryReadXcr0(out string? failure)
    {
        failure = null;
        if (!X86Base.X64.IsSupported)
        {
            failure = "not an x86-64 process";
            return null;
        }

        if (OperatingSystem.IsWindows())
        {
            return TryReadOnWindows(out failure);
        }

        return OperatingSystem.IsLinux() || OperatingSystem.IsMacOS() || OperatingSystem.IsFreeBSD()
            ? TryReadWithStub(out failure)
            : Fail("no way to read XCR0 on this operating system", out failure);
    }

    private static ulong? TryReadOnWindows(out string? failure)
    {
        if (!NativeLibrary.TryLoad("kernel32.dll", out nint kernel32)
            || !NativeLibrary.TryGetExport(kernel32, "GetEnabledXStateFeatures", out nint export))
        {
            return Fail("kernel32!GetEnabledXStateFeatures is not available", out failure);
        }

        failure = null;
        return ((delegate* unmanaged<ulong>)export)();
    }

    private static ulong? TryReadWithStub(out string? failure)
    {
        nint libc = 0;
        foreach (string name in (ReadOnlySpan<string>)["libc.so.6", "/usr/lib/libSystem.B.dylib", "libc.so.7", "libc"])
        {
            if (NativeLibrary.TryLoad(name, out libc))
            {
                break;
            }
        }

        if (libc == 0
            || !NativeLibrary.TryGetExport(libc, "mmap", out nint mmapExport)
            || !NativeLibrary.TryGetExport(libc, "mprotect", out nint mprotectExport)
            || !NativeLibrary.TryGetExport(libc, "munmap", out nint munmapExport))
        {
            return Fail("the C library's mmap/mprotect/munmap could not be found", out failure);
        }

        var mmap = (delegate* unmanaged<nint, nuint, int, int, int, nint, nint>)mmapExport;
        var mprotect = (delegate* unmanaged<nint, nuint, int, int>)mprotectExport;
        var munmap = (delegate* unmanaged<nint, nuint, int>)munmapExport;

        int mapAnonymous = OperatingSystem.IsLinux() ? 0x20 : 0x1000;
        const nuint PageBytes = 4096;
        nint page = mmap(0, PageBytes, ProtRead | ProtWrite, MapPrivate | mapAnonymous, -1, 0);
        if (page == -1 || page == 0)
        {
            return Fail("mmap of one page failed", out failure);
        }

        try
        {
            // Written while writable, run only once read+execute: never writable and executable at once.
            XgetbvXcr0.CopyTo(new Span<byte>((void*)page, XgetbvXcr0.Length));
            if (mprotect(page, PageBytes, ProtRead | ProtExec) != 0)
            {
                return Fail("the operating system refused to make a page executable (mprotect PROT_EXEC)", out failure);
            }

            failure = null;
            return ((delegate* unmanaged<ulong>)page)();
        }
        finally
        {
            munmap(page, PageBytes);
        }
    }

    private static ulong? Fail(string reason, out string? failure)
    {
        failure = reason;
        return null;
    }
}
