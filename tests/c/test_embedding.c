/*
 * test_embedding.c — the C ABI of libembedding_native, tested from C through the header alone.
 *
 * Every lookup is compared byte for byte (memcmp) with a plain C loop, every error path is
 * checked for its exact status, a non-empty emb_last_error() and an output left untouched, and
 * the per-thread error state is checked from several threads at once.
 *
 * Prints one line per check and ends with "N passed, M failed"; exits 1 if anything failed.
 * It is also built with AddressSanitizer and UndefinedBehaviorSanitizer (make test-c). Note that
 * ASan cannot see writes made by the library's managed code, so out-of-bounds writes are caught
 * here with sentinels around the output instead.
 */
#define _POSIX_C_SOURCE 200809L /* pthread_barrier_t */

#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "embedding_native.h"
#include "check.h"

/* A small deterministic generator, so every run (and every thread) sees the same data. */
static uint32_t next_random(uint32_t* state)
{
    *state = *state * 1664525u + 1013904223u;
    return *state;
}

/* Fills a table with distinct bit patterns, including the values a careless copy would change:
 * -0.0, a signalling NaN with a payload, a quiet NaN with a payload, infinities and subnormals.
 * Bit-for-bit equality is the contract, so the comparison below is memcmp, not ==. */
static void fill_table(float* weight, int64_t elements, uint32_t seed)
{
    static const uint32_t specials[] = {
        0x80000000u, /* -0.0 */
        0x7F800001u, /* signalling NaN, payload 1 */
        0xFFC12345u, /* negative quiet NaN with payload */
        0x7F800000u, /* +inf */
        0x00000001u, /* smallest subnormal */
    };
    uint32_t state = seed;
    for (int64_t i = 0; i < elements; i++) {
        uint32_t bits = next_random(&state);
        if (i % 7 == 3) {
            bits = specials[(size_t)(i / 7) % (sizeof specials / sizeof specials[0])];
        }
        weight[i] = float_from_bits(bits);
    }
}

/* The reference: the header's pseudocode, as a plain loop. Indices are assumed valid. */
static void reference_lookup(const float* weight, int64_t dim, const int64_t* indices, int64_t count, float* out)
{
    for (int64_t i = 0; i < count; i++) {
        memcpy(out + i * dim, weight + indices[i] * dim, (size_t)dim * sizeof(float));
    }
}

/* True if the decimal text of value appears in message as a whole number (not as part of a
 * longer one), so "position 2" is not satisfied by "position 21". */
static int mentions_number(const char* message, long long value)
{
    char text[32];
    snprintf(text, sizeof text, "%lld", value);
    size_t length = strlen(text);
    for (const char* hit = strstr(message, text); hit != NULL; hit = strstr(hit + 1, text)) {
        int digit_before = hit > message && ((hit[-1] >= '0' && hit[-1] <= '9') || (value >= 0 && hit[-1] == '-'));
        int digit_after = hit[length] >= '0' && hit[length] <= '9';
        if (!digit_before && !digit_after) {
            return 1;
        }
    }
    return 0;
}

/* ---- Library information ------------------------------------------------------------------ */

static const char* tier_name(int32_t tier)
{
    switch (tier) {
    case EMB_ISA_X86_64_V2: return "x86-64-v2";
    case EMB_ISA_X86_64_V3: return "x86-64-v3";
    case EMB_ISA_X86_64_V4: return "x86-64-v4";
    case EMB_ISA_ARM64_NEON: return "arm64";
    default: return "generic";
    }
}

static void test_info(void)
{
    check(emb_version_number() == EMB_VERSION_NUMBER, "emb_version_number() == EMB_VERSION_NUMBER (%d)",
          (int)emb_version_number());

    char expected[32];
    snprintf(expected, sizeof expected, "%d.%d.%d", EMB_VERSION_MAJOR, EMB_VERSION_MINOR, EMB_VERSION_PATCH);
    const char* version = emb_version_string();
    check(version != NULL && strcmp(version, expected) == 0, "emb_version_string() == \"%s\"", expected);

    int32_t isa = emb_isa_tier();
    int32_t cpu = emb_cpu_tier();
    int known = isa == EMB_ISA_GENERIC || isa == EMB_ISA_X86_64_V2 || isa == EMB_ISA_X86_64_V3
             || isa == EMB_ISA_X86_64_V4 || isa == EMB_ISA_ARM64_NEON;
    check(known, "emb_isa_tier() is an emb_isa value (%d, %s)", (int)isa, tier_name(isa));
#if defined(__x86_64__)
    /* Every x86-64 build is at least v2, and it only loads on a CPU that has its tier. */
    check(isa >= EMB_ISA_X86_64_V2 && isa <= EMB_ISA_X86_64_V4, "x86-64 build has an x86-64 tier");
    check(cpu >= isa && cpu <= EMB_ISA_X86_64_V4, "emb_cpu_tier() (%d) >= emb_isa_tier() (%d)", (int)cpu, (int)isa);
    /* An independent oracle: libgcc's own CPUID + XGETBV test of the psABI levels. */
    __builtin_cpu_init();
    int gcc_tier = __builtin_cpu_supports("x86-64-v4") ? EMB_ISA_X86_64_V4
                 : __builtin_cpu_supports("x86-64-v3") ? EMB_ISA_X86_64_V3
                 : __builtin_cpu_supports("x86-64-v2") ? EMB_ISA_X86_64_V2 : EMB_ISA_GENERIC;
    check(cpu == gcc_tier, "emb_cpu_tier() (%d) == the level __builtin_cpu_supports reports (%d)", (int)cpu, gcc_tier);
    for (int32_t t = EMB_ISA_X86_64_V2; t <= EMB_ISA_X86_64_V4; t++) {
        const char* missing = emb_cpu_missing(t);
        check(missing != NULL && (missing[0] == '\0') == (t <= cpu),
              "emb_cpu_missing(%d) is empty exactly when the CPU runs it (\"%s\")", (int)t, missing ? missing : "(null)");
    }
    check(emb_cpu_missing(EMB_ISA_GENERIC)[0] != '\0', "emb_cpu_missing(EMB_ISA_GENERIC) explains that it is not a tier");
#elif defined(__aarch64__)
    check(isa == EMB_ISA_ARM64_NEON && cpu == EMB_ISA_ARM64_NEON, "ARM64 build and CPU report the NEON tier");
#else
    check(cpu >= isa, "emb_cpu_tier() (%d) >= emb_isa_tier() (%d)", (int)cpu, (int)isa);
#endif

    /* The build info is a single JSON object naming its tier; the tier must match emb_isa_tier. */
    const char* info = emb_build_info();
    size_t length = info == NULL ? 0 : strlen(info);
    check(length >= 2 && info[0] == '{' && info[length - 1] == '}', "emb_build_info() is a JSON object");
    check(length > 0 && strstr(info, "\"tier\"") != NULL, "emb_build_info() has a \"tier\" key");
    char tier_pair[64];
    snprintf(tier_pair, sizeof tier_pair, "\"tier\":\"%s\"", tier_name(isa));
    char version_pair[64];
    snprintf(version_pair, sizeof version_pair, "\"version\":\"%s\"", expected);
    if (!check(length > 0 && strstr(info, tier_pair) != NULL && strstr(info, version_pair) != NULL,
               "emb_build_info() names tier %s and version %s", tier_name(isa), expected)) {
        printf("     build info: %s\n", info == NULL ? "(null)" : info);
    }
    check(emb_build_info() == info && emb_version_string() == version, "info strings are static (same pointer each call)");
}

