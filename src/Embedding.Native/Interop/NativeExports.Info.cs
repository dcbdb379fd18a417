using System;
using System.Linq;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Text;

namespace Embedding.Native.Interop;

/// <summary>C-ABI exports: version, build information and error reporting.</summary>
internal static unsafe partial class NativeExports
{
    public const int VersionMajor = 0;
    public const int VersionMinor = 1;
    public const int VersionPatch = 0;

    [UnmanagedCallersOnly(EntryPoint = "emb_version_number")]
    public static int VersionNumber() => VersionMajor * 10000 + VersionMinor * 100 + VersionPatch;

    [UnmanagedCallersOnly(EntryPoint = "emb_version_string")]
    public static byte* VersionString() => Utf8Constants.Version;

    [UnmanagedCallersOnly(EntryPoint = "emb_isa_tier")]
    public static int IsaTierCompiled() => (int)IsaTiers.Compiled;

    [UnmanagedCallersOnly(EntryPoint = "emb_cpu_tier")]
    public static int IsaTierCpu() => (int)IsaTiers.Cpu;

    [UnmanagedCallersOnly(EntryPoint = "emb_cpu_missing")]
    public static byte* CpuMissing(int tier) => tier switch
    {
        (int)IsaTier.X86_64_V2 => Utf8Constants.CpuMissingV2,
        (int)IsaTier.X86_64_V3 => Utf8Constants.CpuMissingV3,
        (int)IsaTier.X86_64_V4 => Utf8Constants.CpuMissingV4,
        (int)IsaTier.Arm64Neon => Utf8Constants.CpuMissingArm64,
        _ => Utf8("not a tier: expected an emb_isa value other than EMB_ISA_GENERIC"u8),
    };

    [UnmanagedCallersOnly(EntryPoint = "emb_build_info")]
    public static byte* BuildInfo() => Utf8Constants.BuildInfo;

    [UnmanagedCallersOnly(EntryPoint = "emb_status_string")]
    public static byte* StatusString(int status) => (EmbStatus)status switch
    {
        EmbStatus.Ok => Utf8("EMB_OK"u8),
        EmbStatus.InvalidArgument => Utf8("EMB_ERROR_INVALID_ARGUMENT"u8),
        EmbStatus.NullPointer => Utf8("EMB_ERROR_NULL_POINTER"u8),
        EmbStatus.SizeOverflow => Utf8("EMB_ERROR_SIZE_OVERFLOW"u8),
        EmbStatus.IndexOutOfRange => Utf8("EMB_ERROR_INDEX_OUT_OF_RANGE"u8),
        EmbStatus.UnsupportedDtype => Utf8("EMB_ERROR_UNSUPPORTED_DTYPE"u8),
        EmbStatus.BufferTooSmall => Utf8("EMB_ERROR_BUFFER_TOO_SMALL"u8),
        EmbStatus.NotSupported => Utf8("EMB_ERROR_NOT_SUPPORTED"u8),
        EmbStatus.InvalidFile => Utf8("EMB_ERROR_INVALID_FILE"u8),
        EmbStatus.Io => Utf8("EMB_ERROR_IO"u8),
        EmbStatus.Internal => Utf8("EMB_ERROR_INTERNAL"u8),
        _ => Utf8("unknown status"u8),
    };

    [UnmanagedCallersOnly(EntryPoint = "emb_last_error")]
    public static byte* LastErrorMessage() => LastError.Pointer;

    [UnmanagedCallersOnly(EntryPoint = "emb_last_index_error")]
    public static int LastIndexError(long* position, long* value)
    {
        if (!LastError.TryGetIndex(out long badPosition, out long badValue))
        {
            return 0;
        }

        // NULL skips that output; nothing else is checked, so this call never fails or changes the last error.
        if (position != null)
        {
            *position = badPosition;
        }

        if (value != null)
        {
            *value = badValue;
        }

        return 1;
    }

    /// <summary>u8 literals live in the image and end with a NUL, so their address is a static C string.</summary>
    private static byte* Utf8(ReadOnlySpan<byte> literal) => (byte*)Unsafe.AsPointer(ref MemoryMarshal.GetReference(literal));

    /// <summary>Strings built once and kept for the life of the process.</summary>
    private static class Utf8Constants
    {
        public static readonly byte* Version = Allocate($"{VersionMajor}.{VersionMinor}.{VersionPatch}");

        public static readonly byte* BuildInfo = Allocate(BuildInfoJson());

        public static readonly byte* CpuMissingV2 = Allocate(IsaTiers.CpuMissing(IsaTier.X86_64_V2));
        public static readonly byte* CpuMissingV3 = Allocate(IsaTiers.CpuMissing(IsaTier.X86_64_V3));
        public static readonly byte* CpuMissingV4 = Allocate(IsaTiers.CpuMissing(IsaTier.X86_64_V4));
        public static readonly byte* CpuMissingArm64 = Allocate(IsaTiers.CpuMissing(IsaTier.Arm64Neon));

        private static string BuildInfoJson()
        {
            IsaTier tier = IsaTiers.Compiled;
            string dims = string.Join(",", EmbeddingKernelRegistry.Sets.ToArray()
                .SelectMany(set => set.Dimensions.ToArray()).Distinct().Order());
            string runtime = RuntimeFeature.IsDynamicCodeSupported ? "jit" : "nativeaot";
            return $$"""{"name":"embedding_native","version":"{{VersionMajor}}.{{VersionMinor}}.{{VersionPatch}}","tier":"{{IsaTiers.Name(tier)}}","tier_id":{{(int)tier}},"vector_width":{{(int)KernelDispatch.BestWidth}},"runtime":"{{runtime}}","architecture":"{{RuntimeInformation.ProcessArchitecture.ToString().ToLowerInvariant()}}","dtypes":["float32"],"table_dtypes":{{TableDtypes}},"index_dtypes":["int32","int64"],"quantized_bits":[8,4,2],"specialised_dims":[{{dims}}],"torch_kernels":"{{TorchCpuCapabilities.Current.ToString().ToLowerInvariant()}}","fused_products":{{(TorchProducts.AreFused ? "true" : "false")}},"fused_lookups":{{(TorchProducts.LookupsAreFused ? "true" : "false")}}}""";
        }

        /// <summary>
        /// The table types each operation takes; "dtypes" lists those every operation takes. torch 1.13
        /// itself has no bfloat16 EmbeddingBag on the CPU, so the bag forward never will. "quantize" is the
        /// float tables <c>emb_quantize</c> packs into the 8-, 4- and 2-bit rows of "quantized_bits".
        /// </summary>
        private const string TableDtypes =
            "{\"embedding\":[\"float32\",\"float64\",\"float16\",\"bfloat16\"],"
            + "\"embedding_backward\":[\"float32\",\"float64\",\"float16\",\"bfloat16\"],"
            + "\"renorm\":[\"float32\",\"float64\",\"float16\",\"bfloat16\"],"
            + "\"embedding_bag\":[\"float32\",\"float64\",\"float16\"],"
            + "\"embedding_bag_backward\":[\"float32\",\"float64\",\"float16\"],\"optimizers\":[\"float32\",\"float64\",\"float16\",\"bfloat16\"],"
            + "\"quantize\":[\"float32\",\"float16\"]}";

        private static byte* Allocate(string text)
        {
            int length = Encoding.UTF8.GetByteCount(text);
            byte* memory = (byte*)NativeMemory.Alloc((nuint)length + 1);
            Encoding.UTF8.GetBytes(text, new Span<byte>(memory, length));
            memory[length] = 0;
            return memory;
        }
    }
}
