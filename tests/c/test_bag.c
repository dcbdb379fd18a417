/*
 * test_bag.c — the EmbeddingBag half of the C ABI, tested from C through the header alone, on
 * torch 1.13's worked examples (spec §3.4, §3.5, §3.10: W = arange(1, 11).view(5, 2),
 * input [3, 1, 1, 1, 4, 0]) and on the offsets errors torch itself crashes on.
 *
 * Prints one line per check and ends with "N passed, M failed"; exits 1 if anything failed.
 */
#include "check.h"

#define V 5
#define D 2
#define N 6

static float weight[V * D] = { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10 };
static const int64_t input[N] = { 3, 1, 1, 1, 4, 0 };

/* Bags [], [3,1,1], [], [1,4,0], [] — offsets [0, 0, 3, 3, 6]. */
static emb_bags five_bags(const int64_t* offsets)
{
    return int64_bags(input, N, offsets, 5);
}

static int equal(const float* actual, const float* expected, int count)
{
    return memcmp(actual, expected, (size_t)count * sizeof(float)) == 0;
}

static void test_forward(void)
{
    static const int64_t offsets[5] = { 0, 0, 3, 3, 6 };
    emb_bags bags = five_bags(offsets);
    float out[5 * D];
    int64_t max_indices[5 * D];
    int64_t count = -1;

    int32_t status = emb_embedding_bag_count(&bags, &count);
    check(status == EMB_OK && count == 5, "bag count: five offsets, five bags (the last runs to the end)");

    static const float sum[5 * D] = { 0, 0, 13, 16, 0, 0, 13, 16, 0, 0 };
    status = emb_embedding_bag(weight, EMB_DTYPE_FLOAT32, V, D, &bags, EMB_BAG_SUM, out, 5 * D, NULL, 0);
    check(status == EMB_OK && equal(out, sum, 5 * D), "sum: torch's example, empty bags give +0.0");

    static const float mean[5 * D] = { 0, 0, 13.0f / 3, 16.0f / 3, 0, 0, 13.0f / 3, 16.0f / 3, 0, 0 };
    status = emb_embedding_bag(weight, EMB_DTYPE_FLOAT32, V, D, &bags, EMB_BAG_MEAN, out, 5 * D, NULL, 0);
    check(status == EMB_OK && equal(out, mean, 5 * D), "mean: a true division by the bag size");

    static const float max[5 * D] = { 0, 0, 7, 8, 0, 0, 9, 10, 0, 0 };
    static const int64_t argmax[5 * D] = { -1, -1, 3, 3, -1, -1, 4, 4, -1, -1 };
    status = emb_embedding_bag(weight, EMB_DTYPE_FLOAT32, V, D, &bags, EMB_BAG_MAX, out, 5 * D, max_indices, 5 * D);
    check(status == EMB_OK && equal(out, max, 5 * D) && memcmp(max_indices, argmax, sizeof argmax) == 0,
          "max: values and the rows they came from (-1 for empty bags)");
    memset(out, SENTINEL_BYTE, sizeof out);
    status = emb_embedding_bag(weight, EMB_DTYPE_FLOAT32, V, D, &bags, EMB_BAG_MAX, out, 5 * D, NULL, 0);
    check(status == EMB_OK && equal(out, max, 5 * D), "max without max_indices: the same values (no arg-max tracked)");

    /* Bags [3,1,1 | 1,4,0] with per-sample weights, sum only. */
    static const int64_t two[2] = { 0, 3 };
    static const float psw[N] = { 2, 0.5f, -1, 3, 0.25f, 10 };
    bags = five_bags(two);
    bags.num_offsets = 2;
    bags.per_sample_weights = psw;
    static const float weighted[2 * D] = { 12.5f, 14.0f, 21.25f, 34.5f };
    status = emb_embedding_bag(weight, EMB_DTYPE_FLOAT32, V, D, &bags, EMB_BAG_SUM, out, 2 * D, NULL, 0);
    check(status == EMB_OK && equal(out, weighted, 2 * D), "sum with per_sample_weights: torch's example");

    status = emb_embedding_bag(weight, EMB_DTYPE_FLOAT32, V, D, &bags, EMB_BAG_MEAN, out, 2 * D, NULL, 0);
    check(status == EMB_ERROR_NOT_SUPPORTED && has_message(), "per_sample_weights with mean is refused, as torch does");

    /* The same two bags as a 2-D input: fixed-size bags of 3, no offsets. */
    bags = five_bags(NULL);
    bags.num_offsets = 0;
    bags.bag_size = 3;
    static const float fixed[2 * D] = { 13, 16, 13, 16 };
    status = emb_embedding_bag(weight, EMB_DTYPE_FLOAT32, V, D, &bags, EMB_BAG_SUM, out, 2 * D, NULL, 0);
    check(status == EMB_OK && equal(out, fixed, 2 * D), "fixed-size bags (a 2-D input) equal the offsets form");
}