static void test_status_strings(void)
{
    static const struct { int32_t status; const char* name; } names[] = {
        { EMB_OK, "EMB_OK" },
        { EMB_ERROR_INVALID_ARGUMENT, "EMB_ERROR_INVALID_ARGUMENT" },
        { EMB_ERROR_NULL_POINTER, "EMB_ERROR_NULL_POINTER" },
        { EMB_ERROR_SIZE_OVERFLOW, "EMB_ERROR_SIZE_OVERFLOW" },
        { EMB_ERROR_INDEX_OUT_OF_RANGE, "EMB_ERROR_INDEX_OUT_OF_RANGE" },
        { EMB_ERROR_UNSUPPORTED_DTYPE, "EMB_ERROR_UNSUPPORTED_DTYPE" },
        { EMB_ERROR_BUFFER_TOO_SMALL, "EMB_ERROR_BUFFER_TOO_SMALL" },
        { EMB_ERROR_NOT_SUPPORTED, "EMB_ERROR_NOT_SUPPORTED" },
        { EMB_ERROR_INVALID_FILE, "EMB_ERROR_INVALID_FILE" },
        { EMB_ERROR_IO, "EMB_ERROR_IO" },
        { EMB_ERROR_INTERNAL, "EMB_ERROR_INTERNAL" },
    };
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        const char* text = emb_status_string(names[i].status);
        check(text != NULL && strcmp(text, names[i].name) == 0, "emb_status_string(%d) == \"%s\"",
              (int)names[i].status, names[i].name);
    }
    static const int32_t unknown[] = { -1, 10, 99, 101, INT32_MIN, INT32_MAX };
    for (size_t i = 0; i < sizeof unknown / sizeof unknown[0]; i++) {
        const char* text = emb_status_string(unknown[i]);
        check(text != NULL && strcmp(text, "unknown status") == 0, "emb_status_string(%ld) == \"unknown status\"",
              (long)unknown[i]);
    }
}

/* ---- Correct lookups ------------------------------------------------------------------------- */

/* Dimensions chosen to cover the scalar case, both sides of every vector width (4, 8, 16 floats),
 * odd tails, and the sizes real models use (300: word2vec/GloVe, 768: BERT-base). */
static const int64_t dims[] = { 1, 2, 3, 4, 5, 7, 8, 9, 15, 16, 17, 31, 32, 33, 63, 64, 65, 100, 128, 256, 300, 512, 768, 1000 };

/* Looks up `count` indices into a num_embeddings x dim table with both index types, with an
 * output that is `slack` floats larger than needed, and compares with the reference. The bytes
 * past the result must still hold the sentinel. `misalign` shifts every buffer by one float, so
 * kernels cannot rely on 16/32/64-byte alignment. */
static int lookup_matches(int64_t num_embeddings, int64_t dim, int64_t count, int misalign, int32_t index_dtype)
{
    const int64_t slack = 19;
    float* weight_block = (float*)xmalloc((size_t)(num_embeddings * dim + 1) * sizeof(float));
    float* weight = weight_block + misalign;
    fill_table(weight, num_embeddings * dim, (uint32_t)(dim * 7919 + num_embeddings));

    /* Indices hit the first and last rows, repeat, and otherwise wander pseudo-randomly. */
    int64_t* indices64 = (int64_t*)xmalloc((size_t)(count + 1) * sizeof(int64_t));
    int32_t* indices32_block = (int32_t*)xmalloc((size_t)(count + 1) * sizeof(int32_t));
    int32_t* indices32 = indices32_block + misalign;
    uint32_t state = (uint32_t)count * 31u + 17u;
    for (int64_t i = 0; i < count; i++) {
        indices64[i] = i == 0 ? num_embeddings - 1 : i == 1 ? 0 : i == 2 ? indices64[0]
                     : (int64_t)(next_random(&state) % (uint32_t)num_embeddings);
        indices32[i] = (int32_t)indices64[i];
    }

    size_t result_bytes = (size_t)(count * dim) * sizeof(float);
    float* expected = (float*)xmalloc(result_bytes);
    reference_lookup(weight, dim, indices64, count, expected);

    float* out_block = (float*)xmalloc((size_t)(count * dim + slack + 1) * sizeof(float));
    float* out = out_block + misalign;
    memset(out, SENTINEL_BYTE, result_bytes + (size_t)slack * sizeof(float));

    const void* indices = index_dtype == EMB_DTYPE_INT32 ? (const void*)indices32 : (const void*)indices64;
    int32_t status = emb_embedding(weight, EMB_DTYPE_FLOAT32, num_embeddings, dim,
                                   indices, index_dtype, count, out, count * dim + slack);
    int ok = status == EMB_OK
          && memcmp(out, expected, result_bytes) == 0
          && all_bytes_are((const unsigned char*)out + result_bytes, (size_t)slack * sizeof(float), SENTINEL_BYTE);
    if (!ok) {
        explain(status, EMB_OK);
    }

    free(out_block);
    free(expected);
    free(indices32_block);
    free(indices64);
    free(weight_block);
    return ok;
}

