using System;

namespace Embedding.Native;

/// <summary>The generic kernels of one operation, one per vector width type; the ladder picks among them.</summary>
/// <typeparam name="TKernel">The operation's delegate type.</typeparam>
internal interface IGenericKernels<TKernel>
    where TKernel : Delegate
{
    /// <summary>The generic kernel whose body uses <typeparamref name="TWidth"/>.</summary>
    static abstract TKernel At<TWidth>()
        where TWidth : IVectorWidth;
}

/// <summary>
/// The one place a run-time <see cref="VectorWidth"/> becomes a compile-time width type. Every generic
/// kernel is reached through it, so a new width is one more rung here, not a switch per operation.
/// </summary>
internal static class WidthLadder
{
    /// <summary>The generic kernel of <typeparamref name="TKernels"/> for <paramref name="width"/>.</summary>
    public static TKernel Select<TKernel, TKernels>(VectorWidth width)
        where TKernel : Delegate
        where TKernels : IGenericKernels<TKernel> => width switch
        {
            VectorWidth.Vector512 => TKernels.At<Width512>(),
            VectorWidth.Vector256 => TKernels.At<Width256>(),
            VectorWidth.Vector128 => TKernels.At<Width128>(),
            _ => TKernels.At<WidthScalar>(),
        };
}