static void test_backward(void)
{
    static const int64_t offsets[5] = { 0, 0, 3, 3, 6 };
    emb_bags bags = five_bags(offsets);
    static const float grad_output[5 * D] = { 99, 99, 1, 2, 99, 99, 3, 4, 99, 99 };
    float grad[V * D], out[5 * D];
    int64_t max_indices[5 * D];

    static const float sum[V * D] = { 3, 4, 5, 8, 0, 0, 1, 2, 3, 4 };
    int32_t status = emb_embedding_bag_backward(grad_output, EMB_DTYPE_FLOAT32, V, D, &bags, EMB_BAG_SUM, NULL, 0, grad, V * D);
    check(status == EMB_OK && equal(grad, sum, V * D), "backward sum: torch's example (empty bags' gradients ignored)");

    static const float max[V * D] = { 0, 0, 0, 0, 0, 0, 1, 2, 3, 4 };
    status = emb_embedding_bag(weight, EMB_DTYPE_FLOAT32, V, D, &bags, EMB_BAG_MAX, out, 5 * D, max_indices, 5 * D);
    status = status == EMB_OK
        ? emb_embedding_bag_backward(grad_output, EMB_DTYPE_FLOAT32, V, D, &bags, EMB_BAG_MAX, max_indices, 0, grad, V * D)
        : status;
    check(status == EMB_OK && equal(grad, max, V * D), "backward max: each column's gradient goes to its arg-max row");

    int64_t rows[N], nnz = -1;
    float values[N * D];
    status = emb_embedding_bag_backward_sparse(grad_output, EMB_DTYPE_FLOAT32, V, D, &bags, EMB_BAG_SUM, 0, rows, values, N, &nnz);
    check(status == EMB_OK && nnz == N && memcmp(rows, input, sizeof input) == 0 && values[0] == 1 && values[7] == 4,
          "sparse backward sum: one entry per position, the bag's gradient as the value");

    status = emb_embedding_bag_backward_sparse(grad_output, EMB_DTYPE_FLOAT32, V, D, &bags, EMB_BAG_MAX, 0, rows, values, N, &nnz);
    check(status != EMB_OK && has_message(), "sparse backward of max mode is refused, as torch does");
}

/* Every buffer of one sparse bag backward in a single block, so a count can be aimed into any of
 * them and the whole block compared afterwards. All sizes are multiples of 8: no padding, and a
 * count placed at an even float is an aligned int64_t. */
struct bag_block {
    float grad_output[5 * D];
    int64_t indices[N];
    int64_t offsets[5];
    float psw[N];
    int64_t rows[N];
    float values[N * D];
    int64_t after; /* directly behind values: touching, not overlapping */
};

static void fill_bag_block(struct bag_block* block)
{
    static const int64_t offsets[5] = { 0, 0, 3, 3, 6 };
    static const float grad_output[5 * D] = { 99, 99, 1, 2, 99, 99, 3, 4, 99, 99 };
    static const float psw[N] = { 2, 0.5f, -1, 3, 0.25f, 10 };
    memset(block, SENTINEL_BYTE, sizeof *block);
    memcpy(block->grad_output, grad_output, sizeof grad_output);
    memcpy(block->indices, input, sizeof input);
    memcpy(block->offsets, offsets, sizeof offsets);
    memcpy(block->psw, psw, sizeof psw);
}

/* Nothing written: not one byte of the block or of the emb_bags struct changed. */
static int bag_block_unchanged(const struct bag_block* block, const struct bag_block* before,
                               const emb_bags* bags, const emb_bags* bags_before)
{
    return memcmp(block, before, sizeof *block) == 0 && memcmp(bags, bags_before, sizeof *bags) == 0;
}

/* The counts (nnz, num_bags) are outputs like the arrays: one that points into an input or into
 * another output is refused before anything is written. */
