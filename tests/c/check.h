/*
 * check.h — the small test harness the C consumer tests share: one line per check, a final
 * "N passed, M failed" line, and helpers to prove what a failed call did (not) write.
 * Header-only: each test program is a single translation unit.
 */
#ifndef EMBEDDING_NATIVE_TESTS_CHECK_H
#define EMBEDDING_NATIVE_TESTS_CHECK_H

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "embedding_native.h"

#if defined(__GNUC__)
#  define PRINTF_LIKE(f, a) __attribute__((format(printf, f, a)))
#else
#  define PRINTF_LIKE(f, a)
#endif

/* ---- Reporting ------------------------------------------------------------------------------- */

static int passed;
static int failed;

/* Records one check and prints it as "PASS name" or "FAIL name". Returns ok, so a caller can
 * print more detail when it failed. Only the main thread calls it. */
static inline int PRINTF_LIKE(2, 3) check(int ok, const char* format, ...)
{
    va_list args;
    va_start(args, format);
    printf("%s ", ok ? "PASS" : "FAIL");
    vprintf(format, args);
    printf("\n");
    va_end(args);
    if (ok) {
        passed++;
    } else {
        failed++;
    }
    return ok;
}

/* Prints the details of a failed status check: what came back and the library's message. */
static inline void explain(int32_t got, int32_t want)
{
    printf("     got %s (%d), want %s (%d); last error: \"%s\"\n",
           emb_status_string(got), (int)got, emb_status_string(want), (int)want, emb_last_error());
}

/* Checks a refused overlap: EMB_ERROR_INVALID_ARGUMENT, a last error naming both arguments
 * ("<output> overlaps <other>;"), and `unchanged` (the caller's proof that nothing was written). */
static inline void expect_overlap_refused(int32_t status, const char* output, const char* other, int unchanged,
                                          const char* what)
{
    char expected[96];
    snprintf(expected, sizeof expected, "%s overlaps %s;", output, other);
    int named = strstr(emb_last_error(), expected) != NULL;
    if (!check(status == EMB_ERROR_INVALID_ARGUMENT && named && unchanged,
               "%s -> EMB_ERROR_INVALID_ARGUMENT naming %s and %s, nothing written", what, output, other)) {
        explain(status, EMB_ERROR_INVALID_ARGUMENT);
    }
}

/* ---- Helpers ----------------------------------------------------------------------------------- */

/* The byte every output buffer is filled with before a call, to prove what was (not) written. */
#define SENTINEL_BYTE 0xA5

static inline void* xmalloc(size_t bytes)
{
    /* malloc(0) may return NULL; ask for at least one byte so NULL always means failure. */
    void* memory = malloc(bytes == 0 ? 1 : bytes);
    if (memory == NULL) {
        fprintf(stderr, "out of memory (%zu bytes)\n", bytes);
        exit(2);
    }
    return memory;
}

static inline int all_bytes_are(const void* buffer, size_t bytes, unsigned char value)
{
    const unsigned char* p = (const unsigned char*)buffer;
    for (size_t i = 0; i < bytes; i++) {
        if (p[i] != value) {
            return 0;
        }
    }
    return 1;
}

/* A float with the given bit pattern (memcpy: the only aliasing-safe way in C99). */
static inline float float_from_bits(uint32_t bits)
{
    float value;
    memcpy(&value, &bits, sizeof value);
    return value;
}

static inline int has_message(void)
{
    const char* message = emb_last_error();
    return message != NULL && message[0] != '\0';
}

/* Bags of int64 indices with int64 offsets and no padding row: the emb_bags most tests build. */
static inline emb_bags int64_bags(const int64_t* indices, int64_t num_indices, const int64_t* offsets, int64_t num_offsets)
{
    emb_bags bags;
    memset(&bags, 0, sizeof bags);
    bags.indices = indices;
    bags.num_indices = num_indices;
    bags.index_dtype = EMB_DTYPE_INT64;
    bags.offsets = offsets;
    bags.offsets_dtype = EMB_DTYPE_INT64;
    bags.num_offsets = num_offsets;
    bags.padding_idx = EMB_NO_PADDING;
    return bags;
}

/* Prints the closing line and returns the process exit code. */
static inline int finish(void)
{
    printf("%d passed, %d failed\n", passed, failed);
    return failed == 0 ? 0 : 1;
}

#endif /* EMBEDDING_NATIVE_TESTS_CHECK_H */
