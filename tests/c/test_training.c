/*
 * test_training.c — the training half of the C ABI (backward, sparse gradients, renorm, fused
 * optimizer steps), tested from C through the header alone, on torch 1.13's own worked examples
 * (see the spec: dense/sparse gradient of idx [[0,2,2],[1,2,0]], renorm of [3,-4] per norm_type)
 * and on every error path: exact status, a message, and nothing written.
 *
 * Prints one line per check and ends with "N passed, M failed"; exits 1 if anything failed.
 */
#include <math.h>

#include "check.h"

#define V 4
#define D 3
#define N 6

/* torch: idx = [[0,2,2],[1,2,0]], grad_out = arange(18).view(2,3,3), weight 4 x 3. */
static const int64_t example_indices[N] = { 0, 2, 2, 1, 2, 0 };

static void arange(float* values, int count)
{
    for (int i = 0; i < count; i++) {
        values[i] = (float)i;
    }
}

static int rows_equal(const float* actual, const float* expected, int count)
{
    return memcmp(actual, expected, (size_t)count * sizeof(float)) == 0;
}

static void test_dense_backward(void)
{
    float grad_output[N * D], grad[V * D];
    arange(grad_output, N * D);

    static const float plain[V * D] = { 15, 17, 19, 9, 10, 11, 21, 24, 27, 0, 0, 0 };
    memset(grad, SENTINEL_BYTE, sizeof grad);
    int32_t status = emb_embedding_backward(grad_output, EMB_DTYPE_FLOAT32, N, D, example_indices, EMB_DTYPE_INT64,
                                            V, EMB_NO_PADDING, 0, grad, V * D);
    check(status == EMB_OK && rows_equal(grad, plain, V * D), "dense backward: torch's example, no padding");

    static const float padded[V * D] = { 15, 17, 19, 9, 10, 11, 0, 0, 0, 0, 0, 0 };
    status = emb_embedding_backward(grad_output, EMB_DTYPE_FLOAT32, N, D, example_indices, EMB_DTYPE_INT64,
                                    V, 2, 0, grad, V * D);
    check(status == EMB_OK && rows_equal(grad, padded, V * D), "dense backward: padding row 2 receives nothing");

    /* Row 0 occurs twice, row 2 three times: fma(g, fl(1/c), acc). */
    static const float by_frequency[V * D] = { 7.5f, 8.5f, 9.5f, 9, 10, 11, 7, 8, 9, 0, 0, 0 };
    status = emb_embedding_backward(grad_output, EMB_DTYPE_FLOAT32, N, D, example_indices, EMB_DTYPE_INT64,
                                    V, EMB_NO_PADDING, EMB_SCALE_GRAD_BY_FREQ, grad, V * D);
    check(status == EMB_OK && rows_equal(grad, by_frequency, V * D), "dense backward: scale_grad_by_freq");

    float twice[V * D];
    for (int i = 0; i < V * D; i++) {
        twice[i] = 2 * plain[i];
    }
    emb_embedding_backward(grad_output, EMB_DTYPE_FLOAT32, N, D, example_indices, EMB_DTYPE_INT64,
                           V, EMB_NO_PADDING, 0, grad, V * D);
    status = emb_embedding_backward(grad_output, EMB_DTYPE_FLOAT32, N, D, example_indices, EMB_DTYPE_INT64,
                                    V, EMB_NO_PADDING, EMB_ACCUMULATE, grad, V * D);
    check(status == EMB_OK && rows_equal(grad, twice, V * D), "dense backward: EMB_ACCUMULATE adds into the gradient");

    int32_t indices32[N] = { 0, 2, 2, 1, 2, 0 };
    status = emb_embedding_backward(grad_output, EMB_DTYPE_FLOAT32, N, D, indices32, EMB_DTYPE_INT32,
                                    V, EMB_NO_PADDING, 0, grad, V * D);
    check(status == EMB_OK && rows_equal(grad, plain, V * D), "dense backward: int32 indices give the same gradient");
}

