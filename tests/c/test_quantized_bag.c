/*
 * test_quantized_bag.c — quantized tables through the C ABI, from C through the header alone:
 * hand-computed 8-, 4- and 2-bit examples, torch's double rounding, a C transcription of torch
 * 1.13's fallback loop (qembeddingbag.cpp, built without FBGEMM) compared bit for bit over every
 * code width and many dimensions, and the refusals (nothing written).
 *
 * Prints one line per check and ends with "N passed, M failed"; exits 1 if anything failed.
 */
#include <math.h>

#include "check.h"

/* Little-endian float16 bits of small exact values. */
#define HALF_ONE 0x3C00
#define HALF_TWO 0x4000
#define HALF_HALF 0x3800
#define HALF_ZERO 0x0000

static void put_float(uint8_t* at, float value)
{
    uint32_t bits;
    memcpy(&bits, &value, sizeof bits);
    for (int k = 0; k < 4; k++) at[k] = (uint8_t)(bits >> (8 * k));
}

static void put_half(uint8_t* at, uint16_t bits)
{
    at[0] = (uint8_t)bits;
    at[1] = (uint8_t)(bits >> 8);
}

static float get_float(const uint8_t* at)
{
    uint32_t bits = (uint32_t)at[0] | (uint32_t)at[1] << 8 | (uint32_t)at[2] << 16 | (uint32_t)at[3] << 24;
    return float_from_bits(bits);
}

/* float16 bits to float (exact): the reference's own conversion. */
static float half_to_float(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000) << 16, exponent = (h >> 10) & 0x1F, mantissa = h & 0x3FF;
    if (exponent == 0) {
        float magnitude = ldexpf((float)mantissa, -24);
        return sign ? -magnitude : magnitude;
    }
    if (exponent == 31) return float_from_bits(sign | 0x7F800000 | mantissa << 13);
    return float_from_bits(sign | (exponent + 112) << 23 | mantissa << 13);
}

static int64_t row_bytes(int bits, int64_t dim)
{
    int64_t per_byte = 8 / bits;
    return (dim + per_byte - 1) / per_byte + (bits == 8 ? 8 : 4);
}

static int equal(const float* actual, const float* expected, int count)
{
    return memcmp(actual, expected, (size_t)count * sizeof(float)) == 0;
}

/*
 * torch 1.13's embedding_lookup_fallback_impl, transcribed: per bag out = 0; per position
 * scale = w * scale(r), bias = w * bias(r) in float; per column out[j] = fma(scale, code, out[j] + bias)
 * with a uint8_t code, i.e. the double fma (the product is exact, so a double multiply-add).
 */
static void reference(const uint8_t* packed, int bits, int64_t dim, const int64_t* indices, const int64_t* starts,
                      int64_t num_bags, const float* psw, float* out)
{
    int64_t stride = row_bytes(bits, dim), code_bytes = stride - (bits == 8 ? 8 : 4), per_byte = 8 / bits;
    for (int64_t b = 0; b < num_bags; b++) {
        float* o = out + b * dim;
        for (int64_t j = 0; j < dim; j++) o[j] = 0.0f;
        for (int64_t i = starts[b]; i < starts[b + 1]; i++) {
            const uint8_t* row = packed + indices[i] * stride;
            float w = psw ? psw[i] : 1.0f, scale, bias;
            if (bits == 8) {
                scale = w * get_float(row + code_bytes);
                bias = w * get_float(row + code_bytes + 4);
            } else {
                scale = w * half_to_float((uint16_t)(row[code_bytes] | row[code_bytes + 1] << 8));
                bias = w * half_to_float((uint16_t)(row[code_bytes + 2] | row[code_bytes + 3] << 8));
            }
            for (int64_t j = 0; j < dim; j++) {
                uint8_t code = (uint8_t)(row[j / per_byte] >> ((j % per_byte) * bits));
                code &= (uint8_t)((1 << bits) - 1);
                o[j] = (float)fma((double)scale, (double)code, (double)(o[j] + bias));
            }
        }
    }
}

static uint32_t rng_state = 12345;
static uint32_t next_random(void)
{
    rng_state = rng_state * 1664525u + 1013904223u;
    return rng_state >> 8;
}

