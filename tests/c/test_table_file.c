/*
 * test_table_file.c — table files through the C ABI, from C through the header alone: .npy and
 * .safetensors files written here (as embedding_native.tables.save writes them) open through
 * emb_table_open and serve emb_embedding, emb_embedding_bag and emb_quantized_embedding_bag bit for
 * bit as the same table in memory does; a writable table reaches the file; a sparse file of more
 * than 2^31 elements and more bytes than the machine has memory serves rows on both sides of
 * element 2^31 and at its end; bad files, bad
 * arguments and NULL pointers give a status and a readable message, never a crash.
 *
 * Prints one line per check and ends with "N passed, M failed"; exits 1 if anything failed.
 */
#define _XOPEN_SOURCE 700

#include <fcntl.h>
#include <stddef.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"

static char directory[] = "/tmp/emb-table-file-XXXXXX";

/* A path in the test's directory (a static buffer per slot, so two may be used at once). */
static const char* path_of(const char* name)
{
    static char paths[4][256];
    static int next;
    char* path = paths[next++ % 4];
    snprintf(path, sizeof paths[0], "%s/%s", directory, name);
    return path;
}

static int write_file(const char* path, const void* header, size_t header_bytes, const void* data, size_t data_bytes)
{
    FILE* file = fopen(path, "wb");
    if (file == NULL) return 0;
    int ok = fwrite(header, 1, header_bytes, file) == header_bytes
          && (data_bytes == 0 || fwrite(data, 1, data_bytes, file) == data_bytes);
    return fclose(file) == 0 && ok;
}

/* The .npy header as numpy and embedding_native.tables.save write it: version 1.0, the dict padded
 * with spaces and a newline so the data starts on a 64-byte boundary. Returns its length. */
static size_t npy_header(char* out, const char* descr, int64_t rows, int64_t cols)
{
    char text[256];
    int length = snprintf(text, sizeof text, "{'descr': '%s', 'fortran_order': False, 'shape': (%lld, %lld), }",
                          descr, (long long)rows, (long long)cols);
    int padded = (int)((64 - (10 + length + 1) % 64) % 64);
    memcpy(out, "\x93NUMPY\x01\x00", 8);
    int header = length + padded + 1;
    out[8] = (char)(header & 0xFF);
    out[9] = (char)(header >> 8);
    memcpy(out + 10, text, (size_t)length);
    memset(out + 10 + length, ' ', (size_t)padded);
    out[10 + length + padded] = '\n';
    return (size_t)(10 + header);
}

/* The .safetensors header of one tensor "weight": 8-byte length, compact JSON padded to 8 bytes. */
static size_t safetensors_header(char* out, const char* dtype, int64_t rows, int64_t cols, int64_t element_bytes)
{
    char* text = out + 8;
    int length = snprintf(text, 248, "{\"weight\":{\"dtype\":\"%s\",\"shape\":[%lld,%lld],\"data_offsets\":[0,%lld]}}",
                          dtype, (long long)rows, (long long)cols, (long long)(rows * cols * element_bytes));
    while ((8 + length) % 8 != 0) text[length++] = ' ';
    for (int k = 0; k < 8; k++) out[k] = (char)((uint64_t)length >> (8 * k));
    return (size_t)(8 + length);
}

static emb_table* open_table(const char* path, int32_t writable, emb_table_info* info)
{
    emb_table* table = NULL;
    int32_t status = emb_table_open(path, writable, NULL, &table);
    if (status != EMB_OK) {
        printf("     emb_table_open(%s) failed: %s (%s)\n", path, emb_status_string(status), emb_last_error());
        return NULL;
    }
    if (emb_table_get_info(table, info) != EMB_OK) {
        printf("     emb_table_get_info failed: %s\n", emb_last_error());
        emb_table_close(table);
        return NULL;
    }
    return table;
}

/* Whether the mapping holding `address` carries the VmFlags flag `flag` in /proc/self/smaps (Linux);
 * -1 when that file cannot be read. */