static void test_count_overlap(void)
{
    struct bag_block block, before;
    fill_bag_block(&block);
    before = block;
    emb_bags bags = five_bags(block.offsets);
    bags.indices = block.indices;
    bags.per_sample_weights = block.psw;
    const emb_bags bags_before = bags;

    struct { int64_t* nnz; const char* name; const char* what; } sparse_cases[] = {
        { &block.indices[2], "bags->indices", "sparse backward: nnz inside bags->indices" },
        { &block.offsets[4], "bags->offsets", "sparse backward: nnz inside bags->offsets" },
        { (int64_t*)(void*)&block.psw[2], "bags->per_sample_weights", "sparse backward: nnz inside bags->per_sample_weights" },
        { (int64_t*)(void*)&block.grad_output[2], "grad_output", "sparse backward: nnz inside grad_output" },
        { &block.rows[5], "out_rows", "sparse backward: nnz inside out_rows" },
        { (int64_t*)(void*)&block.values[4], "out_values", "sparse backward: nnz inside out_values" },
    };
    for (size_t c = 0; c < sizeof sparse_cases / sizeof sparse_cases[0]; c++) {
        block = before; /* each case starts clean, whatever an earlier one did */
        bags = bags_before;
        int32_t status = emb_embedding_bag_backward_sparse(block.grad_output, EMB_DTYPE_FLOAT32, V, D, &bags, EMB_BAG_SUM, 0,
                                                           block.rows, block.values, N, sparse_cases[c].nnz);
        expect_overlap_refused(status, "nnz", sparse_cases[c].name, bag_block_unchanged(&block, &before, &bags, &bags_before), sparse_cases[c].what);
    }

    block = before;
    bags = bags_before;
    int32_t status = emb_embedding_bag_backward_sparse(block.grad_output, EMB_DTYPE_FLOAT32, V, D, &bags, EMB_BAG_SUM, 0,
                                                       block.rows, block.values, N, &block.after);
    check(status == EMB_OK && block.after == N && memcmp(block.rows, input, sizeof input) == 0,
          "sparse backward: nnz directly after out_values (touching, not overlapping) is accepted");

    struct { int64_t* num_bags; const char* name; const char* what; } count_cases[] = {
        { &block.indices[0], "bags->indices", "bag count: num_bags inside bags->indices" },
        { &block.offsets[1], "bags->offsets", "bag count: num_bags inside bags->offsets" },
        { (int64_t*)(void*)&block.psw[4], "bags->per_sample_weights", "bag count: num_bags inside bags->per_sample_weights" },
    };
    for (size_t c = 0; c < sizeof count_cases / sizeof count_cases[0]; c++) {
        block = before;
        bags = bags_before;
        status = emb_embedding_bag_count(&bags, count_cases[c].num_bags);
        expect_overlap_refused(status, "num_bags", count_cases[c].name, bag_block_unchanged(&block, &before, &bags, &bags_before), count_cases[c].what);
    }

    block = before;
    bags = bags_before;
    status = emb_embedding_bag_count(&bags, &block.rows[0]);
    check(status == EMB_OK && block.rows[0] == 5, "bag count: num_bags in a buffer the call does not read is accepted");
}

/* The emb_bags struct is an input too: an output over it, array or count, would rewrite the
 * caller's const bags. */
static void test_bags_struct_overlap(void)
{
    struct bag_block block, before;
    fill_bag_block(&block);
    before = block;
    emb_bags bags = five_bags(block.offsets);
    bags.indices = block.indices;
    const emb_bags bags_before = bags;

    int32_t status = emb_embedding_bag_count(&bags, &bags.num_offsets);
    expect_overlap_refused(status, "num_bags", "bags", bag_block_unchanged(&block, &before, &bags, &bags_before),
                           "bag count: num_bags inside the emb_bags struct");

    bags = bags_before;
    status = emb_embedding_bag_backward_sparse(block.grad_output, EMB_DTYPE_FLOAT32, V, D, &bags, EMB_BAG_SUM, 0,
                                               block.rows, block.values, N, &bags.padding_idx);
    expect_overlap_refused(status, "nnz", "bags", bag_block_unchanged(&block, &before, &bags, &bags_before),
                           "sparse backward: nnz inside the emb_bags struct");

    bags = bags_before;
    status = emb_embedding_bag(weight, EMB_DTYPE_FLOAT32, V, D, &bags, EMB_BAG_SUM, (float*)(void*)&bags, 5 * D, NULL, 0);
    expect_overlap_refused(status, "out", "bags", bag_block_unchanged(&block, &before, &bags, &bags_before),
                           "forward: out over the emb_bags struct");
}

