/*
 * test_quantize.c — packing and unpacking row-wise quantized tables through the C ABI alone:
 * emb_quantized_row_bytes, emb_quantize, emb_quantize_optimized and emb_dequantize, on rows
 * whose packed bytes torch 1.13 produced (embedding_bag_{byte,4bit,2bit}_prepack), on the
 * search torch 1.13 never finishes, and on every refusal (status, message, nothing written).
 *
 * Prints one line per check and ends with "N passed, M failed"; exits 1 if anything failed.
 */
#include "check.h"

#include <math.h>

static int hex_equal(const uint8_t* bytes, size_t count, const char* hex)
{
    if (strlen(hex) != 2 * count) {
        return 0;
    }
    for (size_t i = 0; i < count; i++) {
        unsigned value;
        if (sscanf(hex + 2 * i, "%2x", &value) != 1 || value != bytes[i]) {
            return 0;
        }
    }
    return 1;
}

static void test_row_bytes(void)
{
    static const struct { int32_t bits; int64_t dim; int64_t bytes; } cases[] = {
        { 8, 1, 9 }, { 8, 64, 72 }, { 4, 1, 5 }, { 4, 7, 8 }, { 4, 8, 8 }, { 2, 1, 5 }, { 2, 5, 6 }, { 2, 8, 6 },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int64_t bytes = -1;
        int32_t status = emb_quantized_row_bytes(cases[i].bits, cases[i].dim, &bytes);
        check(status == EMB_OK && bytes == cases[i].bytes, "row bytes: %d-bit, dim %lld -> %lld",
              (int)cases[i].bits, (long long)cases[i].dim, (long long)cases[i].bytes);
    }

    int64_t bytes = -1;
    int32_t status = emb_quantized_row_bytes(3, 8, &bytes);
    check(status == EMB_ERROR_INVALID_ARGUMENT && strstr(emb_last_error(), "bit_width is 3") != NULL && bytes == -1,
          "row bytes: bit_width 3 -> EMB_ERROR_INVALID_ARGUMENT naming it");
    status = emb_quantized_row_bytes(8, 0, &bytes);
    check(status == EMB_ERROR_INVALID_ARGUMENT && has_message(), "row bytes: embedding_dim 0 is refused");
    status = emb_quantized_row_bytes(4, 4, NULL);
    check(status == EMB_ERROR_NULL_POINTER, "row bytes: NULL result pointer -> EMB_ERROR_NULL_POINTER");
}

/* torch 1.13's bytes for one row each (float32 bits; 8-, 4- and 2-bit packing). */
static void test_torch_rows(void)
{
    static const struct { const char* name; uint32_t row[8]; int dim; const char* hex[3]; } rows[] = {
        { "ties at .5 go to even codes",
          { 0x00000000, 0x3F000000, 0x3FC00000, 0x40200000, 0x40600000, 0x437F0000, 0x42FF0000, 0x43008000 }, 8,
          { "0000020204FF80800000803F00000000", "0000F088404C0000", "00AC50550000" } },
        { "a constant row", { 0x40A00000, 0x40A00000, 0x40A00000, 0x40A00000 }, 4,
          { "00000000000000000000A040", "0000003C0045", "00003C0045" } },
        { "-0.0 first: the bias is -0.0", { 0x80000000, 0x00000000, 0x00000000, 0x80000000 }, 4,
          { "000000000000000000000080", "0000003C0080", "00003C0080" } },
        { "a range that overflows to inf", { 0xFF61B1E6, 0x7F61B1E6, 0x00000000, 0x3F800000 }, 4,
          { "000000000000807FE6B161FF", "0000007C00FC", "00007C00FC" } },
        { "subnormals", { 0x00000001, 0x00000000, 0x00000002, 0x000116C2 }, 4,
          { "000000001801000000000000", "0000003C0000", "00003C0000" } },
        { "NaN first: NaN scale and bias", { 0x7FC00000, 0x3F800000, 0x40000000, 0x40400000 }, 4,
          { "000000000000C07F0000C07F", "0000007E007E", "00007E007E" } },
        { "NaN later: code 0", { 0x3F800000, 0x7FC00000, 0x40000000, 0x40400000 }, 4,
          { "000080FF8180003C0000803F", "00F84430003C", "E05539003C" } },
        { "+inf: every code 0", { 0x3F800000, 0x7F800000, 0x40000000, 0x40400000 }, 4,
          { "000000000000807F0000803F", "0000007C003C", "00007C003C" } },
        { "a minimum that rounds up in float16", { 0x447A1333, 0x447A1333, 0x447A199A, 0x447A1CCD }, 4,
          { "0000AAFF3A3A1A3A33137A44", "FFFFD39AD163", "FF44A4D163" } },
    };
    static const int32_t widths[3] = { 8, 4, 2 };
    for (size_t r = 0; r < sizeof rows / sizeof rows[0]; r++) {
        float weight[8];
        for (int j = 0; j < rows[r].dim; j++) {
            weight[j] = float_from_bits(rows[r].row[j]);
        }
        for (int w = 0; w < 3; w++) {
            int64_t row_bytes = 0;
            emb_quantized_row_bytes(widths[w], rows[r].dim, &row_bytes);
            uint8_t packed[32];
            memset(packed, SENTINEL_BYTE, sizeof packed);
            int32_t status = emb_quantize(weight, EMB_DTYPE_FLOAT32, 1, rows[r].dim, widths[w], packed, (int64_t)sizeof packed);
            check(status == EMB_OK && hex_equal(packed, (size_t)row_bytes, rows[r].hex[w])
                      && all_bytes_are(packed + row_bytes, sizeof packed - (size_t)row_bytes, SENTINEL_BYTE),
                  "%d-bit prepack, %s: torch's bytes, nothing past the row", (int)widths[w], rows[r].name);
        }
    }
}