static int mapping_has_flag(const void* address, const char* flag)
{
    FILE* smaps = fopen("/proc/self/smaps", "r");
    if (smaps == NULL) return -1;
    char line[512];
    int inside = 0, found = 0;
    while (fgets(line, sizeof line, smaps) != NULL) {
        unsigned long long low, high;
        if (sscanf(line, "%llx-%llx ", &low, &high) == 2 && strchr(line, '-') < strchr(line, ' ')) {
            inside = low <= (uintptr_t)address && (uintptr_t)address < high;
        } else if (inside && strncmp(line, "VmFlags:", 8) == 0) {
            /* "VmFlags: rd mr me ms rr dc \n": each flag follows a space and ends at a space or the newline. */
            for (char* at = strstr(line, flag); at != NULL && !found; at = strstr(at + 1, flag)) {
                char after = at[strlen(flag)];
                found = at[-1] == ' ' && (after == ' ' || after == '\n' || after == '\0');
            }
            break;
        }
    }
    fclose(smaps);
    return found;
}

/* ---- Files written here serve the lookups ----------------------------------------------------- */

#define ROWS 7
#define DIM 5

static void test_float32_files(void)
{
    float weight[ROWS * DIM];
    for (int i = 0; i < ROWS * DIM; i++) weight[i] = (float)i * 0.75f - 3.0f;
    char header[256];
    size_t npy = npy_header(header, "<f4", ROWS, DIM);
    check(npy % 64 == 0 && write_file(path_of("t.npy"), header, npy, weight, sizeof weight), "wrote t.npy");
    size_t st = safetensors_header(header, "F32", ROWS, DIM, 4);
    check(st % 8 == 0 && write_file(path_of("t.safetensors"), header, st, weight, sizeof weight), "wrote t.safetensors");

    const char* names[2] = { "t.npy", "t.safetensors" };
    const size_t offsets[2] = { npy, st };
    for (int f = 0; f < 2; f++) {
        emb_table_info info;
        emb_table* table = open_table(path_of(names[f]), 0, &info);
        if (!check(table != NULL, "%s opens", names[f])) continue;
        check(info.num_embeddings == ROWS && info.embedding_dim == DIM && info.dtype == EMB_DTYPE_FLOAT32
              && info.writable == 0 && info.data_offset == (int64_t)offsets[f] && info.data != NULL,
              "%s: info is [%d, %d] float32 read-only at byte %zu", names[f], ROWS, DIM, offsets[f]);
        check(memcmp(info.data, weight, sizeof weight) == 0, "%s: the mapped data is the table", names[f]);
        int advised = mapping_has_flag(info.data, "rr");
        check(advised != 0, "%s: the mapping is advised random (VmFlags rr)%s", names[f], advised < 0 ? ": no /proc/self/smaps, not checked" : "");

        const int64_t indices[6] = { 6, 0, 3, 3, 1, 6 };
        float mapped[6 * DIM], memory[6 * DIM];
        int32_t a = emb_embedding(info.data, info.dtype, info.num_embeddings, info.embedding_dim,
                                  indices, EMB_DTYPE_INT64, 6, mapped, 6 * DIM);
        int32_t b = emb_embedding(weight, EMB_DTYPE_FLOAT32, ROWS, DIM, indices, EMB_DTYPE_INT64, 6, memory, 6 * DIM);
        check(a == EMB_OK && b == EMB_OK && memcmp(mapped, memory, sizeof mapped) == 0
              && mapped[0] == weight[6 * DIM] && mapped[DIM * 5 + 4] == weight[6 * DIM + 4],
              "%s: emb_embedding on the mapped table equals the table in memory", names[f]);

        const int64_t bag_offsets[2] = { 0, 2 };
        emb_bags bags = int64_bags(indices, 6, bag_offsets, 2);
        for (int32_t mode = EMB_BAG_SUM; mode <= EMB_BAG_MAX; mode++) {
            float bag_mapped[2 * DIM], bag_memory[2 * DIM];
            a = emb_embedding_bag(info.data, info.dtype, info.num_embeddings, info.embedding_dim, &bags, mode,
                                  bag_mapped, 2 * DIM, NULL, 0);
            b = emb_embedding_bag(weight, EMB_DTYPE_FLOAT32, ROWS, DIM, &bags, mode, bag_memory, 2 * DIM, NULL, 0);
            check(a == EMB_OK && b == EMB_OK && memcmp(bag_mapped, bag_memory, sizeof bag_mapped) == 0,
                  "%s: emb_embedding_bag mode %d on the mapped table equals the table in memory", names[f], (int)mode);
        }
        check(emb_table_flush(table) == EMB_OK, "%s: flushing a read-only table is a no-op", names[f]);
        check(emb_table_close(table) == EMB_OK, "%s closes", names[f]);
    }
}