static void test_offsets_errors(void)
{
    float out[8 * D];
    static const struct { int64_t offsets[4]; int64_t count; int32_t include_last; const char* what; } cases[] = {
        { { 1, 3, 0, 0 }, 2, 0, "offsets[0] must be 0" },
        { { 0, 4, 2, 0 }, 3, 0, "decreasing offsets (torch 1.13: garbage or an enforce error)" },
        { { 0, 7, 0, 0 }, 2, 0, "an offset beyond the input" },
        { { 0, 3, 5, 0 }, 3, 1, "include_last_offset with a last offset below the input's length (torch 1.13: heap corruption)" },
        { { 0, 0, 0, 0 }, 0, 1, "include_last_offset with no offsets" },
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        emb_bags bags = five_bags(cases[c].offsets);
        bags.num_offsets = cases[c].count;
        bags.include_last_offset = cases[c].include_last;
        memset(out, SENTINEL_BYTE, sizeof out);
        int32_t status = emb_embedding_bag(weight, EMB_DTYPE_FLOAT32, V, D, &bags, EMB_BAG_MAX, out, 8 * D, NULL, 0);
        if (!check(status != EMB_OK && has_message() && all_bytes_are(out, sizeof out, SENTINEL_BYTE),
                   "offsets error, nothing written: %s", cases[c].what)) {
            printf("     status %d: %s\n", (int)status, emb_last_error());
        }
    }

    static const int64_t offsets[5] = { 0, 0, 3, 3, 6 };
    emb_bags bags = five_bags(offsets);
    bags.reserved = 1;
    check(emb_embedding_bag(weight, EMB_DTYPE_FLOAT32, V, D, &bags, EMB_BAG_SUM, out, 5 * D, NULL, 0) == EMB_ERROR_INVALID_ARGUMENT,
          "a non-zero reserved field is refused");
    check(emb_embedding_bag(weight, EMB_DTYPE_FLOAT32, V, D, NULL, EMB_BAG_SUM, out, 5 * D, NULL, 0) == EMB_ERROR_NULL_POINTER,
          "NULL bags are refused");

    static const int64_t bad_input[N] = { 3, 1, 5, 1, 4, 0 };
    bags = five_bags(offsets);
    bags.indices = bad_input;
    memset(out, SENTINEL_BYTE, sizeof out);
    int32_t status = emb_embedding_bag(weight, EMB_DTYPE_FLOAT32, V, D, &bags, EMB_BAG_SUM, out, 5 * D, NULL, 0);
    check(status == EMB_ERROR_INDEX_OUT_OF_RANGE && has_message() && all_bytes_are(out, sizeof out, SENTINEL_BYTE),
          "an out-of-range index fails and writes nothing");

    emb_bags zero = five_bags(NULL);
    zero.num_offsets = 0;
    int64_t count = -1;
    check(emb_embedding_bag_count(&zero, &count) == EMB_OK && count == 0,
          "no offsets (NULL, count 0) describe zero bags (torch 1.13 crashes in max mode)");
}

/* ---- Table types ------------------------------------------------------------------------------ */

/* torch's example on float64 and float16 tables (every value exact in both), per_sample_weights in
 * the table's dtype; float16 means round once: half(float(half(13)) / 3). bfloat16 is refused, as
 * torch 1.13 refuses it on the CPU. */