static void test_lookups(void)
{
    /* Counts cover one index, short runs, and runs long enough for any unrolled loop. */
    static const int64_t counts[] = { 1, 2, 3, 4, 5, 8, 13, 64, 257 };
    for (size_t d = 0; d < sizeof dims / sizeof dims[0]; d++) {
        for (int dtype = 0; dtype < 2; dtype++) {
            int32_t index_dtype = dtype == 0 ? EMB_DTYPE_INT32 : EMB_DTYPE_INT64;
            int ok = 1;
            for (size_t c = 0; c < sizeof counts / sizeof counts[0] && ok; c++) {
                ok = lookup_matches(37, dims[d], counts[c], 0, index_dtype);
            }
            check(ok, "lookup dim %lld, %s indices, counts 1..257: bit-exact, nothing written past the result",
                  (long long)dims[d], dtype == 0 ? "int32" : "int64");
        }
    }

    static const int64_t misaligned_dims[] = { 4, 8, 16, 17, 64, 768 };
    for (size_t d = 0; d < sizeof misaligned_dims / sizeof misaligned_dims[0]; d++) {
        int ok = lookup_matches(11, misaligned_dims[d], 33, 1, EMB_DTYPE_INT32)
              && lookup_matches(11, misaligned_dims[d], 33, 1, EMB_DTYPE_INT64);
        check(ok, "lookup dim %lld with buffers 4 bytes off alignment: bit-exact", (long long)misaligned_dims[d]);
    }

    /* A one-row table: every index is 0. */
    check(lookup_matches(1, 17, 9, 0, EMB_DTYPE_INT64), "lookup into a one-row table");

    /* out directly after weight in one allocation touches it without overlapping: allowed. */
    {
        enum { V = 3, D = 5, N = 2 };
        float block[V * D + N * D];
        fill_table(block, V * D, 5u);
        const int64_t indices[N] = { 2, 0 };
        float expected[N * D];
        reference_lookup(block, D, indices, N, expected);
        int32_t status = emb_embedding(block, EMB_DTYPE_FLOAT32, V, D, indices, EMB_DTYPE_INT64, N, block + V * D, N * D);
        if (!check(status == EMB_OK && memcmp(block + V * D, expected, sizeof expected) == 0,
                   "out adjacent to weight (touching, not overlapping) is accepted")) {
            explain(status, EMB_OK);
        }
    }
}

/* ---- Every table type ------------------------------------------------------------------------- */

/* A gather moves bits: float64, float16 and bfloat16 rows (random bytes, NaN payloads included)
 * come out as they went in, at dims that hit every vector tail of 2- and 8-byte elements. */
static void test_table_types(void)
{
    static const struct { int32_t dtype; size_t size; const char* name; } types[] = {
        { EMB_DTYPE_FLOAT64, 8, "float64" }, { EMB_DTYPE_FLOAT16, 2, "float16" }, { EMB_DTYPE_BFLOAT16, 2, "bfloat16" },
    };
    static const int64_t type_dims[] = { 1, 3, 7, 8, 9, 31, 32, 33, 64, 65, 300, 768 };
    enum { V = 13, N = 29 };
    for (size_t t = 0; t < sizeof types / sizeof types[0]; t++) {
        int ok = 1;
        for (size_t d = 0; d < sizeof type_dims / sizeof type_dims[0] && ok; d++) {
            int64_t dim = type_dims[d];
            size_t row = (size_t)dim * types[t].size;
            unsigned char* weight = malloc(V * row);
            unsigned char* out = malloc(N * row + 16);
            int64_t indices[N];
            uint32_t state = 12345u + (uint32_t)d;
            for (size_t i = 0; i < V * row; i++) {
                state = state * 1664525u + 1013904223u;
                weight[i] = (unsigned char)(state >> 24);
            }
            for (int i = 0; i < N; i++) {
                indices[i] = (i * 7 + 3) % V;
            }
            memset(out, 0xA5, N * row + 16);
            int32_t status = emb_embedding(weight, types[t].dtype, V, dim, indices, EMB_DTYPE_INT64, N, out, N * dim);
            ok = status == EMB_OK;
            for (int i = 0; i < N && ok; i++) {
                ok = memcmp(out + i * row, weight + indices[i] * row, row) == 0;
            }
            for (size_t i = N * row; i < N * row + 16 && ok; i++) {
                ok = out[i] == 0xA5;
            }
            free(weight);
            free(out);
        }
        check(ok, "lookup of a %s table at dims 1..768: bit-exact, nothing written past the result", types[t].name);
    }
}

/* ---- Optimizer steps on other table types ------------------------------------------------------
 * The header's 16-bit rule (every operation in float, rounded to the type, with its own bfloat16
 * conversions here) and its float64 rule (the float32 formula in double). */

static float bf16_to_float(uint16_t h)
{
    uint32_t bits = (uint32_t)h << 16;
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
}

/* Round to nearest, ties to even (no NaN reaches it here). */
static uint16_t float_to_bf16(float f)
{
    uint32_t bits;
    memcpy(&bits, &f, sizeof bits);
    return (uint16_t)((bits + 0x7FFFu + ((bits >> 16) & 1u)) >> 16);
}

static float rd_bf16(float f) { return bf16_to_float(float_to_bf16(f)); }