static void test_sparse_backward(void)
{
    float grad_output[N * D], values[N * D];
    int64_t rows[N], nnz = -1;
    arange(grad_output, N * D);

    int32_t status = emb_embedding_backward_sparse(grad_output, EMB_DTYPE_FLOAT32, N, D, example_indices, EMB_DTYPE_INT64,
                                                   V, EMB_NO_PADDING, 0, rows, values, N, &nnz);
    check(status == EMB_OK && nnz == N && memcmp(rows, example_indices, sizeof rows) == 0
              && rows_equal(values, grad_output, N * D),
          "sparse backward: one entry per position, in position order, uncoalesced");

    static const int64_t padded_rows[3] = { 0, 1, 0 };
    status = emb_embedding_backward_sparse(grad_output, EMB_DTYPE_FLOAT32, N, D, example_indices, EMB_DTYPE_INT64,
                                           V, 2, 0, rows, values, N, &nnz);
    check(status == EMB_OK && nnz == 3 && memcmp(rows, padded_rows, sizeof padded_rows) == 0
              && rows_equal(values, grad_output, D) && rows_equal(values + D, grad_output + 3 * D, D)
              && rows_equal(values + 2 * D, grad_output + 5 * D, D),
          "sparse backward: padding positions are skipped");

    int64_t unique[N];
    float summed[N * D];
    int64_t count = -1;
    status = emb_embedding_backward_sparse(grad_output, EMB_DTYPE_FLOAT32, N, D, example_indices, EMB_DTYPE_INT64,
                                           V, EMB_NO_PADDING, 0, rows, values, N, &nnz);
    status = status == EMB_OK ? emb_sparse_coalesce(rows, values, EMB_DTYPE_FLOAT32, nnz, D, V, unique, summed, N, &count) : status;
    static const int64_t unique_rows[3] = { 0, 1, 2 };
    static const float sums[3 * D] = { 15, 17, 19, 9, 10, 11, 21, 24, 27 };
    check(status == EMB_OK && count == 3 && memcmp(unique, unique_rows, sizeof unique_rows) == 0 && rows_equal(summed, sums, 3 * D),
          "sparse coalesce: unique ascending rows with summed values (equal to the dense gradient)");

    status = emb_embedding_backward_sparse(grad_output, EMB_DTYPE_FLOAT32, 0, D, NULL, EMB_DTYPE_INT64,
                                           V, EMB_NO_PADDING, 0, NULL, NULL, 0, &nnz);
    check(status == EMB_OK && nnz == 0, "sparse backward: empty input gives no entries");
}

static void test_backward_errors(void)
{
    float grad_output[N * D], grad[V * D];
    arange(grad_output, N * D);
    int64_t bad[N] = { 0, 2, 2, 1, 4, 0 };

    memset(grad, SENTINEL_BYTE, sizeof grad);
    int32_t status = emb_embedding_backward(grad_output, EMB_DTYPE_FLOAT32, N, D, bad, EMB_DTYPE_INT64,
                                            V, EMB_NO_PADDING, 0, grad, V * D);
    if (!check(status == EMB_ERROR_INDEX_OUT_OF_RANGE && has_message() && all_bytes_are(grad, sizeof grad, SENTINEL_BYTE),
               "dense backward: an out-of-range index fails and writes nothing")) {
        explain(status, EMB_ERROR_INDEX_OUT_OF_RANGE);
    }

    status = emb_embedding_backward(grad_output, EMB_DTYPE_FLOAT32, N, D, example_indices, EMB_DTYPE_INT64,
                                    V, V, 0, grad, V * D);
    check(status == EMB_ERROR_INDEX_OUT_OF_RANGE && has_message(), "dense backward: padding_idx outside the table fails");

    status = emb_embedding_backward(grad_output, EMB_DTYPE_FLOAT32, N, D, example_indices, EMB_DTYPE_INT64,
                                    V, EMB_NO_PADDING, 0, grad, V * D - 1);
    check(status == EMB_ERROR_BUFFER_TOO_SMALL && has_message(), "dense backward: a too-small gradient buffer fails");

    status = emb_embedding_backward(NULL, EMB_DTYPE_FLOAT32, N, D, example_indices, EMB_DTYPE_INT64,
                                    V, EMB_NO_PADDING, 0, grad, V * D);
    check(status == EMB_ERROR_NULL_POINTER && has_message(), "dense backward: NULL grad_output fails");

    status = emb_embedding_backward(grad_output, EMB_DTYPE_INT32, N, D, example_indices, EMB_DTYPE_INT64,
                                    V, EMB_NO_PADDING, 0, grad, V * D);
    check(status == EMB_ERROR_UNSUPPORTED_DTYPE && has_message(), "dense backward: int32 gradients are refused");

    status = emb_embedding_backward(grad_output, EMB_DTYPE_FLOAT32, N, D, example_indices, EMB_DTYPE_INT64,
                                    V, EMB_NO_PADDING, 0, grad_output, V * D);
    check(status == EMB_ERROR_INVALID_ARGUMENT && has_message(), "dense backward: a gradient overlapping grad_output fails");

    int64_t rows[N], nnz = -1;
    float values[N * D];
    status = emb_embedding_backward_sparse(grad_output, EMB_DTYPE_FLOAT32, N, D, example_indices, EMB_DTYPE_INT64,
                                           V, EMB_NO_PADDING, 0, rows, values, N - 1, &nnz);
    check(status == EMB_ERROR_BUFFER_TOO_SMALL && has_message(), "sparse backward: too little capacity fails");

    int64_t out_of_range_rows[2] = { 1, 7 };
    int64_t unique[2], count = -1;
    status = emb_sparse_coalesce(out_of_range_rows, values, EMB_DTYPE_FLOAT32, 2, D, V, unique, values + 2 * D, 2, &count);
    check(status == EMB_ERROR_INDEX_OUT_OF_RANGE && has_message(), "sparse coalesce: a row outside the table fails");
}

