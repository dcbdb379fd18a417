/*
 * lsan_probe.c — a deliberate leak on a call path through libembedding_native.so, to prove that
 * tests/c/lsan.supp hides the NativeAOT runtime's start-up block and not a leak made by a call
 * into the library. Built with -fsanitize=address and run by tests/c/check_lsan.sh.
 *
 *   1. emb_version_number() starts the runtime, which leaves its one-time block (lsan.supp).
 *   2. After emb_set_num_threads(2), a lookup large enough to be split makes the library start
 *      its worker thread. The runtime prepares the thread with pthread_attr_setdetachstate,
 *      which this program defines (the library's call binds to the executable's definition
 *      first): while armed it allocates PROBE_BYTES, drops the pointer and makes the real call.
 *      The lost block's allocation stack is the one a leak in the library's own code would have:
 *      malloc, then the library's frames (thread start, WorkerPool, the emb_embedding export),
 *      then main.
 *
 * Prints "lsan_probe: leaked ..." when the block was lost; exits 3 when the library never called
 * the function while armed (the runtime changed: interpose another one).
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#include "embedding_native.h"

/* An odd size, so the report line is this block's and no other. */
#define PROBE_BYTES 4093

static int armed;
static int leaked;

int pthread_attr_setdetachstate(pthread_attr_t* attr, int state)
{
    if (armed && !leaked) {
        volatile char* block = malloc(PROBE_BYTES);
        if (block != NULL) {
            block[0] = 1;
            leaked = 1;
        }
        block = NULL; /* the only pointer: the block is now unreachable */
    }
    int (*real)(pthread_attr_t*, int) = (int (*)(pthread_attr_t*, int))dlsym(RTLD_NEXT, "pthread_attr_setdetachstate");
    return real == NULL ? EINVAL : real(attr, state);
}

/* Large enough for two threads: 2 * 4 * DIM * COUNT bytes of traffic is over twice the
 * library's minimum per thread (EmbeddingThreads.MinBytesPerThread, 256 KiB). */
enum { ROWS = 16, DIM = 64, COUNT = 4096 };

int main(void)
{
    setvbuf(stdout, NULL, _IONBF, 0); /* LeakSanitizer ends the process without flushing stdio */
    printf("runtime started, library version %d\n", (int)emb_version_number());
    static float weight[ROWS * DIM];
    static int64_t indices[COUNT];
    static float out[COUNT * DIM];
    for (int i = 0; i < COUNT; i++) {
        indices[i] = i % ROWS;
    }
    int32_t status = emb_set_num_threads(2);
    if (status == EMB_OK) {
        armed = 1;
        status = emb_embedding(weight, EMB_DTYPE_FLOAT32, ROWS, DIM, indices, EMB_DTYPE_INT64, COUNT, out, COUNT * DIM);
        armed = 0;
    }
    if (status != EMB_OK) {
        fprintf(stderr, "lsan_probe: %s: %s\n", emb_status_string(status), emb_last_error());
        return 1;
    }
    if (!leaked) {
        fprintf(stderr, "lsan_probe: the library started no worker through pthread_attr_setdetachstate\n");
        return 3;
    }
    printf("lsan_probe: leaked %d bytes inside emb_embedding (worker start)\n", PROBE_BYTES);
    return 0;
}
