/*
 * parity.c — cross-ISA determinism of libembedding_native, through the C header.
 *
 * Runs a fixed, seeded set of calls (gather, dense/sparse backward, coalesce, renorm, the four
 * optimizer steps, EmbeddingBag forward/backward/sparse/per-sample-weights backward) over
 * embedding dims that hit every vector width's main loop and tail, plus one large case that
 * takes the multi-threaded paths, and a gather larger than the last-level cache. Every output is appended to <out.bin> and summarised on
 * stdout as "case <name> <bytes> <fnv1a-64>" (the large case is only hashed).
 *
 * tests/platform/parity.sh runs it against every tier (x86-64 natively and under qemu CPU
 * models, arm64 under qemu-aarch64) and requires all outputs to be identical byte for byte:
 * the library promises the same bits on every ISA tier.
 *
 * usage: parity <out.bin> [expected emb_isa_tier]
 * Exits 1 if a call fails, a gather differs from a plain C copy, or the tier is not the expected one.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "embedding_native.h"

static FILE* out_file;
static int errors;
static int write_raw = 1; /* the large case is only hashed (its outputs are ~200 MB) */

static uint32_t rng_state;
static uint32_t next_u32(void)
{
    /* xorshift32: deterministic and identical on every platform. */
    uint32_t x = rng_state;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    rng_state = x;
    return x;
}

static float bits_to_float(uint32_t bits)
{
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
}

/* Finite values in about [-4, 4] with a spread of exponents, so the order of additions shows
 * up in the rounding (a reordered sum would change bits). */
static float next_value(void)
{
    uint32_t r = next_u32();
    uint32_t sign = r & 0x80000000u;
    uint32_t exponent = 127u - 12u + ((r >> 24) % 14u); /* 2^-12 .. 2^1 */
    uint32_t mantissa = next_u32() & 0x007FFFFFu;
    return bits_to_float(sign | (exponent << 23) | mantissa);
}

static float* random_floats(int64_t n, int specials)
{
    static const uint32_t special_bits[] = { 0x80000000u, 0x7F800001u, 0xFFC12345u, 0x7F800000u, 0x00000001u, 0xFF800000u };
    float* p = (float*)malloc((size_t)(n > 0 ? n : 1) * sizeof(float));
    for (int64_t i = 0; i < n; i++) {
        p[i] = next_value();
        if (specials && i % 11 == 5) {
            p[i] = bits_to_float(special_bits[(size_t)(i / 11) % (sizeof special_bits / sizeof special_bits[0])]);
        }
    }
    return p;
}

static int64_t* random_indices(int64_t n, int64_t rows)
{
    int64_t* p = (int64_t*)malloc((size_t)(n > 0 ? n : 1) * sizeof(int64_t));
    for (int64_t i = 0; i < n; i++) {
        /* skew towards a few hot rows so duplicates (accumulation order) are common */
        uint32_t r = next_u32();
        p[i] = (r & 3u) == 0 ? (int64_t)(r >> 8) % 4 : (int64_t)(r >> 8) % rows;
    }
    return p;
}

static uint64_t fnv1a(const void* data, size_t bytes)
{
    const unsigned char* p = (const unsigned char*)data;
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < bytes; i++) {
        h ^= p[i];
        h *= 1099511628211ull;
    }
    return h;
}

static void emit(const char* name, int64_t dim, const void* data, size_t bytes)
{
    printf("case %s/D%" PRId64 " %zu %016" PRIx64 "\n", name, dim, bytes, fnv1a(data, bytes));
    if (write_raw && bytes > 0 && fwrite(data, 1, bytes, out_file) != bytes) {
        fprintf(stderr, "write failed\n");
        exit(2);
    }
}

static void ok(int32_t status, const char* what, int64_t dim)
{
    if (status != EMB_OK) {
        printf("ERROR %s/D%" PRId64 ": %s: %s\n", what, dim, emb_status_string(status), emb_last_error());
        errors++;
    }
}