/* Rows 0..2, D = 3, 8-bit: codes {1,2,3}, {0,10,255}, {7,7,7}; scale/bias {1,0}, {0.5,-1}, {2,0.25}. */
static void test_examples(void)
{
    enum { D = 3, RB = D + 8 };
    uint8_t packed[3 * RB] = { 1, 2, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 10, 255, 0, 0, 0, 0, 0, 0, 0, 0, 7, 7, 7 };
    put_float(packed + 0 * RB + D, 1.0f);
    put_float(packed + 0 * RB + D + 4, 0.0f);
    put_float(packed + 1 * RB + D, 0.5f);
    put_float(packed + 1 * RB + D + 4, -1.0f);
    put_float(packed + 2 * RB + D, 2.0f);
    put_float(packed + 2 * RB + D + 4, 0.25f);

    static const int64_t indices[5] = { 0, 1, 2, 2, 1 };
    static const int64_t offsets[3] = { 0, 0, 2 };
    emb_bags bags = int64_bags(indices, 5, offsets, 3);
    float out[3 * D];

    /* Bags [], [0, 1], [2, 2, 1]. Row values: {1,2,3}, {-1,4,126.5}, {14.25,14.25,14.25}. */
    static const float sum[3 * D] = { 0, 0, 0, 0, 6, 129.5f, 27.5f, 32.5f, 155 };
    int32_t status = emb_quantized_embedding_bag(packed, 8, 3, D, &bags, EMB_BAG_SUM, NULL, 0, out, 3 * D);
    check(status == EMB_OK && equal(out, sum, 3 * D), "8-bit sum: hand-computed rows, an empty bag gives +0.0");

    static const float mean[3 * D] = { 0, 0, 0, 0, 3, 64.75f, 27.5f / 3, 32.5f / 3, 155.0f / 3 };
    status = emb_quantized_embedding_bag(packed, 8, 3, D, &bags, EMB_BAG_MEAN, NULL, 0, out, 3 * D);
    check(status == EMB_OK && equal(out, mean, 3 * D), "8-bit mean: a float division by the bag size (torch would sum)");

    static const float psw[5] = { 2, 1, 0.5f, 0, -1 };
    bags.per_sample_weights = psw;
    static const float weighted[3 * D] = { 0, 0, 0, 1, 8, 132.5f, 8.125f, 3.125f, -119.375f };
    status = emb_quantized_embedding_bag(packed, 8, 3, D, &bags, EMB_BAG_SUM, NULL, 0, out, 3 * D);
    check(status == EMB_OK && equal(out, weighted, 3 * D), "8-bit weighted sum: scale and bias times the weight");
    bags.per_sample_weights = NULL;

    bags.padding_idx = 2;
    static const float padded[3 * D] = { 0, 0, 0, 0, 6, 129.5f, -1, 4, 126.5f };
    status = emb_quantized_embedding_bag(packed, 8, 3, D, &bags, EMB_BAG_MEAN, NULL, 0, out, 3 * D);
    check(status == EMB_OK && equal(out, mean, D) && equal(out + D, mean + D, D) && equal(out + 2 * D, padded + 2 * D, D),
          "padding_idx: its positions neither add nor count in the mean");
    bags.padding_idx = EMB_NO_PADDING;

    /* Pruned: mapping [2, -1, 0]; index 1 is pruned (counted in the mean, adds nothing). */
    static const int32_t mapping[3] = { 2, -1, 0 };
    static const float pruned_sum[3 * D] = { 0, 0, 0, 14.25f, 14.25f, 14.25f, 2, 4, 6 };
    status = emb_quantized_embedding_bag(packed, 8, 3, D, &bags, EMB_BAG_SUM, mapping, 3, out, 3 * D);
    check(status == EMB_OK && equal(out, pruned_sum, 3 * D), "pruned: indices select mapping entries, -1 adds nothing");

    float lookup[5 * D];
    static const float rows[5 * D] = { 1, 2, 3, -1, 4, 126.5f, 14.25f, 14.25f, 14.25f, 14.25f, 14.25f, 14.25f, -1, 4, 126.5f };
    status = emb_quantized_embedding(packed, 8, 3, D, indices, EMB_DTYPE_INT64, 5, NULL, 0, lookup, 5 * D);
    check(status == EMB_OK && equal(lookup, rows, 5 * D), "lookup: each index's dequantized row");
    static const int32_t indices32[2] = { 1, 0 };
    static const float pruned_rows[2 * D] = { 0, 0, 0, 14.25f, 14.25f, 14.25f };
    status = emb_quantized_embedding(packed, 8, 3, D, indices32, EMB_DTYPE_INT32, 2, mapping, 3, lookup, 2 * D);
    check(status == EMB_OK && equal(lookup, pruned_rows, 2 * D), "pruned lookup with int32 indices: -1 gives a row of +0.0");

    /* 4-bit, D = 3 (a padding code in the last byte, set to 15: it must not show): codes {1,2,3}, {15,0,4}. */
    uint8_t packed4[2 * 6];
    packed4[0] = 0x21; packed4[1] = 0xF3;
    put_half(packed4 + 2, HALF_HALF); put_half(packed4 + 4, HALF_ONE);
    packed4[6] = 0x0F; packed4[7] = 0xF4;
    put_half(packed4 + 8, HALF_TWO); put_half(packed4 + 10, HALF_ZERO);
    static const int64_t both[2] = { 0, 1 };
    static const int64_t one_bag[1] = { 0 };
    bags = int64_bags(both, 2, one_bag, 1);
    static const float sum4[D] = { 1.5f + 30, 2 + 0, 2.5f + 8 };
    status = emb_quantized_embedding_bag(packed4, 4, 2, D, &bags, EMB_BAG_SUM, NULL, 0, out, D);
    check(status == EMB_OK && equal(out, sum4, D), "4-bit, odd dimension: low nibble first, float16 scale and bias");

    /* 2-bit, D = 5: codes {0,1,2,3,1} in bytes 0b11100100, 0b01; scale 2, bias 0.5. */
    uint8_t packed2[2 + 4] = { 0xE4, 0x01 };
    put_half(packed2 + 2, HALF_TWO); put_half(packed2 + 4, HALF_HALF);
    static const float row2[5] = { 0.5f, 2.5f, 4.5f, 6.5f, 2.5f };
    status = emb_quantized_embedding(packed2, 2, 1, 5, one_bag, EMB_DTYPE_INT64, 1, NULL, 0, out, 5);
    check(status == EMB_OK && equal(out, row2, 5), "2-bit lookup: four codes per byte, lowest bits first");
}

