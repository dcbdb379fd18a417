using System;

namespace Embedding.Native;

/// <summary>
/// The one place a run-time <see cref="VectorWidth"/> picks among an operation's generic kernels,
/// one per compile-time width type. Each generic kernel hands its four instantiations here, so a new
/// width is one more rung here and one more argument, not a switch per operation.
/// </summary>
/// <remarks>
/// Plain delegate arguments rather than a static abstract <c>At&lt;TWidth&gt;()</c> on an interface
/// generic over the delegate type: NativeAOT's scanner cannot lay out such an interface over a
/// shared (reference-type) instantiation. Cached static delegates make the arguments free.
/// </remarks>
internal static class WidthLadder
{
    /// <summary>The kernel whose body uses <paramref name="width"/>.</summary>
    public static TKernel Select<TKernel>(VectorWidth width, TKernel vector512, TKernel vector256, TKernel vector128, TKernel scalar)
        where TKernel : Delegate => width switch
        {
            VectorWidth.Vector512 => vector512,
            VectorWidth.Vector256 => vector256,
            VectorWidth.Vector128 => vector128,
            _ => scalar,
        };
}