/* Every buffer of one sparse call in a single block, so a count can be aimed into any of them and
 * the whole block compared afterwards. All sizes are multiples of 8: no padding, and a count
 * placed at an even float is an aligned int64_t. */
struct sparse_block {
    float grad_output[N * D];
    int64_t indices[N];
    int64_t rows[N];
    float values[N * D];
    int64_t after; /* directly behind values: touching, not overlapping */
};

static void fill_sparse_block(struct sparse_block* block)
{
    memset(block, SENTINEL_BYTE, sizeof *block);
    arange(block->grad_output, N * D);
    memcpy(block->indices, example_indices, sizeof block->indices);
}

/* The counts (nnz, num_rows) are outputs like the arrays: one that points into an input or into
 * another output is refused before anything is written. */
static void test_count_overlap(void)
{
    struct sparse_block block, before;
    fill_sparse_block(&block);
    before = block;
    struct { int64_t* nnz; const char* name; const char* what; } sparse_cases[] = {
        { &block.indices[4], "indices", "sparse backward: nnz inside indices" },
        { &block.rows[4], "out_rows", "sparse backward: nnz inside out_rows" },
        { (int64_t*)(void*)&block.values[2 * D], "out_values", "sparse backward: nnz inside out_values" },
        { (int64_t*)(void*)&block.grad_output[2], "grad_output", "sparse backward: nnz inside grad_output" },
    };
    for (size_t c = 0; c < sizeof sparse_cases / sizeof sparse_cases[0]; c++) {
        block = before; /* each case starts clean, whatever an earlier one did */
        int32_t status = emb_embedding_backward_sparse(block.grad_output, EMB_DTYPE_FLOAT32, N, D, block.indices, EMB_DTYPE_INT64,
                                                       V, EMB_NO_PADDING, 0, block.rows, block.values, N, sparse_cases[c].nnz);
        expect_overlap_refused(status, "nnz", sparse_cases[c].name, memcmp(&block, &before, sizeof block) == 0, sparse_cases[c].what);
    }

    block = before;
    int32_t status = emb_embedding_backward_sparse(block.grad_output, EMB_DTYPE_FLOAT32, N, D, block.indices, EMB_DTYPE_INT64,
                                                   V, EMB_NO_PADDING, 0, block.rows, block.values, N, &block.after);
    check(status == EMB_OK && block.after == N && memcmp(block.rows, example_indices, sizeof block.rows) == 0,
          "sparse backward: nnz directly after out_values (touching, not overlapping) is accepted");

    /* Coalesce reads rows and values; its outputs (3 rows, 3 x D sums) live in grad_output's bytes. */
    int64_t* unique = (int64_t*)(void*)block.grad_output;
    float* summed = block.grad_output + 6;
    fill_sparse_block(&block);
    memcpy(block.rows, example_indices, sizeof block.rows);
    arange(block.values, N * D);
    before = block;
    struct { int64_t* num_rows; const char* name; const char* what; } coalesce_cases[] = {
        { &block.rows[5], "rows", "sparse coalesce: num_rows inside rows" },
        { (int64_t*)(void*)&block.values[4], "values", "sparse coalesce: num_rows inside values" },
        { &unique[1], "out_rows", "sparse coalesce: num_rows inside out_rows" },
        { (int64_t*)(void*)&summed[2], "out_values", "sparse coalesce: num_rows inside out_values" },
    };
    for (size_t c = 0; c < sizeof coalesce_cases / sizeof coalesce_cases[0]; c++) {
        block = before;
        status = emb_sparse_coalesce(block.rows, block.values, EMB_DTYPE_FLOAT32, N, D, V, unique, summed, 3,
                                     coalesce_cases[c].num_rows);
        expect_overlap_refused(status, "num_rows", coalesce_cases[c].name, memcmp(&block, &before, sizeof block) == 0, coalesce_cases[c].what);
    }

    block = before;
    status = emb_sparse_coalesce(block.rows, block.values, EMB_DTYPE_FLOAT32, N, D, V, unique, summed, 3, &block.indices[0]);
    check(status == EMB_OK && block.indices[0] == 3 && unique[0] == 0 && unique[2] == 2,
          "sparse coalesce: num_rows in a buffer the call does not take is accepted");
}