static void test_optimizer_table_types(void)
{
    enum { V = 5, D = 7 };
    static const int64_t rows[2] = { 1, 4 };

    /* bfloat16 SGD: w = rd(w + rd(g * fl(-lr))), fl(-lr) = -0.1 rounded to float, then to bfloat16. */
    uint16_t weight[V * D], expected[V * D], values[2 * D];
    for (int i = 0; i < V * D; i++) {
        weight[i] = float_to_bf16((float)(i % 11) * 0.37f - 1.5f);
    }
    for (int i = 0; i < 2 * D; i++) {
        values[i] = float_to_bf16((float)(i % 5) * 0.61f - 1.1f);
    }
    memcpy(expected, weight, sizeof weight);
    float negative_lr = rd_bf16((float)-0.1);
    for (int j = 0; j < 2; j++) {
        for (int c = 0; c < D; c++) {
            uint16_t* w = &expected[rows[j] * D + c];
            *w = float_to_bf16(bf16_to_float(*w) + rd_bf16(bf16_to_float(values[j * D + c]) * negative_lr));
        }
    }
    int32_t status = emb_sgd_step(weight, EMB_DTYPE_BFLOAT16, V, D, rows, values, 2, 0.1, 0.0);
    check(status == EMB_OK && memcmp(weight, expected, sizeof weight) == 0,
          "sgd on a bfloat16 table: rd(w + rd(g * fl(-lr))) on the listed rows, byte for byte");

    /* float64 SGD with lr = 0.5: g * -0.5 is exact in double, so fma(g, -lr, w) is w - g / 2 rounded once. */
    double w64[V * D], e64[V * D], g64[2 * D];
    for (int i = 0; i < V * D; i++) {
        w64[i] = e64[i] = (double)(i % 13) * 0.123 - 0.7;
    }
    for (int i = 0; i < 2 * D; i++) {
        g64[i] = (double)(i % 3) * 0.9 - 0.8;
    }
    for (int j = 0; j < 2; j++) {
        for (int c = 0; c < D; c++) {
            e64[rows[j] * D + c] += g64[j * D + c] * -0.5;
        }
    }
    status = emb_sgd_step(w64, EMB_DTYPE_FLOAT64, V, D, rows, g64, 2, 0.5, 0.0);
    check(status == EMB_OK && memcmp(w64, e64, sizeof w64) == 0,
          "sgd on a float64 table: fma(g, -lr, w) in double on the listed rows, byte for byte");

    /* Index dtypes and unknown values are not table types: refused, nothing written. */
    memcpy(expected, weight, sizeof weight);
    static const int32_t refused[] = { 0, EMB_DTYPE_INT32, EMB_DTYPE_INT64, 99 };
    int refused_ok = 1;
    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++) {
        refused_ok &= emb_sgd_step(weight, refused[i], V, D, rows, values, 2, 0.1, 0.0) == EMB_ERROR_UNSUPPORTED_DTYPE
                      && has_message();
    }
    check(refused_ok && memcmp(weight, expected, sizeof weight) == 0,
          "optimizer steps refuse dtypes that are not table types and write nothing");
}

/* ---- Empty inputs ----------------------------------------------------------------------------- */

static void test_empty(void)
{
    float weight[8] = { 0 };
    int64_t indices[2] = { 0, 3 };

    int32_t status = emb_embedding(weight, EMB_DTYPE_FLOAT32, 4, 2, NULL, EMB_DTYPE_INT64, 0, NULL, 0);
    if (!check(status == EMB_OK, "num_indices 0 with NULL indices and NULL out")) explain(status, EMB_OK);

    status = emb_embedding(NULL, EMB_DTYPE_FLOAT32, 0, 5, NULL, EMB_DTYPE_INT32, 0, NULL, 0);
    if (!check(status == EMB_OK, "empty table (0 rows, NULL weight) with no indices")) explain(status, EMB_OK);

    status = emb_embedding(NULL, EMB_DTYPE_FLOAT32, 0, 0, NULL, EMB_DTYPE_INT64, 0, NULL, 0);
    if (!check(status == EMB_OK, "all sizes 0, all pointers NULL")) explain(status, EMB_OK);

    /* embedding_dim 0: the table and the result have no elements, so NULL weight and out are
     * fine, but the indices are still read and must still name rows. */
    status = emb_embedding(NULL, EMB_DTYPE_FLOAT32, 4, 0, indices, EMB_DTYPE_INT64, 2, NULL, 0);
    if (!check(status == EMB_OK, "embedding_dim 0 with valid indices, NULL weight and out")) explain(status, EMB_OK);

    int64_t bad[2] = { 1, 4 };
    status = emb_embedding(NULL, EMB_DTYPE_FLOAT32, 4, 0, bad, EMB_DTYPE_INT64, 2, NULL, 0);
    if (!check(status == EMB_ERROR_INDEX_OUT_OF_RANGE && has_message(), "embedding_dim 0 still rejects index 4 of 4 rows"))
        explain(status, EMB_ERROR_INDEX_OUT_OF_RANGE);

    /* No rows at all: any index is out of range, and the message says why. */
    int32_t zero = 0;
    status = emb_embedding(NULL, EMB_DTYPE_FLOAT32, 0, 3, &zero, EMB_DTYPE_INT32, 1, weight, 8);
    if (!check(status == EMB_ERROR_INDEX_OUT_OF_RANGE && has_message(), "index 0 into a table with no rows is out of range"))
        explain(status, EMB_ERROR_INDEX_OUT_OF_RANGE);
}

/* ---- Error paths ------------------------------------------------------------------------------ */

/* Calls emb_embedding on a small valid setup with one argument changed, and checks the status,
 * the message, and that the (sentinel-filled) output is untouched. */
typedef struct call {
    const void* weight;
    int32_t weight_dtype;
    int64_t num_embeddings;
    int64_t embedding_dim;
    const void* indices;
    int32_t index_dtype;
    int64_t num_indices;
    void* out;
    int64_t out_capacity;
} call;

enum { ERR_V = 4, ERR_D = 3, ERR_N = 3, ERR_OUT = 16 };
static float err_weight[ERR_V * ERR_D];
static const int64_t err_indices[ERR_N] = { 0, 3, 1 };
static float err_out[ERR_OUT];

static call valid_call(void)
{
    call c = { err_weight, EMB_DTYPE_FLOAT32, ERR_V, ERR_D, err_indices, EMB_DTYPE_INT64, ERR_N, err_out, ERR_OUT };
    return c;
}

