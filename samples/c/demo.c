/*
 * demo.c — torch.nn.Embedding's documentation example, from C.
 *
 *     c_demo WEIGHTS_BIN OUT_BIN
 *
 * WEIGHTS_BIN holds a 10 x 5 float32 table (50 values, row-major, little-endian), for example
 * nn.Embedding(10, 5).weight.detach().numpy().tofile(path). The demo
 *
 *   1. looks up the rows {1, 2, 4}                        -> a 3 x 5 result
 *   2. looks up the batch {{1, 2, 4, 5}, {4, 3, 2, 9}}     -> 2 x 4 x 5, and averages each batch
 *      row's 4 embeddings, as a bag-of-words model does   -> a 2 x 5 result
 *
 * prints both, and writes them to OUT_BIN as 25 float32 values: the 15 lookup values, then the
 * 10 means. samples/demo.py runs the same steps in PyTorch and compares.
 *
 * Build and run: README.md, Usage > C (the commands there are tested by `make test-docs`).
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "embedding_native.h"

enum {
    NUM_EMBEDDINGS = 10, /* rows in the table */
    EMBEDDING_DIM = 5,   /* columns: the size of one embedding vector */
    BATCH = 2,           /* batch rows in step 2 */
    BAG = 4,             /* indices per batch row */
};

/* Every emb_* call returns a status; on failure emb_last_error() explains it, for this thread. */
static int succeeded(int32_t status, const char* call)
{
    if (status == EMB_OK) {
        return 1;
    }
    fprintf(stderr, "%s failed: %s: %s\n", call, emb_status_string(status), emb_last_error());
    return 0;
}

/* Reads exactly `count` little-endian float32 values. Decoding the bytes by hand makes the file
 * format independent of the machine's byte order. */
static int read_floats(const char* path, float* values, size_t count)
{
    FILE* file = fopen(path, "rb");
    if (file == NULL) {
        perror(path);
        return 0;
    }
    int ok = 1;
    for (size_t i = 0; i < count && ok; i++) {
        unsigned char bytes[4];
        if (fread(bytes, 1, 4, file) != 4) {
            fprintf(stderr, "%s: expected %zu float32 values, the file ends after %zu\n", path, count, i);
            ok = 0;
            break;
        }
        uint32_t bits = (uint32_t)bytes[0] | (uint32_t)bytes[1] << 8 | (uint32_t)bytes[2] << 16 | (uint32_t)bytes[3] << 24;
        memcpy(&values[i], &bits, sizeof bits);
    }
    if (ok && fgetc(file) != EOF) {
        fprintf(stderr, "%s: expected exactly %zu float32 values, the file is longer\n", path, count);
        ok = 0;
    }
    fclose(file);
    return ok;
}

/* Writes `count` float32 values, little-endian. */
static int write_floats(const char* path, const float* values, size_t count)
{
    FILE* file = fopen(path, "wb");
    if (file == NULL) {
        perror(path);
        return 0;
    }
    int ok = 1;
    for (size_t i = 0; i < count && ok; i++) {
        uint32_t bits;
        memcpy(&bits, &values[i], sizeof bits);
        unsigned char bytes[4] = { (unsigned char)bits, (unsigned char)(bits >> 8),
                                   (unsigned char)(bits >> 16), (unsigned char)(bits >> 24) };
        ok = fwrite(bytes, 1, 4, file) == 4;
    }
    if (fclose(file) != 0 || !ok) {
        perror(path);
        return 0;
    }
    return 1;
}

static void print_matrix(const float* values, int rows, int columns)
{
    for (int r = 0; r < rows; r++) {
        printf("  [");
        for (int c = 0; c < columns; c++) {
            printf("%10.4f", (double)values[r * columns + c]);
        }
        printf(" ]\n");
    }
}

/* The "tier" value from emb_build_info()'s JSON, e.g. "x86-64-v3". A real program would use a
 * JSON parser; this one only needs a single string field. */
static void build_info_tier(char* tier, size_t size)
{
    const char* key = "\"tier\":\"";
    const char* start = strstr(emb_build_info(), key);
    snprintf(tier, size, "unknown");
    if (start != NULL) {
        start += strlen(key);
        const char* end = strchr(start, '"');
        if (end != NULL && (size_t)(end - start) < size) {
            memcpy(tier, start, (size_t)(end - start));
            tier[end - start] = '\0';
        }
    }
}