/* Spec table: row [3, -4] renormalised to max_norm 1 under each norm_type, float32 results. */
static void test_renorm(void)
{
    static const struct { double p; float first, second; } cases[] = {
        { 1.0, 0.4285714030265808f, -0.5714285373687744f },
        { 2.0, 0.6000000238418579f, -0.800000011920929f },
        { INFINITY, 0.75f, -1.0f },
        { 0.0, 1.4999998807907104f, -1.9999998807907104f },
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        float weight[4] = { 3, -4, 1, 2 };
        int64_t indices[3] = { 0, 0, 0 };
        int32_t status = emb_embedding_renorm(weight, EMB_DTYPE_FLOAT32, 2, 2, indices, EMB_DTYPE_INT64, 3, 1.0, cases[c].p);
        float expected[4] = { cases[c].first, cases[c].second, 1, 2 };
        if (!check(status == EMB_OK && rows_equal(weight, expected, 4),
                   "renorm: [3, -4] to max_norm 1 with p = %g matches torch (row 1 untouched)", cases[c].p)) {
            printf("     got [%.9g, %.9g]\n", weight[0], weight[1]);
        }
    }

    float weight[4] = { 3, 4, 6, 8 };
    int64_t indices[2] = { 0, 5 };
    int32_t status = emb_embedding_renorm(weight, EMB_DTYPE_FLOAT32, 2, 2, indices, EMB_DTYPE_INT64, 2, 1.0, 2.0);
    float unchanged[4] = { 3, 4, 6, 8 };
    check(status == EMB_ERROR_INDEX_OUT_OF_RANGE && rows_equal(weight, unchanged, 4),
          "renorm: a bad index fails before any row changes (torch 1.13 renormalises row 0 first)");

    int64_t on_limit[1] = { 0 };
    status = emb_embedding_renorm(weight, EMB_DTYPE_FLOAT32, 2, 2, on_limit, EMB_DTYPE_INT64, 1, 5.0, 2.0);
    check(status == EMB_OK && rows_equal(weight, unchanged, 4), "renorm: a norm equal to max_norm is left alone");
}

/* torch 1.13's embedding_renorm_ of row [3, -4] (indices {0, 0, 0}) to max_norm 1 in each other
 * table type and norm_type, as bit patterns; row 1 stays [1, 2]. Then the norm(0) counts that stop
 * in the type (bfloat16 at 256, float16 at 2048) and the type checks. */