static void test_other_types(void)
{
    /* float64 and float16 (.safetensors) and bfloat16: the dtype the file names comes back. */
    static const struct { const char* dtype; int32_t emb; int64_t bytes; } types[] = {
        { "F64", EMB_DTYPE_FLOAT64, 8 }, { "F16", EMB_DTYPE_FLOAT16, 2 }, { "BF16", EMB_DTYPE_BFLOAT16, 2 },
        { "U8", EMB_DTYPE_UINT8, 1 },
    };
    unsigned char data[ROWS * DIM * 8];
    for (size_t i = 0; i < sizeof data; i++) data[i] = (unsigned char)(i * 37 + 11);
    for (size_t t = 0; t < sizeof types / sizeof types[0]; t++) {
        char header[256], name[32];
        size_t length = safetensors_header(header, types[t].dtype, ROWS, DIM, types[t].bytes);
        snprintf(name, sizeof name, "%s.safetensors", types[t].dtype);
        write_file(path_of(name), header, length, data, (size_t)(ROWS * DIM * types[t].bytes));
        emb_table_info info;
        emb_table* table = open_table(path_of(name), 0, &info);
        check(table != NULL && info.dtype == types[t].emb && info.num_embeddings == ROWS && info.embedding_dim == DIM
              && memcmp(info.data, data, (size_t)(ROWS * DIM * types[t].bytes)) == 0,
              "%s: dtype %d, shape and bytes as written", name, (int)types[t].emb);
        emb_table_close(table);
    }
}

static void test_packed_table(void)
{
    /* 4-bit rows packed by emb_quantize, saved as a uint8 .npy, serve emb_quantized_embedding_bag. */
    enum { V = 30, D = 8 };
    float weight[V * D];
    for (int i = 0; i < V * D; i++) weight[i] = (float)((i * 7919) % 101) / 10.0f - 5.0f;
    int64_t row_bytes = 0;
    emb_quantized_row_bytes(4, D, &row_bytes);
    uint8_t packed[V * 16];
    check(emb_quantize(weight, EMB_DTYPE_FLOAT32, V, D, 4, packed, sizeof packed) == EMB_OK, "packed 4-bit rows");
    char header[256];
    size_t length = npy_header(header, "|u1", V, row_bytes);
    write_file(path_of("packed.npy"), header, length, packed, (size_t)(V * row_bytes));
    emb_table_info info;
    emb_table* table = open_table(path_of("packed.npy"), 0, &info);
    if (!check(table != NULL && info.dtype == EMB_DTYPE_UINT8 && info.embedding_dim == row_bytes, "packed.npy opens as uint8 rows of %lld bytes", (long long)row_bytes)) {
        emb_table_close(table);
        return;
    }
    const int64_t indices[5] = { 1, 2, 29, 0, 7 }, offsets[2] = { 0, 3 };
    emb_bags bags = int64_bags(indices, 5, offsets, 2);
    float mapped[2 * D], memory[2 * D];
    int32_t a = emb_quantized_embedding_bag(info.data, 4, info.num_embeddings, D, &bags, EMB_BAG_SUM, NULL, 0, mapped, 2 * D);
    int32_t b = emb_quantized_embedding_bag(packed, 4, V, D, &bags, EMB_BAG_SUM, NULL, 0, memory, 2 * D);
    check(a == EMB_OK && b == EMB_OK && memcmp(mapped, memory, sizeof mapped) == 0,
          "emb_quantized_embedding_bag on the mapped rows equals the rows in memory");
    emb_table_close(table);
}