int main(int argc, char** argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: %s WEIGHTS_BIN OUT_BIN\n", argv[0]);
        return 2;
    }

    /* A library with another major version has another ABI: check before the first real call. */
    if (emb_version_number() / 10000 != EMB_VERSION_MAJOR) {
        fprintf(stderr, "libembedding_native %s does not match this header's version %d.%d.%d\n",
                emb_version_string(), EMB_VERSION_MAJOR, EMB_VERSION_MINOR, EMB_VERSION_PATCH);
        return 1;
    }
    char tier[32];
    build_info_tier(tier, sizeof tier);
    printf("embedding_native %s, tier %s (emb_isa_tier() = %d), NativeAOT C ABI\n",
           emb_version_string(), tier, (int)emb_isa_tier());

    /* The table: nn.Embedding(10, 5).weight, row-major. The caller owns every buffer. */
    float weight[NUM_EMBEDDINGS * EMBEDDING_DIM];
    if (!read_floats(argv[1], weight, NUM_EMBEDDINGS * EMBEDDING_DIM)) {
        return 1;
    }

    /* Step 1: embedding(torch.tensor([1, 2, 4])). int64 indices, like torch's LongTensor. */
    const int64_t indices[3] = { 1, 2, 4 };
    float lookup[3 * EMBEDDING_DIM];
    int32_t status = emb_embedding(weight, EMB_DTYPE_FLOAT32, NUM_EMBEDDINGS, EMBEDDING_DIM,
                                   indices, EMB_DTYPE_INT64, 3,
                                   lookup, 3 * EMBEDDING_DIM);
    if (!succeeded(status, "emb_embedding")) {
        return 1;
    }
    printf("embedding([1, 2, 4]) -> 3 x %d:\n", EMBEDDING_DIM);
    print_matrix(lookup, 3, EMBEDDING_DIM);

    /* Step 2: a batch of two 4-word sentences. The index array is 2 x 4, row-major, so the
     * library sees 8 indices and returns 8 embeddings: a 2 x 4 x 5 result. */
    const int64_t batch[BATCH][BAG] = { { 1, 2, 4, 5 }, { 4, 3, 2, 9 } };
    float embedded[BATCH * BAG * EMBEDDING_DIM];
    status = emb_embedding(weight, EMB_DTYPE_FLOAT32, NUM_EMBEDDINGS, EMBEDDING_DIM,
                           &batch[0][0], EMB_DTYPE_INT64, BATCH * BAG,
                           embedded, BATCH * BAG * EMBEDDING_DIM);
    if (!succeeded(status, "emb_embedding")) {
        return 1;
    }

    /* Mean over each batch row's embeddings (SimpleNN's embedded.mean(dim=1)): add the 4
     * vectors in index order in float, then divide by 4. The C# demo does exactly the same. */
    float means[BATCH * EMBEDDING_DIM];
    for (int b = 0; b < BATCH; b++) {
        for (int d = 0; d < EMBEDDING_DIM; d++) {
            float sum = 0.0f;
            for (int w = 0; w < BAG; w++) {
                sum += embedded[(b * BAG + w) * EMBEDDING_DIM + d];
            }
            means[b * EMBEDDING_DIM + d] = sum / (float)BAG;
        }
    }
    printf("embedding([[1, 2, 4, 5], [4, 3, 2, 9]]).mean(dim=1) -> %d x %d:\n", BATCH, EMBEDDING_DIM);
    print_matrix(means, BATCH, EMBEDDING_DIM);

    /* Step 3: hand both results back to the Python side for comparison. */
    float results[3 * EMBEDDING_DIM + BATCH * EMBEDDING_DIM];
    memcpy(results, lookup, sizeof lookup);
    memcpy(results + 3 * EMBEDDING_DIM, means, sizeof means);
    if (!write_floats(argv[2], results, sizeof results / sizeof results[0])) {
        return 1;
    }
    printf("wrote %zu float32 values to %s (15 lookup values, then 10 means)\n",
           sizeof results / sizeof results[0], argv[2]);
    return 0;
}
