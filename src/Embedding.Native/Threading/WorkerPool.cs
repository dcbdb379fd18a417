using System;
using System.Runtime.CompilerServices;
using System.Threading;

namespace Embedding.Native;

/// <summary>
/// The library's own persistent workers: <see cref="EmbeddingThreads.Count"/> - 1 background
/// threads that sleep on a semaphore between calls (they block, never spin) and the calling thread,
/// which always takes a share of the work itself. One call runs at a time; concurrent callers
/// queue on a lock, so the pool never oversubscribes the cores it was given.
/// </summary>
/// <remarks>
/// A call publishes a pointer to the caller's work struct (which lives on the caller's stack while
/// the caller waits) and a function pointer that runs one piece of it, so dispatch allocates
/// nothing. Pieces are claimed with an interlocked counter; results never depend on which thread
/// ran which piece, because each piece owns a disjoint part of the output.
/// </remarks>
internal static unsafe class WorkerPool
{
    private static readonly object s_callLock = new();
    private static readonly SemaphoreSlim s_start = new(0);
    private static readonly ManualResetEventSlim s_finished = new(false, spinCount: 0);
    private static Thread[] s_workers = [];

    private static delegate*<void*, int, int, void> s_run;
    private static void* s_work;
    private static int s_parts;
    private static int s_nextPart;
    private static int s_pending;
    private static Exception? s_failure;

    /// <summary>Runs <paramref name="work"/> in <paramref name="parts"/> pieces on up to <paramref name="threads"/> threads.</summary>
    /// <remarks><paramref name="work"/> must be a local on the caller's stack: the workers reach it through a raw pointer,
    /// which a GC would leave stale if the struct sat in a heap object (a field, or a local a lambda captures).</remarks>
    public static void Run<TWork>(ref TWork work, int parts, int threads)
        where TWork : struct, IParallelWork
    {
        if (parts <= 1 || threads <= 1)
        {
            for (int part = 0; part < parts; part++)
            {
                work.Execute(part, parts);
            }

            return;
        }

        lock (s_callLock)
        {
            EnsureWorkers(threads - 1);
            int helpers = Math.Min(threads, parts) - 1;
            s_run = &RunPiece<TWork>;
            s_work = Unsafe.AsPointer(ref work);
            s_parts = parts;
            s_nextPart = 0;
            s_failure = null;
            s_pending = helpers;
            s_finished.Reset();
            s_start.Release(helpers);

            ClaimPieces();

            if (helpers > 0)
            {
                s_finished.Wait();
            }

            s_work = null;
            if (s_failure is { } failure)
            {
                throw new AggregateException("A parallel piece failed.", failure);
            }
        }
    }

    private static void RunPiece<TWork>(void* work, int part, int parts)
        where TWork : struct, IParallelWork =>
        Unsafe.AsRef<TWork>(work).Execute(part, parts);

    /// <summary>Runs pieces until none is left; both the caller and the workers do this.</summary>
    private static void ClaimPieces()
    {
        int part;
        while ((part = Interlocked.Increment(ref s_nextPart) - 1) < s_parts)
        {
            try
            {
                s_run(s_work, part, s_parts);
            }
            catch (Exception exception)
            {
                Interlocked.CompareExchange(ref s_failure, exception, null);
            }
        }
    }

    private static void EnsureWorkers(int count)
    {
        if (s_workers.Length >= count)
        {
            return;
        }

        var workers = new Thread[count];
        Array.Copy(s_workers, workers, s_workers.Length);
        for (int i = s_workers.Length; i < count; i++)
        {
            workers[i] = new Thread(WorkerLoop) { IsBackground = true, Name = "Embedding.Native worker " + (i + 1) };
            workers[i].Start();
        }

        s_workers = workers;
    }

    private static void WorkerLoop()
    {
        while (true)
        {
            s_start.Wait();
            ClaimPieces();
            if (Interlocked.Decrement(ref s_pending) == 0)
            {
                s_finished.Set();
            }
        }
    }
}