static void test_writable(void)
{
    float zeros[4 * 3] = { 0 };
    char header[256];
    size_t length = npy_header(header, "<f4", 4, 3);
    write_file(path_of("w.npy"), header, length, zeros, sizeof zeros);
    emb_table_info info;
    emb_table* table = open_table(path_of("w.npy"), 1, &info);
    if (!check(table != NULL && info.writable == 1, "w.npy opens writable")) return;
    ((float*)info.data)[1 * 3 + 2] = 6.5f;
    check(emb_table_flush(table) == EMB_OK, "emb_table_flush");
    check(emb_table_close(table) == EMB_OK, "emb_table_close");

    FILE* file = fopen(path_of("w.npy"), "rb");
    float row[3] = { 0 };
    int read = file != NULL && fseek(file, (long)length + 3 * 4, SEEK_SET) == 0 && fread(row, 4, 3, file) == 3;
    if (file != NULL) fclose(file);
    check(read && row[2] == 6.5f && row[0] == 0.0f, "the write reached the file");
}

/* ---- More than 2^31 elements ------------------------------------------------------------------ */

static void test_sparse_table(void)
{
    /* More than 2^31 rows, and more bytes than the machine has memory (a quarter more). */
    const int64_t memory = (int64_t)sysconf(_SC_PHYS_PAGES) * (int64_t)sysconf(_SC_PAGESIZE);
    const int64_t rows = memory / 4 * 5 / 4 > ((int64_t)1 << 31) + 5 ? memory / 4 * 5 / 4 : ((int64_t)1 << 31) + 5;
    char header[256];
    size_t length = npy_header(header, "<f4", rows, 1);
    const char* path = path_of("huge.npy");
    int fd = open(path, O_CREAT | O_TRUNC | O_RDWR, 0644);
    const int64_t marked[3] = { ((int64_t)1 << 31) - 1, (int64_t)1 << 31, rows - 1 };
    int ok = fd >= 0 && write(fd, header, length) == (ssize_t)length
          && ftruncate(fd, (off_t)(length + (size_t)rows * 4)) == 0;
    for (int k = 0; ok && k < 3; k++) {
        float value = (float)(k + 1) * 1.5f; /* 1.5, 3.0, 4.5 */
        ok = pwrite(fd, &value, 4, (off_t)(length + (size_t)marked[k] * 4)) == 4;
    }
    struct stat status;
    ok = ok && fstat(fd, &status) == 0;
    if (fd >= 0) close(fd);
    if (!check(ok && rows * 4 > memory, "wrote a sparse .npy of %lld rows, %lld GiB (the machine has %lld GiB)",
               (long long)rows, (long long)(rows * 4 >> 30), (long long)(memory >> 30))) return;
    printf("     (%lld bytes long, %lld bytes on disk)\n", (long long)status.st_size, (long long)status.st_blocks * 512);

    emb_table_info info;
    emb_table* table = open_table(path, 0, &info);
    if (!check(table != NULL && info.num_embeddings == rows && info.embedding_dim == 1, "huge.npy opens: %lld x 1", (long long)rows)) {
        emb_table_close(table);
        unlink(path);
        return;
    }
    const int64_t indices[5] = { rows - 1, (int64_t)1 << 31, 12345, ((int64_t)1 << 31) - 1, 0 };
    float out[5];
    int32_t status_code = emb_embedding(info.data, info.dtype, info.num_embeddings, 1, indices, EMB_DTYPE_INT64, 5, out, 5);
    check(status_code == EMB_OK && out[0] == 4.5f && out[1] == 3.0f && out[2] == 0.0f && out[3] == 1.5f && out[4] == 0.0f,
          "emb_embedding reads rows 2^31-1, 2^31 and the last (4.5 3 0 1.5 0: got %g %g %g %g %g)",
          (double)out[0], (double)out[1], (double)out[2], (double)out[3], (double)out[4]);

    const int64_t offsets[2] = { 0, 2 };
    emb_bags bags = int64_bags(indices, 5, offsets, 2);
    float sums[2] = { -1, -1 };
    status_code = emb_embedding_bag(info.data, info.dtype, info.num_embeddings, 1, &bags, EMB_BAG_SUM, sums, 2, NULL, 0);
    check(status_code == EMB_OK && sums[0] == 7.5f && sums[1] == 1.5f,
          "emb_embedding_bag sums rows past 2^31 (7.5 1.5: got %g %g)", (double)sums[0], (double)sums[1]);

    const int64_t past_end[1] = { rows };
    status_code = emb_embedding(info.data, info.dtype, info.num_embeddings, 1, past_end, EMB_DTYPE_INT64, 1, out, 5);
    if (!check(status_code == EMB_ERROR_INDEX_OUT_OF_RANGE && has_message(), "index num_embeddings is refused")) {
        explain(status_code, EMB_ERROR_INDEX_OUT_OF_RANGE);
    }
    emb_table_close(table);
    unlink(path);
}

