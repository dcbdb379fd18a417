using System;
using System.Threading;
using Xunit;

namespace Embedding.Native.Tests;

/// <summary>The persistent worker pool: every piece runs exactly once, failures surface, nothing is allocated per call.</summary>
public sealed class WorkerPoolTests
{
    private struct MarkPieces : IParallelWork
    {
        public int[] Hits;
        public int[] Threads;

        public readonly void Execute(int part, int parts)
        {
            Interlocked.Increment(ref Hits[part]);
            Threads[part] = Environment.CurrentManagedThreadId;
        }
    }

    private struct FailOnPiece : IParallelWork
    {
        public int Failing;

        public readonly void Execute(int part, int parts)
        {
            if (part == Failing)
            {
                throw new InvalidOperationException("piece " + part);
            }
        }
    }

    [Theory]
    [InlineData(1, 1)]
    [InlineData(2, 1)]
    [InlineData(2, 2)]
    [InlineData(4, 3)]
    [InlineData(37, 2)]
    [InlineData(1000, 4)]
    public void Run_ExecutesEveryPieceExactlyOnce(int parts, int threads)
    {
        var work = new MarkPieces { Hits = new int[parts], Threads = new int[parts] };
        WorkerPool.Run(ref work, parts, threads);
        Assert.All(work.Hits, hits => Assert.Equal(1, hits));
    }

    [Fact]
    public void Run_UsesOnlyTheCallingThreadForOneThread()
    {
        var work = new MarkPieces { Hits = new int[64], Threads = new int[64] };
        WorkerPool.Run(ref work, 64, threads: 1);
        Assert.All(work.Threads, id => Assert.Equal(Environment.CurrentManagedThreadId, id));
    }

    [Fact]
    public void Run_SurfacesAFailingPieceAndStaysUsable()
    {
        // The work struct must live on a stack while the pool holds a pointer to it, as the library's callers keep
        // it: a local captured by the lambda would sit in a heap closure, which a GC may move mid-call (this test
        // once saw a stale Failing and no exception).
        var error = Assert.Throws<AggregateException>(() =>
        {
            var failing = new FailOnPiece { Failing = 5 };
            WorkerPool.Run(ref failing, 16, 2);
        });
        Assert.IsType<InvalidOperationException>(error.InnerException);

        var work = new MarkPieces { Hits = new int[16], Threads = new int[16] };
        WorkerPool.Run(ref work, 16, 2);
        Assert.All(work.Hits, hits => Assert.Equal(1, hits));
    }

    [Fact]
    public void Run_AllocatesNothingAfterWarmUp()
    {
        int[] hits = new int[8], threads = new int[8];
        var warmUp = new MarkPieces { Hits = hits, Threads = threads };
        WorkerPool.Run(ref warmUp, 8, 2);
        Assert.Equal(0, TestAssert.AllocatedBytes(() =>
        {
            // A local of the lambda (on its stack), not a captured one: see Run_SurfacesAFailingPieceAndStaysUsable.
            var work = new MarkPieces { Hits = hits, Threads = threads };
            for (int i = 0; i < 100; i++)
            {
                WorkerPool.Run(ref work, 8, 2);
            }
        }));
    }

    [Fact]
    public void Count_RejectsValuesBelowOne()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => EmbeddingThreads.Count = 0);
        Assert.Equal(1, EmbeddingThreads.For(usefulBytes: 1L << 40, maxParts: 1));
    }
}
