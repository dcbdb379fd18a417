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
        var failing = new FailOnPiece { Failing = 5 };
        var error = Assert.Throws<AggregateException>(() => WorkerPool.Run(ref failing, 16, 2));
        Assert.IsType<InvalidOperationException>(error.InnerException);

        var work = new MarkPieces { Hits = new int[16], Threads = new int[16] };
        WorkerPool.Run(ref work, 16, 2);
        Assert.All(work.Hits, hits => Assert.Equal(1, hits));
    }

    [Fact]
    public void Run_AllocatesNothingAfterWarmUp()
    {
        var work = new MarkPieces { Hits = new int[8], Threads = new int[8] };
        WorkerPool.Run(ref work, 8, 2);
        Assert.Equal(0, TestAssert.AllocatedBytes(() =>
        {
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