static void expect_failure(call c, int32_t want, const char* what)
{
    memset(err_out, SENTINEL_BYTE, sizeof err_out);
    int32_t status = emb_embedding(c.weight, c.weight_dtype, c.num_embeddings, c.embedding_dim,
                                   c.indices, c.index_dtype, c.num_indices, c.out, c.out_capacity);
    int ok = status == want && has_message() && all_bytes_are(err_out, sizeof err_out, SENTINEL_BYTE);
    if (!check(ok, "%s -> %s, message, out untouched", what, emb_status_string(want))) {
        explain(status, want);
    } else {
        printf("     message: %s\n", emb_last_error());
    }
}

static void test_errors(void)
{
    fill_table(err_weight, ERR_V * ERR_D, 3u);

    /* Sanity: the unmodified call succeeds, so each failure below is caused by its one change. */
    call c = valid_call();
    int32_t status = emb_embedding(c.weight, c.weight_dtype, c.num_embeddings, c.embedding_dim,
                                   c.indices, c.index_dtype, c.num_indices, c.out, c.out_capacity);
    if (!check(status == EMB_OK, "baseline call for the error tests succeeds")) explain(status, EMB_OK);

    /* NULL buffers that are not empty. */
    c = valid_call(); c.weight = NULL;  expect_failure(c, EMB_ERROR_NULL_POINTER, "NULL weight with 4x3 elements");
    c = valid_call(); c.indices = NULL; expect_failure(c, EMB_ERROR_NULL_POINTER, "NULL indices with 3 elements");
    c = valid_call(); c.out = NULL;     expect_failure(c, EMB_ERROR_NULL_POINTER, "NULL out with 9 elements to write");

    /* Negative sizes. */
    c = valid_call(); c.num_embeddings = -1; expect_failure(c, EMB_ERROR_INVALID_ARGUMENT, "num_embeddings -1");
    c = valid_call(); c.embedding_dim = -1;  expect_failure(c, EMB_ERROR_INVALID_ARGUMENT, "embedding_dim -1");
    c = valid_call(); c.num_indices = -1;    expect_failure(c, EMB_ERROR_INVALID_ARGUMENT, "num_indices -1");
    c = valid_call(); c.out_capacity = -1;   expect_failure(c, EMB_ERROR_INVALID_ARGUMENT, "out_capacity -1");
    c = valid_call(); c.num_indices = INT64_MIN; expect_failure(c, EMB_ERROR_INVALID_ARGUMENT, "num_indices INT64_MIN");

    /* Products of sizes that cannot be addressed. The library must refuse before reading. */
    c = valid_call(); c.num_indices = INT64_MAX / 2; c.embedding_dim = 4;
    expect_failure(c, EMB_ERROR_SIZE_OVERFLOW, "num_indices INT64_MAX/2 x embedding_dim 4");
    c = valid_call(); c.num_embeddings = INT64_MAX / 2; c.embedding_dim = 4;
    expect_failure(c, EMB_ERROR_SIZE_OVERFLOW, "num_embeddings INT64_MAX/2 x embedding_dim 4");
    c = valid_call(); c.num_embeddings = INT64_MAX; c.embedding_dim = INT64_MAX;
    expect_failure(c, EMB_ERROR_SIZE_OVERFLOW, "num_embeddings INT64_MAX x embedding_dim INT64_MAX");

    /* Element types: float tables only (test_table_types gathers each), only int32/int64 indices. */
    c = valid_call(); c.weight_dtype = 7;                  expect_failure(c, EMB_ERROR_UNSUPPORTED_DTYPE, "weight dtype 7");
    c = valid_call(); c.weight_dtype = EMB_DTYPE_INT64;    expect_failure(c, EMB_ERROR_UNSUPPORTED_DTYPE, "weight dtype INT64");
    c = valid_call(); c.weight_dtype = 0;                  expect_failure(c, EMB_ERROR_UNSUPPORTED_DTYPE, "weight dtype 0");
    c = valid_call(); c.index_dtype = EMB_DTYPE_FLOAT32;   expect_failure(c, EMB_ERROR_UNSUPPORTED_DTYPE, "index dtype FLOAT32");
    c = valid_call(); c.index_dtype = 0;                   expect_failure(c, EMB_ERROR_UNSUPPORTED_DTYPE, "index dtype 0");
    c = valid_call(); c.index_dtype = 99;                  expect_failure(c, EMB_ERROR_UNSUPPORTED_DTYPE, "index dtype 99");

    /* An output one element short. */
    c = valid_call(); c.out_capacity = ERR_N * ERR_D - 1;
    expect_failure(c, EMB_ERROR_BUFFER_TOO_SMALL, "out_capacity 8 for 3 indices x 3 columns");
    c = valid_call(); c.out_capacity = 0;
    expect_failure(c, EMB_ERROR_BUFFER_TOO_SMALL, "out_capacity 0 for 9 elements");
}

/* An out-of-range index: exact status, a message naming the position and the value, and not one
 * element written, even for the valid indices before the bad one. */
static void expect_bad_index(const void* indices, int32_t index_dtype, int64_t count, int64_t position, long long value,
                             const char* what)
{
    memset(err_out, SENTINEL_BYTE, sizeof err_out);
    int32_t status = emb_embedding(err_weight, EMB_DTYPE_FLOAT32, ERR_V, ERR_D, indices, index_dtype, count, err_out, ERR_OUT);
    const char* message = emb_last_error();
    char position_text[48];
    snprintf(position_text, sizeof position_text, "position %lld", (long long)position);
    int64_t reported_position = -7, reported_value = -7;
    int32_t has_index = emb_last_index_error(&reported_position, &reported_value);
    int ok = status == EMB_ERROR_INDEX_OUT_OF_RANGE
          && strstr(message, position_text) != NULL && mentions_number(message, value)
          && has_index == 1 && reported_position == position && reported_value == (int64_t)value
          && all_bytes_are(err_out, sizeof err_out, SENTINEL_BYTE);
    if (!check(ok, "%s -> EMB_ERROR_INDEX_OUT_OF_RANGE naming position %lld and value %lld (also through "
               "emb_last_index_error), out untouched", what, (long long)position, value)) {
        explain(status, EMB_ERROR_INDEX_OUT_OF_RANGE);
    } else {
        printf("     message: %s\n", message);
    }
}