static void test_renorm_table_types(void)
{
    static const double ps[] = { 2.0, 1.0, 0.0, INFINITY, 3.0, 0.5 };
    static const double f64[][2] = {
        { 0x1.333332cc1eebep-1, -0x1.99999910293a8p-1 }, { 0x1.b6db6d4dac9d1p-2, -0x1.249248de73136p-1 },
        { 0x1.7ffffebde0a1ep+0, -0x1.fffffe5280d7dp+0 }, { 0x1.7fffff5ef050ap-1, -0x1.ffffff29406b8p-1 },
        { 0x1.557d52a671ac1p-1, -0x1.c751c38897901p-1 }, { 0x1.b91e8db911702p-3, -0x1.26145e7b60f57p-2 },
    };
    static const uint16_t f16[][2] = {
        { 0x38CC, 0xBA66 }, { 0x36DB, 0xB892 }, { 0x3E00, 0xC000 }, { 0x3A00, 0xBC00 }, { 0x3956, 0xBB1E }, { 0x32E4, 0xB498 },
    };
    static const uint16_t bf16[][2] = {
        { 0x3F1A, 0xBF4D }, { 0x3EDB, 0xBF12 }, { 0x3FC0, 0xC000 }, { 0x3F40, 0xBF80 }, { 0x3F2B, 0xBF64 }, { 0x3E5C, 0xBE93 },
    };
    const int64_t indices[3] = { 0, 0, 0 };
    const int32_t indices32[3] = { 0, 0, 0 };
    for (size_t c = 0; c < sizeof ps / sizeof ps[0]; c++) {
        double wd[4] = { 3, -4, 1, 2 };
        int32_t status = emb_embedding_renorm(wd, EMB_DTYPE_FLOAT64, 2, 2, indices, EMB_DTYPE_INT64, 3, 1.0, ps[c]);
        double expected_d[4] = { f64[c][0], f64[c][1], 1, 2 };
        if (!check(status == EMB_OK && memcmp(wd, expected_d, sizeof wd) == 0,
                   "renorm float64: [3, -4] to max_norm 1 with p = %g is torch's, bit for bit", ps[c])) {
            printf("     got [%a, %a]\n", wd[0], wd[1]);
        }

        uint16_t wh[4] = { 0x4200, 0xC400, 0x3C00, 0x4000 }; /* half 3, -4, 1, 2 */
        status = emb_embedding_renorm(wh, EMB_DTYPE_FLOAT16, 2, 2, indices32, EMB_DTYPE_INT32, 3, 1.0, ps[c]);
        uint16_t expected_h[4] = { f16[c][0], f16[c][1], 0x3C00, 0x4000 };
        if (!check(status == EMB_OK && memcmp(wh, expected_h, sizeof wh) == 0,
                   "renorm float16: [3, -4] to max_norm 1 with p = %g is torch's, bit for bit", ps[c])) {
            printf("     got [0x%04X, 0x%04X]\n", wh[0], wh[1]);
        }

        uint16_t wb[4] = { 0x4040, 0xC080, 0x3F80, 0x4000 }; /* bfloat16 3, -4, 1, 2 */
        status = emb_embedding_renorm(wb, EMB_DTYPE_BFLOAT16, 2, 2, indices, EMB_DTYPE_INT64, 3, 1.0, ps[c]);
        uint16_t expected_b[4] = { bf16[c][0], bf16[c][1], 0x3F80, 0x4000 };
        if (!check(status == EMB_OK && memcmp(wb, expected_b, sizeof wb) == 0,
                   "renorm bfloat16: [3, -4] to max_norm 1 with p = %g is torch's, bit for bit", ps[c])) {
            printf("     got [0x%04X, 0x%04X]\n", wb[0], wb[1]);
        }
    }

    /* norm(0) of 300 bfloat16 ones is 256 and of 2100 float16 ones 2048: kept below those, rescaled
     * by the type's rd(max_norm / count) above. */
    static uint16_t ones[2100];
    static const struct { int32_t dtype; int64_t dim; uint16_t one; double max_norm; uint16_t expected; const char* what; } counts[] = {
        { EMB_DTYPE_BFLOAT16, 300, 0x3F80, 280.0, 0x3F80, "bfloat16 count stops at 256: max_norm 280 keeps the row" },
        { EMB_DTYPE_BFLOAT16, 300, 0x3F80, 255.0, 0x3F7F, "bfloat16 count stops at 256: max_norm 255 scales by 255/256" },
        { EMB_DTYPE_FLOAT16, 2100, 0x3C00, 2050.0, 0x3C00, "float16 count stops at 2048: max_norm 2050 keeps the row" },
        { EMB_DTYPE_FLOAT16, 2100, 0x3C00, 2000.0, 0x3BD0, "float16 count stops at 2048: max_norm 2000 scales by 2000/2048" },
    };
    for (size_t c = 0; c < sizeof counts / sizeof counts[0]; c++) {
        for (int64_t i = 0; i < counts[c].dim; i++) {
            ones[i] = counts[c].one;
        }
        int32_t status = emb_embedding_renorm(ones, counts[c].dtype, 1, counts[c].dim, indices, EMB_DTYPE_INT64, 1, counts[c].max_norm, 0.0);
        int ok = status == EMB_OK;
        for (int64_t i = 0; i < counts[c].dim && ok; i++) {
            ok = ones[i] == counts[c].expected;
        }
        check(ok, "renorm: %s", counts[c].what);
    }

    /* Integer and unknown weight types are refused, and the overlap check counts 2-byte elements. */
    double wd[4] = { 3, -4, 1, 2 };
    int32_t status = emb_embedding_renorm(wd, EMB_DTYPE_INT64, 2, 2, indices, EMB_DTYPE_INT64, 1, 1.0, 2.0);
    check(status == EMB_ERROR_UNSUPPORTED_DTYPE && wd[0] == 3, "renorm: weight dtype INT64 is refused, nothing changed");
    status = emb_embedding_renorm(wd, 7, 2, 2, indices, EMB_DTYPE_INT64, 1, 1.0, 2.0);
    check(status == EMB_ERROR_UNSUPPORTED_DTYPE && wd[0] == 3, "renorm: weight dtype 7 is refused, nothing changed");
    uint16_t packed[8] = { 0x4200, 0xC400, 0x3C00, 0x4000, 0, 0, 0, 0 };
    status = emb_embedding_renorm(packed, EMB_DTYPE_FLOAT16, 2, 2, packed + 4, EMB_DTYPE_INT64, 1, 1.0, 2.0);
    check(status == EMB_OK && packed[0] == 0x38CC, "renorm float16: indices right after the 8-byte table do not overlap it");
    status = emb_embedding_renorm(wd, EMB_DTYPE_FLOAT64, 2, 2, (const int64_t*)&wd[3], EMB_DTYPE_INT64, 1, 1.0, 2.0);
    check(status == EMB_ERROR_INVALID_ARGUMENT, "renorm float64: indices inside the 32-byte table overlap it");
}