/* x = 1 + s·130 = 1 + 2^-24 + 2^-54: torch rounds to double (the midpoint 1 + 2^-24), then to even: 1. */
static void test_double_rounding(void)
{
    uint8_t packed[9] = { 130 };
    float scale = ldexpf(16519105.0f, -55);
    put_float(packed + 1, scale);
    put_float(packed + 5, 1.0f);
    static const int64_t index[1] = { 0 };
    emb_bags bags = int64_bags(index, 1, index, 1);
    float out = -1;
    int32_t status = emb_quantized_embedding_bag(packed, 8, 1, 1, &bags, EMB_BAG_SUM, NULL, 0, &out, 1);
    check(status == EMB_OK && out == 1.0f && fmaf(scale, 130.0f, 1.0f) != 1.0f,
          "torch's double rounding: 1.0, where a float fma gives 1 + 2^-23");
}

/* Every code width, dimensions 1..40 and a few large ones, weighted, against the C transcription. */
static void test_against_transcription(void)
{
    static const int widths[3] = { 8, 4, 2 };
    static const int64_t dims[] = { 1, 2, 3, 4, 5, 6, 7, 8, 9, 15, 16, 17, 31, 32, 33, 40, 64, 127, 300 };
    enum { ROWS = 13, N = 40, BAGS = 7 };
    int mismatches = 0, cases = 0;
    for (int w = 0; w < 3; w++) {
        for (size_t d = 0; d < sizeof dims / sizeof dims[0]; d++) {
            int bits = widths[w];
            int64_t dim = dims[d], stride = row_bytes(bits, dim), code_bytes = stride - (bits == 8 ? 8 : 4);
            uint8_t* packed = xmalloc((size_t)(ROWS * stride));
            for (int64_t k = 0; k < ROWS * stride; k++) packed[k] = (uint8_t)next_random();
            for (int r = 0; r < ROWS; r++) {
                float scale = ldexpf((float)(next_random() % 20000) - 6000.0f, -(int)(next_random() % 24));
                float bias = ldexpf((float)(next_random() % 20000) - 10000.0f, -12);
                if (bits == 8) {
                    put_float(packed + r * stride + code_bytes, scale);
                    put_float(packed + r * stride + code_bytes + 4, bias);
                } else {
                    /* Any finite half: exponent field 0..30. */
                    put_half(packed + r * stride + code_bytes, (uint16_t)(next_random() % 0x7C00 | (next_random() & 0x8000)));
                    put_half(packed + r * stride + code_bytes + 2, (uint16_t)(next_random() % 0x5C00 | (next_random() & 0x8000)));
                }
            }
            int64_t indices[N], offsets[BAGS], starts[BAGS + 1];
            float psw[N];
            for (int i = 0; i < N; i++) {
                indices[i] = next_random() % ROWS;
                psw[i] = (float)((int)(next_random() % 4000) - 1500) / 1024.0f;
            }
            static const int64_t fixed_offsets[BAGS] = { 0, 0, 5, 6, 17, 30, 30 };
            memcpy(offsets, fixed_offsets, sizeof offsets);
            memcpy(starts, fixed_offsets, sizeof offsets);
            starts[BAGS] = N;
            emb_bags bags = int64_bags(indices, N, offsets, BAGS);
            bags.per_sample_weights = psw;
            float* expected = xmalloc((size_t)(BAGS * dim) * sizeof(float));
            float* actual = xmalloc((size_t)(BAGS * dim) * sizeof(float));
            reference(packed, bits, dim, indices, starts, BAGS, psw, expected);
            int32_t status = emb_quantized_embedding_bag(packed, bits, ROWS, dim, &bags, EMB_BAG_SUM, NULL, 0, actual, BAGS * dim);
            mismatches += status != EMB_OK || !equal(actual, expected, (int)(BAGS * dim));
            bags.per_sample_weights = NULL;
            reference(packed, bits, dim, indices, starts, BAGS, NULL, expected);
            status = emb_quantized_embedding_bag(packed, bits, ROWS, dim, &bags, EMB_BAG_SUM, NULL, 0, actual, BAGS * dim);
            mismatches += status != EMB_OK || !equal(actual, expected, (int)(BAGS * dim));
            cases += 2;
            free(packed);
            free(expected);
            free(actual);
        }
    }
    check(mismatches == 0, "%d calls (8/4/2-bit, dims 1..300, weighted or not) equal torch 1.13's fallback loop, bit for bit", cases);
}

