namespace Embedding.Native;

/// <summary>
/// One call's work, split into <c>parts</c> independent pieces that <see cref="WorkerPool"/> runs on
/// the calling thread and the pool's workers. A struct, passed by reference, so splitting a call
/// allocates nothing.
/// </summary>
internal interface IParallelWork
{
    /// <summary>Runs piece <paramref name="part"/> of <paramref name="parts"/>. Pieces must not write the same memory.</summary>
    void Execute(int part, int parts);
}