static void test_optimizers(void)
{
    float weight[V * D], state[V * D], second[V * D], momentum[V];
    static const int64_t rows[2] = { 1, 3 };
    static const float values[2 * D] = { 1, 2, 3, -1, -2, -3 };

    arange(weight, V * D);
    int32_t status = emb_sgd_step(weight, EMB_DTYPE_FLOAT32, V, D, rows, values, 2, 0.5, 0.0);
    static const float after_sgd[V * D] = { 0, 1, 2, 2.5f, 3, 3.5f, 6, 7, 8, 9.5f, 11, 12.5f };
    check(status == EMB_OK && rows_equal(weight, after_sgd, V * D), "sgd: w -= lr * g on the listed rows only");

    arange(weight, V * D);
    memset(state, 0, sizeof state);
    status = emb_adagrad_step(weight, state, EMB_DTYPE_FLOAT32, V, D, rows, values, 2, 1.0, 0.0, 0.0, 1);
    /* First step with eps 0: state = g^2, w -= g / |g| = sign(g). */
    static const float after_adagrad[V * D] = { 0, 1, 2, 2, 3, 4, 6, 7, 8, 10, 11, 12 };
    check(status == EMB_OK && rows_equal(weight, after_adagrad, V * D) && state[3] == 1 && state[11] == 9 && state[0] == 0,
          "adagrad: first step moves each touched element by lr * sign(g)");

    arange(weight, V * D);
    memset(momentum, 0, sizeof momentum);
    status = emb_rowwise_adagrad_step(weight, momentum, EMB_DTYPE_FLOAT32, V, D, rows, values, 2, 1.0, 0.0);
    float mean_square = (1.0f + 4.0f + 9.0f) / 3.0f;
    check(status == EMB_OK && momentum[1] == mean_square && momentum[3] == mean_square && momentum[0] == 0 && momentum[2] == 0,
          "rowwise adagrad: one accumulator per touched row holds the mean squared gradient");

    arange(weight, V * D);
    memset(state, 0, sizeof state);
    memset(second, 0, sizeof second);
    status = emb_sparse_adam_step(weight, state, second, EMB_DTYPE_FLOAT32, V, D, rows, values, 2, 0.1, 0.9, 0.999, 1e-8, 1);
    /* Step 1 of Adam moves every touched element by about lr * sign(g). */
    check(status == EMB_OK && fabsf(weight[3] - 2.9f) < 1e-5f && fabsf(weight[9] - 9.1f) < 1e-5f && weight[0] == 0,
          "sparse adam: the first step moves touched elements by lr * sign(g)");

    static const int64_t unsorted[2] = { 3, 1 };
    arange(weight, V * D);
    float copy[V * D];
    memcpy(copy, weight, sizeof copy);
    status = emb_sgd_step(weight, EMB_DTYPE_FLOAT32, V, D, unsorted, values, 2, 0.5, 0.0);
    check(status == EMB_ERROR_INVALID_ARGUMENT && has_message() && rows_equal(weight, copy, V * D),
          "optimizer steps: rows not strictly ascending fail and change nothing");

    static const int64_t outside[2] = { 1, 4 };
    status = emb_sgd_step(weight, EMB_DTYPE_FLOAT32, V, D, outside, values, 2, 0.5, 0.0);
    check(status == EMB_ERROR_INDEX_OUT_OF_RANGE && has_message() && rows_equal(weight, copy, V * D),
          "optimizer steps: a row outside the table fails and changes nothing");

    status = emb_adagrad_step(weight, NULL, EMB_DTYPE_FLOAT32, V, D, rows, values, 2, 1.0, 0.0, 1e-10, 1);
    check(status == EMB_ERROR_NULL_POINTER && has_message(), "optimizer steps: NULL state fails");
}

/* ---- float64, float16 and bfloat16 gradients ------------------------------------------------
 * A scalar model of torch 1.13 written from docs/table-types.md ("Embedding dense backward",
 * "Embedding sparse backward and coalesce"), with its own 16-bit conversions, compared byte for
 * byte with the library. rd() rounds a float to the 16-bit type, nearest with ties to even. */

static float f16_to_f32(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16, exponent = (h >> 10) & 0x1Fu, mantissa = h & 0x3FFu;
    if (exponent == 0) {
        float magnitude = ldexpf((float)mantissa, -24);
        return sign ? -magnitude : magnitude;
    }
    uint32_t bits = sign | (exponent == 31 ? 0x7F800000u : (exponent + 112u) << 23) | mantissa << 13;
    float value;
    memcpy(&value, &bits, sizeof value);
    return value;
}

static uint16_t f32_to_f16(float value)
{
    uint32_t bits;
    memcpy(&bits, &value, sizeof bits);
    uint16_t sign = (uint16_t)((bits >> 16) & 0x8000u);
    uint32_t magnitude = bits & 0x7FFFFFFFu;
    if (magnitude > 0x7F800000u) {
        return sign | 0x7E00u;                       /* NaN */
    }
    if (magnitude >= 0x47800000u) {
        return sign | 0x7C00u;                       /* beyond the largest finite half, or inf */
    }
    if (magnitude >= 0x38800000u) {                  /* normal: drop 13 bits, ties to even; a carry may reach inf */
        return sign | (uint16_t)((magnitude + 0xFFFu + ((magnitude >> 13) & 1u) - 0x38000000u) >> 13);
    }
    float scaled;                                    /* subnormal: multiples of 2^-24, exact scaling */
    memcpy(&scaled, &magnitude, sizeof scaled);
    return sign | (uint16_t)nearbyintf(scaled * 16777216.0f);
}

static float bf16_to_f32(uint16_t b)
{
    uint32_t bits = (uint32_t)b << 16;
    float value;
    memcpy(&value, &bits, sizeof value);
    return value;
}