static void test_bad_indices(void)
{
    const int64_t too_large[] = { 0, 2, 4 };
    expect_bad_index(too_large, EMB_DTYPE_INT64, 3, 2, 4, "int64 index 4 of 4 rows at position 2");
    const int32_t too_large32[] = { 3, 1, 0, 4 };
    expect_bad_index(too_large32, EMB_DTYPE_INT32, 4, 3, 4, "int32 index 4 of 4 rows at position 3");
    const int64_t negative[] = { -1 };
    expect_bad_index(negative, EMB_DTYPE_INT64, 1, 0, -1, "int64 index -1 (no wrap-around, unlike padding_idx)");
    const int32_t negative32[] = { 1, -2 };
    expect_bad_index(negative32, EMB_DTYPE_INT32, 2, 1, -2, "int32 index -2");
    const int64_t first_of_two[] = { 1, 9, -1 };
    expect_bad_index(first_of_two, EMB_DTYPE_INT64, 3, 1, 9, "two bad indices: the first is reported");
    const int64_t extremes[] = { 2, INT64_MIN };
    expect_bad_index(extremes, EMB_DTYPE_INT64, 2, 1, INT64_MIN, "int64 index INT64_MIN");
    const int64_t max64[] = { INT64_MAX };
    expect_bad_index(max64, EMB_DTYPE_INT64, 1, 0, INT64_MAX, "int64 index INT64_MAX");
    const int32_t extremes32[] = { INT32_MAX, INT32_MIN };
    expect_bad_index(extremes32, EMB_DTYPE_INT32, 2, 0, INT32_MAX, "int32 index INT32_MAX");

    /* A bad index deep inside a long run, so a vectorised range check must still find it. */
    enum { LONG_RUN = 1000 };
    static int32_t run[LONG_RUN];
    for (int i = 0; i < LONG_RUN; i++) run[i] = i % ERR_V;
    run[777] = ERR_V;
    float* out = (float*)xmalloc(sizeof(float) * LONG_RUN * ERR_D);
    memset(out, SENTINEL_BYTE, sizeof(float) * LONG_RUN * ERR_D);
    int32_t status = emb_embedding(err_weight, EMB_DTYPE_FLOAT32, ERR_V, ERR_D, run, EMB_DTYPE_INT32, LONG_RUN,
                                   out, (int64_t)LONG_RUN * ERR_D);
    int ok = status == EMB_ERROR_INDEX_OUT_OF_RANGE && strstr(emb_last_error(), "position 777") != NULL
          && all_bytes_are(out, sizeof(float) * LONG_RUN * ERR_D, SENTINEL_BYTE);
    if (!check(ok, "bad index at position 777 of 1000: found, nothing written")) explain(status, EMB_ERROR_INDEX_OUT_OF_RANGE);
    free(out);
}

/* The output may not share a byte with either input. */
static void test_overlap(void)
{
    enum { V = 4, D = 4, N = 2 };
    float table[V * D];
    fill_table(table, V * D, 11u);
    float table_copy[V * D];
    memcpy(table_copy, table, sizeof table);
    const int64_t indices[N] = { 1, 2 };

    int32_t status = emb_embedding(table, EMB_DTYPE_FLOAT32, V, D, indices, EMB_DTYPE_INT64, N, table, V * D);
    if (!check(status == EMB_ERROR_INVALID_ARGUMENT && has_message() && memcmp(table, table_copy, sizeof table) == 0,
               "out == weight -> EMB_ERROR_INVALID_ARGUMENT, table unchanged"))
        explain(status, EMB_ERROR_INVALID_ARGUMENT);

    /* out starts on the last row of the table and runs past its end. */
    float block[V * D + N * D];
    memcpy(block, table, sizeof table);
    float* overlapping = block + (V - 1) * D;
    status = emb_embedding(block, EMB_DTYPE_FLOAT32, V, D, indices, EMB_DTYPE_INT64, N, overlapping, N * D);
    if (!check(status == EMB_ERROR_INVALID_ARGUMENT && has_message() && memcmp(block, table_copy, sizeof table) == 0,
               "out overlapping the last row of weight -> EMB_ERROR_INVALID_ARGUMENT"))
        explain(status, EMB_ERROR_INVALID_ARGUMENT);

    /* out ends on the table's first float (out starts before the table). */
    float low[N * D - 1 + V * D];
    memcpy(low + N * D - 1, table, sizeof table);
    status = emb_embedding(low + N * D - 1, EMB_DTYPE_FLOAT32, V, D, indices, EMB_DTYPE_INT64, N, low, N * D);
    if (!check(status == EMB_ERROR_INVALID_ARGUMENT && has_message() && memcmp(low + N * D - 1, table_copy, sizeof table) == 0,
               "out whose last float is weight's first -> EMB_ERROR_INVALID_ARGUMENT"))
        explain(status, EMB_ERROR_INVALID_ARGUMENT);

    /* The indices and out in one buffer: N indices, then room for the output. The storage has
     * the index type, so the float view is aligned too. out starts on the second index. */
    int64_t arena[N + N * D] = { 1, 2 };
    int64_t arena_copy[N + N * D];
    memcpy(arena_copy, arena, sizeof arena);
    status = emb_embedding(table, EMB_DTYPE_FLOAT32, V, D, arena, EMB_DTYPE_INT64, N, (float*)(void*)(arena + 1), N * D);
    if (!check(status == EMB_ERROR_INVALID_ARGUMENT && has_message() && memcmp(arena, arena_copy, sizeof arena) == 0,
               "out overlapping int64 indices -> EMB_ERROR_INVALID_ARGUMENT, indices unchanged"))
        explain(status, EMB_ERROR_INVALID_ARGUMENT);

    int32_t arena32[N + N * D] = { 1, 2 };
    int32_t arena32_copy[N + N * D];
    memcpy(arena32_copy, arena32, sizeof arena32);
    status = emb_embedding(table, EMB_DTYPE_FLOAT32, V, D, arena32, EMB_DTYPE_INT32, N, (float*)(void*)(arena32 + 1), N * D);
    if (!check(status == EMB_ERROR_INVALID_ARGUMENT && has_message() && memcmp(arena32, arena32_copy, sizeof arena32) == 0,
               "out overlapping int32 indices -> EMB_ERROR_INVALID_ARGUMENT, indices unchanged"))
        explain(status, EMB_ERROR_INVALID_ARGUMENT);

    /* Directly after the indices (touching, not overlapping) is fine. */
    float expected[N * D];
    reference_lookup(table, D, indices, N, expected);
    float* after = (float*)(void*)(arena32 + N);
    status = emb_embedding(table, EMB_DTYPE_FLOAT32, V, D, arena32, EMB_DTYPE_INT32, N, after, N * D);
    if (!check(status == EMB_OK && memcmp(after, expected, sizeof expected) == 0,
               "out directly after the indices (touching, not overlapping) is accepted"))
        explain(status, EMB_OK);
}