static void run_dim(int64_t V, int64_t D, int64_t N)
{
    const int64_t pad = 5 % V;
    float* table = random_floats(V * D, 1);
    float* weight = random_floats(V * D, 0);
    int64_t* idx = random_indices(N, V);
    int32_t* idx32 = (int32_t*)malloc((size_t)N * sizeof(int32_t));
    for (int64_t i = 0; i < N; i++) idx32[i] = (int32_t)idx[i];
    float* out = (float*)malloc((size_t)(N * D) * sizeof(float));
    float* ref = (float*)malloc((size_t)(N * D) * sizeof(float));

    /* ---- gather, int64 and int32 indices; also checked against a plain copy ---- */
    ok(emb_embedding(table, EMB_DTYPE_FLOAT32, V, D, idx, EMB_DTYPE_INT64, N, out, N * D), "gather64", D);
    for (int64_t i = 0; i < N; i++) memcpy(ref + i * D, table + idx[i] * D, (size_t)D * sizeof(float));
    if (memcmp(out, ref, (size_t)(N * D) * sizeof(float)) != 0) {
        printf("ERROR gather64/D%" PRId64 ": differs from a plain copy\n", D);
        errors++;
    }
    emit("gather64", D, out, (size_t)(N * D) * sizeof(float));
    ok(emb_embedding(table, EMB_DTYPE_FLOAT32, V, D, idx32, EMB_DTYPE_INT32, N, out, N * D), "gather32", D);
    emit("gather32", D, out, (size_t)(N * D) * sizeof(float));

    /* ---- dense backward ---- */
    float* grad_out = random_floats(N * D, 0);
    float* grad_w = (float*)malloc((size_t)(V * D) * sizeof(float));
    static const struct { const char* name; int32_t flags; int padded; } dense[] = {
        { "backward", 0, 0 }, { "backward_pad", 0, 1 }, { "backward_freq", EMB_SCALE_GRAD_BY_FREQ, 0 },
        { "backward_freq_pad", EMB_SCALE_GRAD_BY_FREQ, 1 }, { "backward_accumulate", EMB_ACCUMULATE, 1 },
    };
    for (size_t k = 0; k < sizeof dense / sizeof dense[0]; k++) {
        for (int64_t i = 0; i < V * D; i++) grad_w[i] = weight[i];
        ok(emb_embedding_backward(grad_out, EMB_DTYPE_FLOAT32, N, D, k % 2 ? (const void*)idx32 : (const void*)idx,
                                  k % 2 ? EMB_DTYPE_INT32 : EMB_DTYPE_INT64, V, dense[k].padded ? pad : EMB_NO_PADDING,
                                  dense[k].flags, grad_w, V * D), dense[k].name, D);
        emit(dense[k].name, D, grad_w, (size_t)(V * D) * sizeof(float));
    }

    /* ---- sparse backward + coalesce ---- */
    int64_t* rows = (int64_t*)malloc((size_t)N * sizeof(int64_t));
    float* values = (float*)malloc((size_t)(N * D) * sizeof(float));
    int64_t* crows = (int64_t*)malloc((size_t)N * sizeof(int64_t));
    float* cvalues = (float*)malloc((size_t)(N * D) * sizeof(float));
    int64_t nnz = 0, num_rows = 0;
    ok(emb_embedding_backward_sparse(grad_out, EMB_DTYPE_FLOAT32, N, D, idx, EMB_DTYPE_INT64, V, pad,
                                     EMB_SCALE_GRAD_BY_FREQ, rows, values, N, &nnz), "sparse_backward", D);
    emit("sparse_backward.rows", D, rows, (size_t)nnz * sizeof(int64_t));
    emit("sparse_backward.values", D, values, (size_t)(nnz * D) * sizeof(float));
    ok(emb_embedding_backward_sparse(grad_out, EMB_DTYPE_FLOAT32, N, D, idx, EMB_DTYPE_INT64, V, EMB_NO_PADDING,
                                     0, rows, values, N, &nnz), "sparse_backward_plain", D);
    ok(emb_sparse_coalesce(rows, values, EMB_DTYPE_FLOAT32, nnz, D, V, crows, cvalues, N, &num_rows), "coalesce", D);
    emit("coalesce.rows", D, crows, (size_t)num_rows * sizeof(int64_t));
    emit("coalesce.values", D, cvalues, (size_t)(num_rows * D) * sizeof(float));

    /* ---- renorm ---- */
    static const double norms[] = { 2.0, 1.0, 3.5, 0.0, 1e300 * 1e300, -(1e300 * 1e300), -1.5 };
    static const char* norm_names[] = { "renorm_p2", "renorm_p1", "renorm_p3.5", "renorm_p0", "renorm_pinf", "renorm_pneginf", "renorm_pneg1.5" };
    float* w = (float*)malloc((size_t)(V * D) * sizeof(float));
    for (size_t k = 0; k < sizeof norms / sizeof norms[0]; k++) {
        memcpy(w, weight, (size_t)(V * D) * sizeof(float));
        ok(emb_embedding_renorm(w, EMB_DTYPE_FLOAT32, V, D, idx, EMB_DTYPE_INT64, N, 1.25, norms[k]), norm_names[k], D);
        emit(norm_names[k], D, w, (size_t)(V * D) * sizeof(float));
    }

    /* ---- optimizer steps, three steps each on the coalesced gradient ---- */
    float* s1 = (float*)malloc((size_t)(V * D) * sizeof(float));
    float* s2 = (float*)malloc((size_t)(V * D) * sizeof(float));
    memcpy(w, weight, (size_t)(V * D) * sizeof(float));
    for (int step = 1; step <= 3; step++)
        ok(emb_sgd_step(w, EMB_DTYPE_FLOAT32, V, D, crows, cvalues, num_rows, 0.1, step == 2 ? 0.01 : 0.0), "sgd", D);
    emit("sgd", D, w, (size_t)(V * D) * sizeof(float));
    memcpy(w, weight, (size_t)(V * D) * sizeof(float));
    for (int64_t i = 0; i < V * D; i++) s1[i] = 0.1f;
    for (int step = 1; step <= 3; step++)
        ok(emb_adagrad_step(w, s1, EMB_DTYPE_FLOAT32, V, D, crows, cvalues, num_rows, 0.05, 0.01, 1e-10, step), "adagrad", D);
    emit("adagrad.weight", D, w, (size_t)(V * D) * sizeof(float));
    emit("adagrad.state", D, s1, (size_t)(V * D) * sizeof(float));
    memcpy(w, weight, (size_t)(V * D) * sizeof(float));
    for (int64_t i = 0; i < V; i++) s1[i] = 0.0f;
    for (int step = 1; step <= 3; step++)
        ok(emb_rowwise_adagrad_step(w, s1, EMB_DTYPE_FLOAT32, V, D, crows, cvalues, num_rows, 0.05, 1e-8), "rowwise_adagrad", D);
    emit("rowwise_adagrad.weight", D, w, (size_t)(V * D) * sizeof(float));
    emit("rowwise_adagrad.momentum", D, s1, (size_t)V * sizeof(float));
    memcpy(w, weight, (size_t)(V * D) * sizeof(float));
    memset(s1, 0, (size_t)(V * D) * sizeof(float));
    memset(s2, 0, (size_t)(V * D) * sizeof(float));
    for (int step = 1; step <= 3; step++)
        ok(emb_sparse_adam_step(w, s1, s2, EMB_DTYPE_FLOAT32, V, D, crows, cvalues, num_rows, 0.01, 0.9, 0.999, 1e-8, step), "sparse_adam", D);
    emit("sparse_adam.weight", D, w, (size_t)(V * D) * sizeof(float));
    emit("sparse_adam.exp_avg", D, s1, (size_t)(V * D) * sizeof(float));
    emit("sparse_adam.exp_avg_sq", D, s2, (size_t)(V * D) * sizeof(float));

    /* ---- EmbeddingBag: offsets with empty bags, then forward/backward per mode ---- */
    int64_t num_offsets = N / 3 + 1;
    int64_t* offsets = (int64_t*)malloc((size_t)num_offsets * sizeof(int64_t));
    offsets[0] = 0;
    for (int64_t b = 1; b < num_offsets; b++) {
        int64_t o = offsets[b - 1] + (int64_t)(next_u32() % 6u); /* 0..5 positions: some bags empty */
        offsets[b] = o > N ? N : o;
    }
    float* psw = random_floats(N, 0);
    /* Powers of two: w * row is exact, so the weighted lookups give the same bits whether they fuse (torch's
     * choice on a CPU with AVX2 and FMA) or round the product (elsewhere, as on qemu's Nehalem and on arm64). */
    static const float powers_of_two[] = { 0.125f, 0.25f, 0.5f, 1, 2, 4, 8 };
    for (int64_t i = 0; i < N; i++) {
        psw[i] = psw[i] < 0 ? -powers_of_two[i % 7] : powers_of_two[i % 7];
    }
    float* bag_out = (float*)malloc((size_t)(num_offsets * D) * sizeof(float));
    int64_t* max_idx = (int64_t*)malloc((size_t)(num_offsets * D) * sizeof(int64_t));
    float* bag_grad = random_floats(num_offsets * D, 0);
    float* grad_psw = (float*)malloc((size_t)N * sizeof(float));
    static const char* mode_names[] = { "sum", "mean", "max" };
    for (int variant = 0; variant < 4; variant++) {
        /* 0: plain, 1: padding_idx, 2: per-sample weights, 3: per-sample weights + padding */
        emb_bags bags;
        memset(&bags, 0, sizeof bags);
        bags.indices = variant % 2 ? (const void*)idx32 : (const void*)idx;
        bags.index_dtype = variant % 2 ? EMB_DTYPE_INT32 : EMB_DTYPE_INT64;
        bags.num_indices = N;
        bags.offsets = offsets;
        bags.offsets_dtype = EMB_DTYPE_INT64;
        bags.num_offsets = num_offsets;
        bags.padding_idx = variant % 2 ? pad : EMB_NO_PADDING;
        bags.per_sample_weights = variant >= 2 ? psw : NULL;
        char name[96];
        for (int mode = 0; mode < 3; mode++) {
            if (variant >= 2 && mode != EMB_BAG_SUM) continue;
            int64_t num_bags = 0;
            ok(emb_embedding_bag_count(&bags, &num_bags), "bag_count", D);
            snprintf(name, sizeof name, "bag_%s_v%d", mode_names[mode], variant);
            ok(emb_embedding_bag(weight, EMB_DTYPE_FLOAT32, V, D, &bags, mode, bag_out, num_bags * D,
                                 mode == EMB_BAG_MAX ? max_idx : NULL, mode == EMB_BAG_MAX ? num_bags * D : 0), name, D);
            emit(name, D, bag_out, (size_t)(num_bags * D) * sizeof(float));
            if (mode == EMB_BAG_MAX) emit("bag_max_indices", D, max_idx, (size_t)(num_bags * D) * sizeof(int64_t));
            for (int flags = 0; flags <= EMB_SCALE_GRAD_BY_FREQ; flags++) {
                if (mode == EMB_BAG_MAX && flags) continue;
                for (int64_t i = 0; i < V * D; i++) grad_w[i] = weight[i];
                snprintf(name, sizeof name, "bag_backward_%s_v%d_f%d", mode_names[mode], variant, flags);
                ok(emb_embedding_bag_backward(bag_grad, EMB_DTYPE_FLOAT32, V, D, &bags, mode, max_idx,
                                              flags | (variant == 1 ? EMB_ACCUMULATE : 0), grad_w, V * D), name, D);
                emit(name, D, grad_w, (size_t)(V * D) * sizeof(float));
                if (mode != EMB_BAG_MAX) {
                    snprintf(name, sizeof name, "bag_backward_sparse_%s_v%d_f%d", mode_names[mode], variant, flags);
                    ok(emb_embedding_bag_backward_sparse(bag_grad, EMB_DTYPE_FLOAT32, V, D, &bags, mode, flags,
                                                         rows, values, N, &nnz), name, D);
                    emit(name, D, rows, (size_t)nnz * sizeof(int64_t));
                    emit(name, D, values, (size_t)(nnz * D) * sizeof(float));
                }
            }
            if (mode == EMB_BAG_SUM) {
                snprintf(name, sizeof name, "bag_psw_backward_v%d", variant);
                ok(emb_embedding_bag_per_sample_weights_backward(bag_grad, EMB_DTYPE_FLOAT32, weight, V, D, &bags,
                                                                 EMB_BAG_SUM, grad_psw, N), name, D);
                emit(name, D, grad_psw, (size_t)N * sizeof(float));
            }
        }
    }
    /* fixed-size bags (a 2-D input), include_last_offset */
    {
        emb_bags bags;
        memset(&bags, 0, sizeof bags);
        int64_t bag_size = 3, n = N - N % 3;
        bags.indices = idx;
        bags.index_dtype = EMB_DTYPE_INT64;
        bags.num_indices = n;
        bags.bag_size = bag_size;
        bags.padding_idx = EMB_NO_PADDING;
        ok(emb_embedding_bag(weight, EMB_DTYPE_FLOAT32, V, D, &bags, EMB_BAG_MEAN, bag_out, (n / 3) * D, NULL, 0), "bag_fixed", D);
        emit("bag_fixed_mean", D, bag_out, (size_t)((n / 3) * D) * sizeof(float));
        memset(&bags, 0, sizeof bags);
        int64_t* csr = (int64_t*)malloc((size_t)(num_offsets + 1) * sizeof(int64_t));
        memcpy(csr, offsets, (size_t)num_offsets * sizeof(int64_t));
        csr[num_offsets] = N;
        bags.indices = idx;
        bags.index_dtype = EMB_DTYPE_INT64;
        bags.num_indices = N;
        bags.offsets = csr;
        bags.offsets_dtype = EMB_DTYPE_INT64;
        bags.num_offsets = num_offsets + 1;
        bags.include_last_offset = 1;
        bags.padding_idx = EMB_NO_PADDING;
        ok(emb_embedding_bag(weight, EMB_DTYPE_FLOAT32, V, D, &bags, EMB_BAG_SUM, bag_out, num_offsets * D, NULL, 0), "bag_csr", D);
        emit("bag_csr_sum", D, bag_out, (size_t)(num_offsets * D) * sizeof(float));
        free(csr);
    }

    free(table); free(weight); free(idx); free(idx32); free(out); free(ref); free(grad_out); free(grad_w);
    free(rows); free(values); free(crows); free(cvalues); free(w); free(s1); free(s2); free(offsets);
    free(psw); free(bag_out); free(max_idx); free(bag_grad); free(grad_psw);
}