static uint16_t f32_to_bf16(float value)
{
    uint32_t bits;
    memcpy(&bits, &value, sizeof bits);
    return isnan(value) ? 0x7FC0u : (uint16_t)((bits + 0x7FFFu + ((bits >> 16) & 1u)) >> 16);
}

static float widen16(int32_t dtype, uint16_t bits)
{
    return dtype == EMB_DTYPE_FLOAT16 ? f16_to_f32(bits) : bf16_to_f32(bits);
}

/* The torch kernel set the library follows (emb_build_info(): "fused_products", "torch_kernels"):
 * its AVX2 / AVX-512 kernels fuse a + alpha*b, in bfloat16 in whole chunks of 32 (64) columns;
 * its default kernels round the product first. Read in main. */
static int fused_products = 1;
static int64_t bfloat16_chunk = 32;

static uint16_t round16(int32_t dtype, float value)
{
    return dtype == EMB_DTYPE_FLOAT16 ? f32_to_f16(value) : f32_to_bf16(value);
}

/* One update of acc with g: rd(acc + g); with count > 0 the scale_grad_by_freq update for a row
 * named count times, fl(1/count) = double -> (float ->) type. */
static void model_update(int32_t dtype, void* acc, const void* g, int count, int64_t column, int64_t dim)
{
    if (dtype == EMB_DTYPE_FLOAT64) {
        double a, x;
        memcpy(&a, acc, sizeof a);
        memcpy(&x, g, sizeof x);
        a = !count ? a + x : fused_products ? fma(x, 1.0 / count, a) : x * (1.0 / count) + a;
        memcpy(acc, &a, sizeof a);
        return;
    }
    uint16_t a16, g16;
    memcpy(&a16, acc, sizeof a16);
    memcpy(&g16, g, sizeof g16);
    float a = widen16(dtype, a16), x = widen16(dtype, g16);
    uint16_t result;
    if (!count) {
        result = round16(dtype, a + x);
    } else {
        float scale = widen16(dtype, round16(dtype, (float)(1.0 / count)));
        int fused = fused_products && dtype == EMB_DTYPE_BFLOAT16 && column < dim - dim % bfloat16_chunk;
        result = fused ? round16(dtype, fmaf(x, scale, a))
                       : round16(dtype, a + widen16(dtype, round16(dtype, x * scale)));
    }
    memcpy(acc, &result, sizeof result);
}

/* rd(g * fl(1/count)): a frequency-scaled sparse value. */
static void model_scale(int32_t dtype, void* out, const void* g, int count)
{
    if (dtype == EMB_DTYPE_FLOAT64) {
        double x;
        memcpy(&x, g, sizeof x);
        x = x * (1.0 / count);
        memcpy(out, &x, sizeof x);
        return;
    }
    uint16_t g16;
    memcpy(&g16, g, sizeof g16);
    float scale = widen16(dtype, round16(dtype, (float)(1.0 / count)));
    uint16_t result = round16(dtype, widen16(dtype, g16) * scale);
    memcpy(out, &result, sizeof result);
}

/* Values of mixed sign and magnitude (2^-4 .. 2^4), rounded to the dtype. */
static void fill_values(int32_t dtype, unsigned char* out, size_t count, uint32_t state)
{
    for (size_t i = 0; i < count; i++) {
        state = state * 1664525u + 1013904223u;
        double value = ((double)(state >> 8) / 16777216.0 - 0.5) * ldexp(1.0, (int)(state % 9) - 4);
        if (dtype == EMB_DTYPE_FLOAT64) {
            memcpy(out + i * 8, &value, 8);
        } else {
            uint16_t bits = round16(dtype, (float)value);
            memcpy(out + i * 2, &bits, 2);
        }
    }
}