/* ---- Padding index ---------------------------------------------------------------------------- */

static void expect_padding(int64_t padding_idx, int64_t num_embeddings, int32_t want, int64_t want_row)
{
    const int64_t untouched = -12345;
    int64_t row = untouched;
    int32_t status = emb_padding_idx_normalize(padding_idx, num_embeddings, &row);
    int ok;
    if (want == EMB_OK) {
        ok = status == EMB_OK && row == want_row;
        ok = check(ok, "padding_idx %lld with %lld rows -> row %lld", (long long)padding_idx,
                   (long long)num_embeddings, (long long)want_row);
    } else {
        /* torch's own words start the message, so Python users see the same error text. */
        int torch_text = want != EMB_ERROR_INDEX_OUT_OF_RANGE
                      || strncmp(emb_last_error(), "Padding_idx must be within num_embeddings", 41) == 0;
        ok = status == want && has_message() && torch_text && row == untouched;
        ok = check(ok, "padding_idx %lld with %lld rows -> %s, output untouched", (long long)padding_idx,
                   (long long)num_embeddings, emb_status_string(want));
    }
    if (!ok) {
        explain(status, want);
        printf("     row: %lld\n", (long long)row);
    }
}

static void test_padding(void)
{
    expect_padding(-5, 4, EMB_ERROR_INDEX_OUT_OF_RANGE, 0);
    expect_padding(-4, 4, EMB_OK, 0);
    expect_padding(-1, 4, EMB_OK, 3);
    expect_padding(0, 4, EMB_OK, 0);
    expect_padding(3, 4, EMB_OK, 3);
    expect_padding(4, 4, EMB_ERROR_INDEX_OUT_OF_RANGE, 0);
    expect_padding(0, 0, EMB_OK, 0);                     /* torch accepts 0 even for an empty table */
    expect_padding(1, 0, EMB_ERROR_INDEX_OUT_OF_RANGE, 0);
    expect_padding(-1, 0, EMB_ERROR_INDEX_OUT_OF_RANGE, 0);
    expect_padding(INT64_MIN, 4, EMB_ERROR_INDEX_OUT_OF_RANGE, 0);
    expect_padding(INT64_MAX, 4, EMB_ERROR_INDEX_OUT_OF_RANGE, 0);
    expect_padding(-INT64_MAX, INT64_MAX, EMB_OK, 0);    /* the extremes do not overflow */
    expect_padding(INT64_MIN, INT64_MAX, EMB_ERROR_INDEX_OUT_OF_RANGE, 0);
    expect_padding(0, -1, EMB_ERROR_INVALID_ARGUMENT, 0);

    int32_t status = emb_padding_idx_normalize(1, 4, NULL);
    if (!check(status == EMB_ERROR_NULL_POINTER && has_message(), "emb_padding_idx_normalize with NULL result -> EMB_ERROR_NULL_POINTER"))
        explain(status, EMB_ERROR_NULL_POINTER);
}

/* ---- Last error ------------------------------------------------------------------------------- */

static void* read_fresh_last_error(void* result)
{
    const char* message = emb_last_error();
    *(int*)result = message != NULL && message[0] == '\0';
    return NULL;
}

static void test_last_error(void)
{
    /* A thread that never failed sees "", whatever other threads did. */
    int empty = 0;
    pthread_t thread;
    int created = pthread_create(&thread, NULL, read_fresh_last_error, &empty) == 0;
    if (created) pthread_join(thread, NULL);
    check(created && empty, "emb_last_error() is \"\" on a thread with no failed call");

    /* The message belongs to the latest *failed* call: a success in between does not clear it. */
    int64_t row;
    emb_padding_idx_normalize(7, 4, &row);
    char first[256];
    snprintf(first, sizeof first, "%s", emb_last_error());
    int32_t status = emb_padding_idx_normalize(1, 4, &row);
    check(status == EMB_OK && strcmp(emb_last_error(), first) == 0, "a successful call leaves emb_last_error() as it was");
    emb_embedding(NULL, EMB_DTYPE_FLOAT32, 4, 4, NULL, EMB_DTYPE_INT64, 1, NULL, 0);
    check(strcmp(emb_last_error(), first) != 0 && has_message(), "the next failure replaces the message");
}