static void test_optimized(void)
{
    /* Three random rows; torch 1.13's embedding_bag_4bit_prepack(w, True, 200, 0.16). */
    static const uint32_t bits[24] = {
        0x3FBF33E5, 0xC06C7524, 0x404884AC, 0xBE457E39, 0x3FAE2D48, 0xBE8BD80C, 0xBF421935, 0x3F6D1CC6,
        0x3FD31352, 0xBECF63FE, 0xBE9C73FB, 0x3FAF89F2, 0xBFDECEA5, 0xC041D752, 0x3F4A3B10, 0xBFABAA34,
        0xC075CDB8, 0xBFD065D2, 0xBF6F68F2, 0xC018BADC, 0xC03F090E, 0x3D96118C, 0x3FE5B221, 0xBEEEBA2D,
    };
    float weight[24];
    for (int i = 0; i < 24; i++) {
        weight[i] = float_from_bits(bits[i]);
    }
    uint8_t packed[24];
    int32_t status = emb_quantize_optimized(weight, EMB_DTYPE_FLOAT32, 3, 8, 4, 200, 0.16, packed, 24);
    check(status == EMB_OK && hex_equal(packed, 24, "0B7F7BA60737E9C28FE9045CEA34EBC16048A29F0336AEC3"),
          "optimized 4-bit prepack (200 bins, ratio 0.16): torch's bytes");
    status = emb_quantize_optimized(weight, EMB_DTYPE_FLOAT32, 3, 8, 2, 7, 0.9, packed, 18);
    check(status == EMB_OK && hex_equal(packed, 18, "7296CD3F70C1EB71593D0FC214B8713E12C2"),
          "optimized 2-bit prepack (7 bins, ratio 0.9): torch's bytes");

    /* 1e8 and 1e8 + 64: every step (0.32) is below half an ulp (4), so torch 1.13 repeats the
     * same iteration forever. Here the search stops: the row's own range, as the plain prepack. */
    const float stuck[4] = { float_from_bits(0x4CBEBC20), float_from_bits(0x4CBEBC28), float_from_bits(0x4CBEBC20),
                             float_from_bits(0x4CBEBC20) };
    uint8_t plain[6], optimized[6];
    emb_quantize(stuck, EMB_DTYPE_FLOAT32, 1, 4, 4, plain, 6);
    status = emb_quantize_optimized(stuck, EMB_DTYPE_FLOAT32, 1, 4, 4, 200, 0.16, optimized, 6);
    check(status == EMB_OK && memcmp(plain, optimized, 6) == 0, "optimized prepack returns where torch 1.13 never does");
}

