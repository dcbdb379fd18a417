using System.Runtime.Intrinsics.X86;

namespace Embedding.Native;

/// <summary>
/// The raw answers the tier decision is made from: three CPUID registers and XCR0. A value type
/// so tests can inject the answers of CPUs and operating systems this machine is not.
/// </summary>
/// <param name="Leaf1Ecx">CPUID.(EAX=1):ECX — SSE3 … POPCNT, FMA, MOVBE, OSXSAVE, AVX, F16C.</param>
/// <param name="Leaf7Ebx">CPUID.(EAX=7,ECX=0):EBX — BMI1, AVX2, BMI2, AVX-512 F/DQ/CD/BW/VL (0 if leaf 7 is absent).</param>
/// <param name="Extended1Ecx">CPUID.(EAX=80000001h):ECX — LZCNT (0 if the leaf is absent).</param>
/// <param name="Xcr0">XCR0 (read with XGETBV), or null when OSXSAVE is off or it could not be read.</param>
/// <param name="Xcr0Failure">Why XCR0 is null although OSXSAVE is on, else null.</param>
internal readonly record struct CpuFeatures(uint Leaf1Ecx, uint Leaf7Ebx, uint Extended1Ecx, ulong? Xcr0, string? Xcr0Failure = null)
{
    /// <summary>CPUID.1:ECX bit 27: the OS enabled XSAVE, so XGETBV may be executed.</summary>
    public bool OsXsave => (Leaf1Ecx & (1u << 27)) != 0;

    /// <summary>Asks the running CPU (CPUID, as qemu-user emulates it under qemu) and the OS (XGETBV).</summary>
    public static CpuFeatures Read()
    {
        if (!X86Base.IsSupported)
        {
            return default;
        }

        uint maxLeaf = (uint)X86Base.CpuId(0, 0).Eax;
        uint maxExtendedLeaf = (uint)X86Base.CpuId(unchecked((int)0x80000000), 0).Eax;
        uint leaf1Ecx = (uint)X86Base.CpuId(1, 0).Ecx;
        uint leaf7Ebx = maxLeaf >= 7 ? (uint)X86Base.CpuId(7, 0).Ebx : 0;
        uint extended1Ecx = maxExtendedLeaf >= 0x80000001 ? (uint)X86Base.CpuId(unchecked((int)0x80000001), 0).Ecx : 0;

        ulong? xcr0 = null;
        string? failure = null;
        if ((leaf1Ecx & (1u << 27)) != 0)
        {
            xcr0 = ExtendedControlRegister.TryReadXcr0(out failure);
        }

        return new CpuFeatures(leaf1Ecx, leaf7Ebx, extended1Ecx, xcr0, failure);
    }
}
