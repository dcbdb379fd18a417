using System;

namespace Embedding.Native;

/// <summary>
/// The parts of a <see cref="TorchSortOrder"/> sort finished in parallel: part <c>i</c> of the split is
/// piece <c>i</c>. The parts are disjoint ranges of the keys, and each is finished exactly as the
/// one-thread sort would, so the order is the same for every thread count.
/// </summary>
internal unsafe struct TorchSortWork : IParallelWork
{
    public ulong* Keys;
    public int Count;
    public SortPart* Parts;
    public int Shift;

    public readonly void Execute(int part, int parts) =>
        TorchSortOrder.Finish(new Span<ulong>(Keys, Count), Parts[part], Shift);
}