static void test_float16_and_round_trip(void)
{
    enum { ROWS = 5, DIM = 13 };
    float weight[ROWS * DIM];
    uint16_t half[ROWS * DIM];
    for (int i = 0; i < ROWS * DIM; i++) {
        /* Multiples of 1/8 in [-4, 4): exact in float16, so both weights hold the same values. */
        weight[i] = (float)((i * 37) % 64 - 32) / 8.0f;
        int k = (i * 37) % 64 - 32;   /* k / 8 as float16: sign, exponent, 10-bit mantissa */
        uint16_t sign = k < 0 ? 0x8000 : 0;
        int m = k < 0 ? -k : k;
        uint16_t bits16 = 0;
        if (m != 0) {
            int e = 0;
            while ((m >> e) > 1) {
                e++;
            }
            bits16 = (uint16_t)(((e - 3 + 15) << 10) | (((m << 10) >> e) & 0x3FF));
        }
        half[i] = (uint16_t)(sign | bits16);
    }

    static const int32_t widths[3] = { 8, 4, 2 };
    for (int w = 0; w < 3; w++) {
        int64_t row_bytes = 0;
        emb_quantized_row_bytes(widths[w], DIM, &row_bytes);
        uint8_t from_float[ROWS * (DIM + 8)], from_half[ROWS * (DIM + 8)];
        int32_t a = emb_quantize(weight, EMB_DTYPE_FLOAT32, ROWS, DIM, widths[w], from_float, (int64_t)sizeof from_float);
        int32_t b = emb_quantize(half, EMB_DTYPE_FLOAT16, ROWS, DIM, widths[w], from_half, (int64_t)sizeof from_half);
        check(a == EMB_OK && b == EMB_OK && memcmp(from_float, from_half, (size_t)(ROWS * row_bytes)) == 0,
              "%d-bit prepack: a float16 weight packs as its exact float32 values", (int)widths[w]);

        float restored[ROWS * DIM];
        int32_t status = emb_dequantize(from_float, ROWS, DIM, widths[w], restored, ROWS * DIM);
        int close = status == EMB_OK;
        for (int r = 0; r < ROWS && close; r++) {
            const uint8_t* row = from_float + r * row_bytes;
            float scale;
            if (widths[w] == 8) {
                memcpy(&scale, row + DIM, sizeof scale);
            } else {
                uint16_t s;
                memcpy(&s, row + row_bytes - 4, sizeof s);
                scale = ldexpf((float)(0x400 | (s & 0x3FF)), ((s >> 10) & 0x1F) - 25);
            }
            for (int j = 0; j < DIM; j++) {
                close &= fabsf(restored[r * DIM + j] - weight[r * DIM + j]) <= scale * 0.5f + 1e-3f;
            }
        }
        check(close, "%d-bit round trip: every element within half a step", (int)widths[w]);
    }
}

static void test_dequantize_arithmetic(void)
{
    /* 103 * 0x3F11D996 + 0xC0B367FD: torch 1.13 rounds the product, then the sum (0x42544D2D);
     * a fused multiply-add would give 0x42544D2E. */
    uint8_t packed[9] = { 103 };
    uint32_t scale = 0x3F11D996, bias = 0xC0B367FD;
    memcpy(packed + 1, &scale, 4);
    memcpy(packed + 5, &bias, 4);
    float out[2] = { 0, float_from_bits(0xFFA5A5A5) };
    int32_t status = emb_dequantize(packed, 1, 1, 8, out, 1);
    uint32_t got;
    memcpy(&got, &out[0], 4);
    check(status == EMB_OK && got == 0x42544D2D, "dequantize: the product is rounded before the bias is added");

    /* A NaN scale: its NaN in every column, over a NaN bias. */
    uint8_t nan_row[6] = { 0x21, 0x13, 0x01, 0x7E, 0x02, 0xFE };   /* 4-bit codes 1 2 3 1, scale 0x7E01, bias 0xFE02 */
    float four[4];
    status = emb_dequantize(nan_row, 1, 4, 4, four, 4);
    int all = status == EMB_OK;
    for (int j = 0; j < 4; j++) {
        uint32_t b;
        memcpy(&b, &four[j], 4);
        all &= b == 0x7FC02000u;
    }
    check(all, "dequantize: a NaN float16 scale gives its NaN (0x7FC02000), as torch");
}