/* ---- Bad files, bad arguments ------------------------------------------------------------------- */

static void expect_open_fails(const char* path, const char* name, int32_t writable, int32_t want, const char* text, const char* what)
{
    emb_table* table = (emb_table*)&directory; /* any non-NULL value: a failed open must leave it */
    int32_t status = emb_table_open(path, writable, name, &table);
    int named = text == NULL || strstr(emb_last_error(), text) != NULL;
    if (!check(status == want && has_message() && named && table == (emb_table*)&directory,
               "%s -> %s, message \"%s\"", what, emb_status_string(want), text ? text : "(any)")) {
        explain(status, want);
    }
}

static void test_bad_files(void)
{
    float data[6] = { 0 };
    char header[256];
    size_t length = npy_header(header, "<f4", 2, 3);
    write_file(path_of("truncated.npy"), header, length, data, sizeof data - 1);
    expect_open_fails(path_of("truncated.npy"), NULL, 0, EMB_ERROR_INVALID_FILE, "the file is truncated", "truncated data");
    write_file(path_of("trailing.npy"), header, length, data, sizeof data);
    FILE* file = fopen(path_of("trailing.npy"), "ab");
    if (file != NULL) { fputc(0, file); fclose(file); }
    expect_open_fails(path_of("trailing.npy"), NULL, 0, EMB_ERROR_INVALID_FILE, "after the table's data", "a trailing byte");
    header[1] = 'X';
    write_file(path_of("magic.npy"), header, length, data, sizeof data);
    expect_open_fails(path_of("magic.npy"), NULL, 0, EMB_ERROR_INVALID_FILE, "magic", "a wrong magic string");
    write_file(path_of("short.npy"), header, 5, NULL, 0);
    expect_open_fails(path_of("short.npy"), NULL, 0, EMB_ERROR_INVALID_FILE, "magic", "a 5-byte file");
    write_file(path_of("empty.safetensors"), "", 0, NULL, 0);
    expect_open_fails(path_of("empty.safetensors"), NULL, 0, EMB_ERROR_INVALID_FILE, "shorter than the 8-byte header length", "an empty .safetensors");
    length = npy_header(header, "<i8", 2, 3);
    write_file(path_of("int64.npy"), header, length, data, sizeof data);
    expect_open_fails(path_of("int64.npy"), NULL, 0, EMB_ERROR_INVALID_FILE, "'<i8' is not supported", "an int64 table");
    static const char not_json[] = "\x05\0\0\0\0\0\0\0{abc}";
    write_file(path_of("bad.safetensors"), not_json, sizeof not_json - 1, NULL, 0);
    expect_open_fails(path_of("bad.safetensors"), NULL, 0, EMB_ERROR_INVALID_FILE, "not valid JSON", "a header that is not JSON");
    length = safetensors_header(header, "F32", 2, 3, 4);
    header[8 + 3] = 'X'; /* "weight" -> "weXght" */
    write_file(path_of("named.safetensors"), header, length, data, sizeof data);
    expect_open_fails(path_of("named.safetensors"), "weight", 0, EMB_ERROR_INVALID_FILE, "no tensor named 'weight'", "a missing tensor name");
    expect_open_fails(path_of("missing.npy"), NULL, 0, EMB_ERROR_IO, "missing.npy", "a missing file");
    expect_open_fails(directory, NULL, 0, EMB_ERROR_IO, NULL, "a directory");

    length = npy_header(header, "<f4", 2, 3);
    write_file(path_of("good.npy"), header, length, data, sizeof data);
    expect_open_fails(path_of("good.npy"), NULL, 2, EMB_ERROR_INVALID_ARGUMENT, "writable is 2", "writable = 2");
    expect_open_fails(path_of("good.npy"), "weight", 0, EMB_ERROR_INVALID_ARGUMENT, ".npy files hold one unnamed table", "a name for .npy");
    expect_open_fails(NULL, NULL, 0, EMB_ERROR_NULL_POINTER, "path is NULL", "path NULL");
    int32_t status = emb_table_open(path_of("good.npy"), 0, NULL, NULL);
    check(status == EMB_ERROR_NULL_POINTER && strstr(emb_last_error(), "table is NULL") != NULL, "table NULL -> EMB_ERROR_NULL_POINTER");

    emb_table_info info;
    check(emb_table_get_info(NULL, &info) == EMB_ERROR_NULL_POINTER, "emb_table_get_info(NULL) -> EMB_ERROR_NULL_POINTER");
    check(emb_table_flush(NULL) == EMB_ERROR_NULL_POINTER, "emb_table_flush(NULL) -> EMB_ERROR_NULL_POINTER");
    check(emb_table_close(NULL) == EMB_OK, "emb_table_close(NULL) -> EMB_OK");
    int64_t not_a_table[2] = { 42, 0 };
    check(emb_table_get_info((const emb_table*)not_a_table, &info) == EMB_ERROR_INVALID_ARGUMENT && has_message(),
          "a pointer that is not a table -> EMB_ERROR_INVALID_ARGUMENT");
    emb_table* table = NULL;
    if (emb_table_open(path_of("good.npy"), 0, NULL, &table) == EMB_OK) {
        check(emb_table_get_info(table, NULL) == EMB_ERROR_NULL_POINTER, "info NULL -> EMB_ERROR_NULL_POINTER");
        emb_table_close(table);
    }
}

