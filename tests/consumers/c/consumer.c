/* A program that uses only an installed copy of embedding_native: the header from
 * <prefix>/include and the library found by pkg-config or CMake's find_package.
 *
 *   consumer [EXPECTED_TIER]
 *
 * Checks that the header and the loaded library agree on the version, looks up rows of a small
 * table (torch's nn.Embedding documentation example shape: 10 x 5, indices [1, 2, 4]) and compares
 * them bit for bit with the table, checks that an out-of-range index is refused, and, when
 * EXPECTED_TIER (an emb_isa value: 2, 3, 4) is given, that the build it loaded is that tier.
 * Prints "consumer: OK ..." and exits 0 on success. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <embedding_native.h>

#define NUM_EMBEDDINGS 10
#define DIM 5

static int failures = 0;

static void check(int condition, const char* what)
{
    if (!condition)
    {
        fprintf(stderr, "consumer: FAILED: %s (%s)\n", what, emb_last_error());
        failures++;
    }
}

int main(int argc, char** argv)
{
    float weight[NUM_EMBEDDINGS * DIM];
    for (int i = 0; i < NUM_EMBEDDINGS * DIM; i++)
        weight[i] = (float)i * 0.25f - 3.0f;

    check(emb_version_number() == EMB_VERSION_NUMBER, "library version equals header version");

    const int64_t indices[3] = {1, 2, 4};
    float out[3 * DIM];
    memset(out, 0xff, sizeof out);
    int32_t status = emb_embedding(weight, EMB_DTYPE_FLOAT32, NUM_EMBEDDINGS, DIM,
                                   indices, EMB_DTYPE_INT64, 3, out, 3 * DIM);
    check(status == EMB_OK, "emb_embedding returns EMB_OK");
    for (int i = 0; i < 3; i++)
        check(memcmp(out + i * DIM, weight + indices[i] * DIM, DIM * sizeof(float)) == 0,
              "looked-up row equals the table row bit for bit");

    const int64_t bad[1] = {NUM_EMBEDDINGS};
    status = emb_embedding(weight, EMB_DTYPE_FLOAT32, NUM_EMBEDDINGS, DIM,
                           bad, EMB_DTYPE_INT64, 1, out, DIM);
    check(status == EMB_ERROR_INDEX_OUT_OF_RANGE, "index == num_embeddings is refused");

    int32_t tier = emb_isa_tier();
    if (argc > 1)
        check(tier == atoi(argv[1]), "the loaded build is the expected tier");

    if (failures != 0)
        return 1;
    printf("consumer: OK (library %s, tier %d, first row [%g %g %g %g %g])\n", emb_version_string(), (int)tier,
           out[0], out[1], out[2], out[3], out[4]);
    return 0;
}