static void test_table_types(void)
{
    static const int64_t offsets[5] = { 0, 0, 3, 3, 6 };
    static const int64_t two[2] = { 0, 3 };
    int64_t max_indices[5 * D];
    static const int64_t argmax[5 * D] = { -1, -1, 3, 3, -1, -1, 4, 4, -1, -1 };

    double wd[V * D], outd[5 * D + 1];
    for (int i = 0; i < V * D; i++) wd[i] = i + 1;
    emb_bags bags = five_bags(offsets);
    static const double sumd[5 * D] = { 0, 0, 13, 16, 0, 0, 13, 16, 0, 0 };
    static const double meand[5 * D] = { 0, 0, 13.0 / 3, 16.0 / 3, 0, 0, 13.0 / 3, 16.0 / 3, 0, 0 };
    static const double maxd[5 * D] = { 0, 0, 7, 8, 0, 0, 9, 10, 0, 0 };
    outd[5 * D] = -7.25;
    int32_t status = emb_embedding_bag(wd, EMB_DTYPE_FLOAT64, V, D, &bags, EMB_BAG_SUM, outd, 5 * D, NULL, 0);
    check(status == EMB_OK && memcmp(outd, sumd, sizeof sumd) == 0 && outd[5 * D] == -7.25, "float64 sum: torch's example, nothing written past the result");
    status = emb_embedding_bag(wd, EMB_DTYPE_FLOAT64, V, D, &bags, EMB_BAG_MEAN, outd, 5 * D, NULL, 0);
    check(status == EMB_OK && memcmp(outd, meand, sizeof meand) == 0, "float64 mean: a double division");
    status = emb_embedding_bag(wd, EMB_DTYPE_FLOAT64, V, D, &bags, EMB_BAG_MAX, outd, 5 * D, max_indices, 5 * D);
    check(status == EMB_OK && memcmp(outd, maxd, sizeof maxd) == 0 && memcmp(max_indices, argmax, sizeof argmax) == 0,
          "float64 max: values and rows");
    static const double pswd[N] = { 2, 0.5, -1, 3, 0.25, 10 };
    static const double weightedd[2 * D] = { 12.5, 14, 21.25, 34.5 };
    bags = five_bags(two);
    bags.num_offsets = 2;
    bags.per_sample_weights = pswd;
    status = emb_embedding_bag(wd, EMB_DTYPE_FLOAT64, V, D, &bags, EMB_BAG_SUM, outd, 2 * D, NULL, 0);
    check(status == EMB_OK && memcmp(outd, weightedd, sizeof weightedd) == 0, "float64 sum with float64 per_sample_weights");

    /* float16 as bit patterns: W = 1..10 is 0x3C00, 0x4000, ... */
    static const uint16_t wh[V * D] = { 0x3C00, 0x4000, 0x4200, 0x4400, 0x4500, 0x4600, 0x4700, 0x4800, 0x4880, 0x4900 };
    uint16_t outh[5 * D + 1];
    bags = five_bags(offsets);
    static const uint16_t sumh[5 * D] = { 0, 0, 0x4A80, 0x4C00, 0, 0, 0x4A80, 0x4C00, 0, 0 };
    static const uint16_t meanh[5 * D] = { 0, 0, 0x4455, 0x4555, 0, 0, 0x4455, 0x4555, 0, 0 };
    static const uint16_t maxh[5 * D] = { 0, 0, 0x4700, 0x4800, 0, 0, 0x4880, 0x4900, 0, 0 };
    outh[5 * D] = 0xA5A5;
    status = emb_embedding_bag(wh, EMB_DTYPE_FLOAT16, V, D, &bags, EMB_BAG_SUM, outh, 5 * D, NULL, 0);
    check(status == EMB_OK && memcmp(outh, sumh, sizeof sumh) == 0 && outh[5 * D] == 0xA5A5, "float16 sum: torch's example, nothing written past the result");
    status = emb_embedding_bag(wh, EMB_DTYPE_FLOAT16, V, D, &bags, EMB_BAG_MEAN, outh, 5 * D, NULL, 0);
    check(status == EMB_OK && memcmp(outh, meanh, sizeof meanh) == 0, "float16 mean: half(float(half(sum)) / count)");
    status = emb_embedding_bag(wh, EMB_DTYPE_FLOAT16, V, D, &bags, EMB_BAG_MAX, outh, 5 * D, max_indices, 5 * D);
    check(status == EMB_OK && memcmp(outh, maxh, sizeof maxh) == 0 && memcmp(max_indices, argmax, sizeof argmax) == 0,
          "float16 max: values and rows");
    static const uint16_t pswh[N] = { 0x4000, 0x3800, 0xBC00, 0x4200, 0x3400, 0x4900 };
    static const uint16_t weightedh[2 * D] = { 0x4A40, 0x4B00, 0x4D50, 0x5050 };
    bags = five_bags(two);
    bags.num_offsets = 2;
    bags.per_sample_weights = pswh;
    status = emb_embedding_bag(wh, EMB_DTYPE_FLOAT16, V, D, &bags, EMB_BAG_SUM, outh, 2 * D, NULL, 0);
    check(status == EMB_OK && memcmp(outh, weightedh, sizeof weightedh) == 0, "float16 sum with float16 per_sample_weights");

    bags = five_bags(offsets);
    memset(outh, 0xA5, sizeof outh);
    status = emb_embedding_bag(wh, EMB_DTYPE_BFLOAT16, V, D, &bags, EMB_BAG_SUM, outh, 5 * D, NULL, 0);
    const char* message = emb_last_error();
    int untouched = 1;
    for (int i = 0; i < 5 * D + 1; i++) untouched &= outh[i] == 0xA5A5;
    check(status == EMB_ERROR_UNSUPPORTED_DTYPE && message != NULL && strstr(message, "bfloat16") != NULL && untouched,
          "bfloat16 table: EMB_ERROR_UNSUPPORTED_DTYPE naming bfloat16 (torch 1.13 has no CPU bfloat16 EmbeddingBag), nothing written");
}

int main(void)
{
    setvbuf(stdout, NULL, _IONBF, 0);
    test_forward();
    test_backward();
    test_count_overlap();
    test_bags_struct_overlap();
    test_offsets_errors();
    test_table_types();
    return finish();
}