static void test_refusals(void)
{
    enum { D = 4, RB = D + 8 };
    uint8_t packed[2 * RB];
    memset(packed, 1, sizeof packed);
    static const int64_t indices[3] = { 0, 1, 2 };
    static const int64_t offsets[1] = { 0 };
    static const int32_t bad_mapping[3] = { 0, 1, 2 };
    emb_bags bags = int64_bags(indices, 3, offsets, 1);
    float out[3 * D];
    memset(out, SENTINEL_BYTE, sizeof out);

    int32_t status = emb_quantized_embedding_bag(packed, 8, 2, D, &bags, EMB_BAG_SUM, NULL, 0, out, D);
    int64_t position = -1, value = -1;
    int reported = emb_last_index_error(&position, &value);
    if (!check(status == EMB_ERROR_INDEX_OUT_OF_RANGE && reported && position == 2 && value == 2,
               "index 2 of a 2-row table -> EMB_ERROR_INDEX_OUT_OF_RANGE, position and value reported")) {
        explain(status, EMB_ERROR_INDEX_OUT_OF_RANGE);
    }

    status = emb_quantized_embedding_bag(packed, 8, 2, D, &bags, EMB_BAG_SUM, bad_mapping, 3, out, D);
    check(status == EMB_ERROR_INDEX_OUT_OF_RANGE && strstr(emb_last_error(), "compressed_indices_mapping[2] = 2") != NULL
              && !emb_last_index_error(NULL, NULL),
          "a mapping entry that is not a row -> EMB_ERROR_INDEX_OUT_OF_RANGE (torch reads it out of bounds)");

    status = emb_quantized_embedding_bag(packed, 8, 2, D, &bags, EMB_BAG_MAX, NULL, 0, out, D);
    check(status == EMB_ERROR_NOT_SUPPORTED && has_message(), "EMB_BAG_MAX -> EMB_ERROR_NOT_SUPPORTED");

    status = emb_quantized_embedding_bag(packed, 3, 2, D, &bags, EMB_BAG_SUM, NULL, 0, out, D);
    check(status == EMB_ERROR_INVALID_ARGUMENT && has_message(), "bit_width 3 -> EMB_ERROR_INVALID_ARGUMENT");

    status = emb_quantized_embedding_bag(packed, 8, 2, D, NULL, EMB_BAG_SUM, NULL, 0, out, D);
    check(status == EMB_ERROR_NULL_POINTER, "bags NULL -> EMB_ERROR_NULL_POINTER");

    status = emb_quantized_embedding_bag(packed, 8, 2, D, &bags, EMB_BAG_SUM, NULL, 0, out, D - 1);
    check(status == EMB_ERROR_BUFFER_TOO_SMALL, "out_capacity below one bag -> EMB_ERROR_BUFFER_TOO_SMALL");

    status = emb_quantized_embedding(packed, 8, 2, D, indices, EMB_DTYPE_INT64, 2, NULL, 0, (float*)(void*)packed, 2 * D);
    int unchanged = all_bytes_are(packed, sizeof packed, 1);
    expect_overlap_refused(status, "out", "packed", unchanged, "lookup into the packed table");

    check(all_bytes_are(out, sizeof out, SENTINEL_BYTE), "no refused call wrote to out");
}

int main(void)
{
    setvbuf(stdout, NULL, _IONBF, 0);
    test_examples();
    test_double_rounding();
    test_against_transcription();
    test_refusals();
    return finish();
}