static void test_refusals(void)
{
    float weight[8] = { 1, 2, 3, 4, 5, 6, 7, 8 };
    uint8_t packed[64];
    memset(packed, SENTINEL_BYTE, sizeof packed);

    int32_t status = emb_quantize(weight, EMB_DTYPE_FLOAT64, 2, 4, 8, packed, 64);
    check(status == EMB_ERROR_UNSUPPORTED_DTYPE && has_message(), "quantize: a float64 weight -> EMB_ERROR_UNSUPPORTED_DTYPE");
    status = emb_quantize(weight, EMB_DTYPE_FLOAT32, 2, 4, 5, packed, 64);
    check(status == EMB_ERROR_INVALID_ARGUMENT && strstr(emb_last_error(), "bit_width is 5") != NULL,
          "quantize: bit_width 5 -> EMB_ERROR_INVALID_ARGUMENT naming it");
    status = emb_quantize(weight, EMB_DTYPE_FLOAT32, 2, 4, 8, packed, 23);
    check(status == EMB_ERROR_BUFFER_TOO_SMALL && has_message(), "quantize: 23 bytes for two 12-byte rows -> EMB_ERROR_BUFFER_TOO_SMALL");
    status = emb_quantize(NULL, EMB_DTYPE_FLOAT32, 2, 4, 8, packed, 64);
    check(status == EMB_ERROR_NULL_POINTER, "quantize: NULL weight -> EMB_ERROR_NULL_POINTER");
    status = emb_quantize(weight, EMB_DTYPE_FLOAT32, INT64_MAX / 2, 4, 8, packed, 64);
    check(status == EMB_ERROR_SIZE_OVERFLOW, "quantize: a table too large to address -> EMB_ERROR_SIZE_OVERFLOW");
    expect_overlap_refused(emb_quantize(weight, EMB_DTYPE_FLOAT32, 1, 4, 8, (uint8_t*)weight + 8, 12), "packed", "weight",
                           weight[2] == 3 && weight[3] == 4, "quantize into the weight's own bytes");
    status = emb_quantize_optimized(weight, EMB_DTYPE_FLOAT32, 2, 4, 8, 200, 0.16, packed, 64);
    check(status == EMB_ERROR_INVALID_ARGUMENT && has_message(), "optimized: 8-bit -> EMB_ERROR_INVALID_ARGUMENT (torch has none)");
    status = emb_quantize_optimized(weight, EMB_DTYPE_FLOAT32, 2, 4, 4, 0, 0.16, packed, 64);
    check(status == EMB_ERROR_INVALID_ARGUMENT && strstr(emb_last_error(), "num_bins is 0") != NULL, "optimized: num_bins 0 is refused");
    status = emb_quantize_optimized(weight, EMB_DTYPE_FLOAT32, 2, 4, 4, 200, NAN, packed, 64);
    check(status == EMB_ERROR_INVALID_ARGUMENT && strstr(emb_last_error(), "ratio is NaN") != NULL, "optimized: a NaN ratio is refused");
    status = emb_quantize_optimized(weight, EMB_DTYPE_FLOAT32, 2, 4, 2, 200, 1.25, packed, 64);
    check(status == EMB_ERROR_INVALID_ARGUMENT && has_message(), "optimized: ratio 1.25 is refused");
    check(all_bytes_are(packed, sizeof packed, SENTINEL_BYTE), "refused packing calls wrote nothing");

    float out[16];
    memset(out, SENTINEL_BYTE, sizeof out);
    status = emb_dequantize(packed, 2, 4, 8, out, 7);
    check(status == EMB_ERROR_BUFFER_TOO_SMALL && has_message(), "dequantize: 7 floats for 2 x 4 -> EMB_ERROR_BUFFER_TOO_SMALL");
    status = emb_dequantize(packed, 2, 4, 3, out, 16);
    check(status == EMB_ERROR_INVALID_ARGUMENT && strstr(emb_last_error(), "bit_width is 3") != NULL, "dequantize: bit_width 3 is refused");
    status = emb_dequantize(NULL, 2, 4, 8, out, 16);
    check(status == EMB_ERROR_NULL_POINTER, "dequantize: NULL packed -> EMB_ERROR_NULL_POINTER");
    check(all_bytes_are(out, sizeof out, SENTINEL_BYTE), "refused unpacking calls wrote nothing");
    expect_overlap_refused(emb_dequantize(packed, 2, 4, 8, (float*)(packed + 16), 8), "out", "packed",
                           all_bytes_are(packed, sizeof packed, SENTINEL_BYTE), "dequantize into the packed bytes");

    status = emb_quantize(NULL, EMB_DTYPE_FLOAT16, 0, 4, 2, NULL, 0);
    int32_t status2 = emb_dequantize(NULL, 0, 4, 2, NULL, 0);
    check(status == EMB_OK && status2 == EMB_OK, "no rows: NULL buffers are accepted and nothing is written");
}

int main(void)
{
    test_row_bytes();
    test_torch_rows();
    test_optimized();
    test_float16_and_round_trip();
    test_dequantize_arithmetic();
    test_refusals();
    return finish();
}
