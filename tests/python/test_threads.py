"""Concurrent calls from Python threads: correct results and per-thread error messages."""

import threading

import numpy as np
import torch

import embedding_native as en
from helpers import bits, indices, table

THREADS = 4
CALLS = 200


def run_threads(work):
    failures = []
    barrier = threading.Barrier(THREADS)

    def body(thread):
        try:
            barrier.wait()
            work(thread)
        except BaseException as e:  # noqa: BLE001 - reported to the main thread
            failures.append((thread, e))

    threads = [threading.Thread(target=body, args=(t,)) for t in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not failures, failures


def test_concurrent_lookups_share_one_table():
    w = table(5000, 96)
    wt = torch.from_numpy(w)
    cases = [indices((64, 8), 5000, np.int64 if t % 2 else np.int32, seed=t) for t in range(THREADS)]
    expected = [bits(w)[idx] for idx in cases]

    def work(thread):
        idx = cases[thread]
        for call in range(CALLS):
            result = en.embedding(idx, w) if call % 2 else en.embedding(torch.from_numpy(idx), wt)
            assert np.array_equal(bits(result), expected[thread])

    run_threads(work)


def test_concurrent_errors_report_their_own_thread():
    w = table(10, 3)

    def work(thread):
        for _ in range(CALLS):
            if thread % 2:
                assert np.array_equal(bits(en.embedding(np.array([thread]), w)), bits(w)[[thread]])
            else:
                bad = 100 + thread
                try:
                    en.embedding(np.array([0, bad]), w)
                except IndexError as e:
                    assert "index %d at position 1" % bad in e.detail, e.detail
                else:
                    raise AssertionError("no IndexError")

    run_threads(work)