/* emb_last_index_error: the bad index of the latest failure, only when that failure was one. */
static void test_last_index_error(void)
{
    const float table[2 * 2] = { 1, 2, 3, 4 };
    const int32_t indices[3] = { 1, 0, 5 };
    float out[3 * 2];
    int32_t status = emb_embedding(table, EMB_DTYPE_FLOAT32, 2, 2, indices, EMB_DTYPE_INT32, 3, out, 6);
    int64_t position = -1, value = -1;
    int32_t found = emb_last_index_error(&position, &value);
    check(status == EMB_ERROR_INDEX_OUT_OF_RANGE && found == 1 && position == 2 && value == 5,
          "emb_last_index_error after a bad index -> 1, position 2, value 5");
    char message[256];
    snprintf(message, sizeof message, "%s", emb_last_error());
    check(emb_last_index_error(NULL, NULL) == 1 && strcmp(emb_last_error(), message) == 0,
          "emb_last_index_error(NULL, NULL) -> 1 and leaves emb_last_error() as it was");

    /* A success in between changes nothing; any other failure, or a bad padding_idx, clears it. */
    const int32_t good[1] = { 1 };
    emb_embedding(table, EMB_DTYPE_FLOAT32, 2, 2, good, EMB_DTYPE_INT32, 1, out, 6);
    check(emb_last_index_error(NULL, NULL) == 1, "a successful call leaves emb_last_index_error() as it was");
    int64_t row;
    emb_padding_idx_normalize(9, 2, &row);
    position = value = -1;
    check(emb_last_index_error(&position, &value) == 0 && position == -1 && value == -1,
          "after a bad padding_idx emb_last_index_error -> 0, nothing written");
    emb_embedding(table, EMB_DTYPE_FLOAT32, 2, 2, indices, EMB_DTYPE_INT32, 3, out, 6);
    emb_embedding(NULL, EMB_DTYPE_FLOAT32, 2, 2, NULL, EMB_DTYPE_INT32, 1, NULL, 0);
    check(emb_last_index_error(NULL, NULL) == 0, "after a null-pointer failure emb_last_index_error -> 0");
}

/* ---- Threads ---------------------------------------------------------------------------------- */

/* Four threads look rows up in one shared table, each checking its own results, and between
 * rounds each one fails on purpose with a value only it uses, then, after every thread has
 * failed too, checks that its emb_last_error() still names its own value. */
enum { THREADS = 4, ROUNDS = 50, SHARED_V = 1000, SHARED_D = 64, THREAD_N = 256 };

static float shared_table[SHARED_V * SHARED_D];
static pthread_barrier_t round_barrier;

typedef struct worker {
    int id;
    int lookups_ok;       /* every lookup matched the reference */
    int errors_ok;        /* every thread saw its own last error */
    char detail[256];     /* the first thing that went wrong */
} worker;

static void* worker_main(void* argument)
{
    worker* self = (worker*)argument;
    self->lookups_ok = 1;
    self->errors_ok = 1;
    int64_t* indices = (int64_t*)xmalloc(sizeof(int64_t) * THREAD_N);
    float* out = (float*)xmalloc(sizeof(float) * THREAD_N * SHARED_D);
    float* expected = (float*)xmalloc(sizeof(float) * THREAD_N * SHARED_D);
    uint32_t state = 1000u + (uint32_t)self->id;

    for (int round = 0; round < ROUNDS; round++) {
        for (int i = 0; i < THREAD_N; i++) indices[i] = (int64_t)(next_random(&state) % SHARED_V);
        reference_lookup(shared_table, SHARED_D, indices, THREAD_N, expected);
        int32_t status = emb_embedding(shared_table, EMB_DTYPE_FLOAT32, SHARED_V, SHARED_D, indices, EMB_DTYPE_INT64,
                                       THREAD_N, out, (int64_t)THREAD_N * SHARED_D);
        if (self->lookups_ok && (status != EMB_OK || memcmp(out, expected, sizeof(float) * THREAD_N * SHARED_D) != 0)) {
            self->lookups_ok = 0;
            snprintf(self->detail, sizeof self->detail, "round %d: lookup status %d or wrong values", round, (int)status);
        }

        /* A value unique to this thread and round, at a position unique to this thread. */
        long long mine = 1000000LL * (self->id + 1) + round;
        int64_t bad[THREADS + 1] = { 0 };
        bad[self->id] = (int64_t)mine;
        emb_embedding(shared_table, EMB_DTYPE_FLOAT32, SHARED_V, SHARED_D, bad, EMB_DTYPE_INT64,
                      self->id + 1, out, (int64_t)THREAD_N * SHARED_D);
        pthread_barrier_wait(&round_barrier);       /* now every thread has set its own error */
        const char* message = emb_last_error();
        char position_text[32];
        snprintf(position_text, sizeof position_text, "position %d", self->id);
        if (self->errors_ok && (!mentions_number(message, mine) || strstr(message, position_text) == NULL)) {
            self->errors_ok = 0;
            snprintf(self->detail, sizeof self->detail, "round %d: expected value %lld at %s, got \"%s\"",
                     round, mine, position_text, message);
        }
        pthread_barrier_wait(&round_barrier);       /* nobody fails again until all have checked */
    }

    free(expected);
    free(out);
    free(indices);
    return NULL;
}

static void test_threads(void)
{
    fill_table(shared_table, SHARED_V * SHARED_D, 99u);
    pthread_barrier_init(&round_barrier, NULL, THREADS);
    worker workers[THREADS];
    pthread_t threads[THREADS];
    int started = 0;
    for (int t = 0; t < THREADS; t++) {
        workers[t].id = t;
        workers[t].detail[0] = '\0';
        if (pthread_create(&threads[t], NULL, worker_main, &workers[t]) != 0) {
            /* The barrier expects THREADS threads; without them the others would wait forever. */
            fprintf(stderr, "pthread_create failed\n");
            exit(2);
        }
        started++;
    }
    for (int t = 0; t < started; t++) pthread_join(threads[t], NULL);
    pthread_barrier_destroy(&round_barrier);

    for (int t = 0; t < THREADS; t++) {
        check(workers[t].lookups_ok, "thread %d: %d concurrent lookups of %d rows on a shared table, bit-exact",
              t, ROUNDS, THREAD_N);
        if (!check(workers[t].errors_ok, "thread %d: its emb_last_error() survives the other threads' failures", t))
            printf("     %s\n", workers[t].detail);
    }
}

int main(void)
{
    /* Unbuffered: a sanitizer that ends the process must not swallow lines already "printed". */
    setvbuf(stdout, NULL, _IONBF, 0);

    test_info();
    test_status_strings();
    test_lookups();
    test_table_types();
    test_optimizer_table_types();
    test_empty();
    test_errors();
    test_bad_indices();
    test_overlap();
    test_padding();
    test_last_error();
    test_last_index_error();
    test_threads();

    return finish();
}