static const char* const files[] = {
    "t.npy", "t.safetensors", "F64.safetensors", "F16.safetensors", "BF16.safetensors", "U8.safetensors", "packed.npy",
    "w.npy", "truncated.npy", "trailing.npy", "magic.npy", "short.npy", "empty.safetensors", "int64.npy",
    "bad.safetensors", "named.safetensors", "good.npy",
};

int main(void)
{
    /* emb_table_info's layout, as the library's EmbTableInfo declares it (64-bit targets). */
    check(sizeof(void*) != 8 || (sizeof(emb_table_info) == 40 && offsetof(emb_table_info, num_embeddings) == 8
          && offsetof(emb_table_info, embedding_dim) == 16 && offsetof(emb_table_info, dtype) == 24
          && offsetof(emb_table_info, writable) == 28 && offsetof(emb_table_info, data_offset) == 32),
          "emb_table_info is 40 bytes: data 0, num_embeddings 8, embedding_dim 16, dtype 24, writable 28, data_offset 32");
    if (mkdtemp(directory) == NULL) {
        perror("mkdtemp");
        return 2;
    }
    test_float32_files();
    test_other_types();
    test_packed_table();
    test_writable();
    test_sparse_table();
    test_bad_files();
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) unlink(path_of(files[i]));
    rmdir(directory);
    return finish();
}