static void test_backward_table_types(void)
{
    static const struct { int32_t dtype; size_t size; const char* name; } types[] = {
        { EMB_DTYPE_FLOAT64, 8, "float64" }, { EMB_DTYPE_FLOAT16, 2, "float16" }, { EMB_DTYPE_BFLOAT16, 2, "bfloat16" },
    };
    static const int64_t dims[] = { 1, 3, 7, 8, 9, 31, 32, 33, 64, 65, 300 };
    enum { TV = 13, TN = 37, PADDING = 5 };
    int64_t indices[TN];
    int counts[TV] = { 0 };
    for (int i = 0; i < TN; i++) {
        indices[i] = (i * 7 + 3) % TV;
        counts[indices[i]]++;
    }
    for (size_t t = 0; t < sizeof types / sizeof types[0]; t++) {
        int32_t dtype = types[t].dtype;
        size_t size = types[t].size;
        int dense_ok = 1, sparse_ok = 1, coalesce_ok = 1;
        for (size_t d = 0; d < sizeof dims / sizeof dims[0]; d++) {
            int64_t dim = dims[d];
            size_t row = (size_t)dim * size;
            unsigned char* grad_output = malloc(TN * row);
            unsigned char* start = malloc(TV * row);
            unsigned char* expected = malloc(TV * row);
            unsigned char* actual = malloc(TV * row + 16);
            unsigned char* values = malloc(TN * row + 16);
            unsigned char* sums = malloc(TN * row);
            fill_values(dtype, grad_output, TN * (size_t)dim, 7u + (uint32_t)d);
            fill_values(dtype, start, TV * (size_t)dim, 99u + (uint32_t)d);

            /* Dense, without and with frequency scaling (accumulating onto start), padding row 5. */
            for (int scaled = 0; scaled <= 1; scaled++) {
                if (scaled) {
                    memcpy(expected, start, TV * row);
                } else {
                    memset(expected, 0, TV * row);
                }
                for (int i = 0; i < TN; i++) {
                    if (indices[i] == PADDING) {
                        continue;
                    }
                    for (int64_t c = 0; c < dim; c++) {
                        model_update(dtype, expected + indices[i] * row + c * size, grad_output + i * row + c * size,
                                     scaled ? counts[indices[i]] : 0, c, dim);
                    }
                }
                memcpy(actual, start, TV * row);
                memset(actual + TV * row, SENTINEL_BYTE, 16);
                int32_t flags = scaled ? EMB_SCALE_GRAD_BY_FREQ | EMB_ACCUMULATE : 0;
                int32_t status = emb_embedding_backward(grad_output, dtype, TN, dim, indices, EMB_DTYPE_INT64, TV, PADDING,
                                                        flags, actual, TV * dim);
                dense_ok &= status == EMB_OK && memcmp(actual, expected, TV * row) == 0
                            && all_bytes_are(actual + TV * row, 16, SENTINEL_BYTE);
            }

            /* Sparse with frequency scaling: one entry per non-padding position, rd(g * fl(1/c)). */
            int64_t rows[TN], nnz = -1;
            memset(values, SENTINEL_BYTE, TN * row + 16);
            int32_t status = emb_embedding_backward_sparse(grad_output, dtype, TN, dim, indices, EMB_DTYPE_INT64, TV, PADDING,
                                                           EMB_SCALE_GRAD_BY_FREQ, rows, values, TN, &nnz);
            int ok = status == EMB_OK && nnz == TN - counts[PADDING] && all_bytes_are(values + TN * row, 16, SENTINEL_BYTE);
            for (int i = 0, n = 0; i < TN && ok; i++) {
                if (indices[i] == PADDING) {
                    continue;
                }
                ok = rows[n] == indices[i];
                for (int64_t c = 0; c < dim && ok; c++) {
                    unsigned char want[8];
                    model_scale(dtype, want, grad_output + i * row + c * size, counts[indices[i]]);
                    ok = memcmp(want, values + n * row + c * size, size) == 0;
                }
                n++;
            }
            sparse_ok &= ok;

            /* Coalescing the unscaled sparse gradient gives the dense gradient's non-zero rows. */
            status = emb_embedding_backward_sparse(grad_output, dtype, TN, dim, indices, EMB_DTYPE_INT64, TV, PADDING,
                                                   0, rows, values, TN, &nnz);
            int64_t unique[TN], num_rows = -1;
            ok = status == EMB_OK;
            status = emb_sparse_coalesce(rows, values, dtype, nnz, dim, TV, unique, sums, TN, &num_rows);
            ok &= status == EMB_OK && num_rows == TV - 1;
            emb_embedding_backward(grad_output, dtype, TN, dim, indices, EMB_DTYPE_INT64, TV, PADDING, 0, actual, TV * dim);
            for (int64_t j = 0; j < num_rows && ok; j++) {
                ok = (j == 0 || unique[j] > unique[j - 1]) && memcmp(sums + j * row, actual + unique[j] * row, row) == 0;
            }
            coalesce_ok &= ok;

            free(grad_output);
            free(start);
            free(expected);
            free(actual);
            free(values);
            free(sums);
        }
        check(dense_ok, "dense backward of a %s gradient at dims 1..300: torch 1.13's roundings, bit for bit", types[t].name);
        check(sparse_ok, "sparse backward of a %s gradient: torch's layout, scaled values rounded once", types[t].name);
        check(coalesce_ok, "coalesce of a %s sparse gradient equals the dense gradient's rows", types[t].name);
    }
}

int main(void)
{
    setvbuf(stdout, NULL, _IONBF, 0);
    const char* info = emb_build_info();
    fused_products = strstr(info, "\"fused_products\":true") != NULL;
    bfloat16_chunk = strstr(info, "\"torch_kernels\":\"avx512\"") != NULL ? 64 : 32;
    check(fused_products || strstr(info, "\"fused_products\":false") != NULL, "build info: fused_products is reported");
    test_dense_backward();
    test_sparse_backward();
    test_backward_errors();
    test_backward_table_types();
    test_count_overlap();
    test_renorm();
    test_renorm_table_types();
    test_optimizers();
    return finish();
}