/* Gathers whose output is larger than the last-level cache (32 MiB here;
 * x86-64); only hashed. An odd dimension and an output offset by one float test the edges. */
static void run_large_gather(int64_t V, int64_t D, int64_t N)
{
    float* table = random_floats(V * D, 1);
    int64_t* idx = random_indices(N, V);
    float* out = (float*)malloc((size_t)(N * D + 1) * sizeof(float));
    ok(emb_embedding(table, EMB_DTYPE_FLOAT32, V, D, idx, EMB_DTYPE_INT64, N, out + 1, N * D), "large_gather", D);
    for (int64_t i = 0; i < N; i++) {
        if (memcmp(out + 1 + i * D, table + idx[i] * D, (size_t)D * sizeof(float)) != 0) {
            printf("ERROR large_gather/D%" PRId64 ": row %" PRId64 " differs from a plain copy\n", D, i);
            errors++;
            break;
        }
    }
    emit("large_gather", D, out + 1, (size_t)(N * D) * sizeof(float));
    free(table);
    free(idx);
    free(out);
}

int main(int argc, char** argv)
{
    setvbuf(stdout, NULL, _IONBF, 0);
    if (argc < 2) {
        fprintf(stderr, "usage: %s <out.bin> [expected emb_isa_tier]\n", argv[0]);
        return 2;
    }
    out_file = fopen(argv[1], "wb");
    if (out_file == NULL) {
        perror(argv[1]);
        return 2;
    }
    int32_t isa = emb_isa_tier();
    int32_t cpu = emb_cpu_tier();
    printf("tier emb_isa_tier=%d emb_cpu_tier=%d version=%s\n", (int)isa, (int)cpu, emb_version_string());
    printf("build %s\n", emb_build_info());
    if (argc > 2 && isa != atoi(argv[2])) {
        printf("ERROR emb_isa_tier() = %d, expected %s\n", (int)isa, argv[2]);
        errors++;
    }

    static const int64_t dims[] = { 1, 2, 3, 4, 5, 7, 8, 9, 15, 16, 17, 24, 31, 32, 33, 48, 63, 64, 65, 96, 100, 127, 128, 129,
                                     256, 257, 300, 384, 512, 768 };
    for (size_t k = 0; k < sizeof dims / sizeof dims[0]; k++) {
        rng_state = 0x9E3779B9u ^ (uint32_t)(dims[k] * 7919);
        run_dim(37, dims[k], 211);
    }
    /* large enough for the library's multi-threaded paths */
    rng_state = 0x12345678u;
    write_raw = 0;
    run_dim(3000, 64, 40000);
    rng_state = 0x2468ACE1u;
    run_large_gather(5000, 100, 90000); /* 36 MB of output */

    fclose(out_file);
    printf("parity: %d call errors\n", errors);
    return errors == 0 ? 0 : 1;
}
