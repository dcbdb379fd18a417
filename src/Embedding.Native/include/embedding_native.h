/*
 * embedding_native.h — torch.nn.Embedding, exact, as a C library.
 *
 * One header, C99, no dependencies beyond <stddef.h> and <stdint.h>.
 *
 * CONVENTIONS
 *   - Every operation returns an emb_status (int32_t); 0 is success. After a failure,
 *     emb_last_error() returns a readable message for the calling thread.
 *   - Buffers belong to the caller. The library never frees what it did not allocate and never
 *     keeps a pointer after a call returns. Outputs are caller-allocated; nothing is written to
 *     them when a call fails.
 *   - No output, array or single count (nnz, num_rows, num_bags), may overlap an input or another
 *     output: such a call fails with EMB_ERROR_INVALID_ARGUMENT, naming both, and writes nothing.
 *   - Shapes and counts are int64_t. A pointer may be NULL only where the buffer it names is
 *     empty (zero elements); every product of sizes is checked for overflow.
 *   - Element types are passed explicitly as emb_dtype values.
 *
 * THREADING
 *   All functions are reentrant. Calls that only read a table (emb_embedding) may run on many
 *   threads at once over the same table. The last-error message is per thread. By default every
 *   call runs on the calling thread only. After emb_set_num_threads(n) with n > 1 the library
 *   starts persistent worker threads (n - 1, once) that block when idle and never spin; a large
 *   call then splits its work over the caller and up to n - 1 workers, with results bit-identical
 *   to one thread. Small calls stay on the calling thread.
 *
 * VERSIONING
 *   EMB_VERSION_* describe this header; emb_version_number() the loaded library. They must
 *   agree in the major version: a major bump breaks the ABI; within a major version functions are
 *   only added, and the emb_status and emb_dtype values below never change.
 */
#ifndef EMBEDDING_NATIVE_H
#define EMBEDDING_NATIVE_H

#include <stddef.h>
#include <stdint.h>

#if defined(_WIN32)
#  if defined(EMB_BUILDING_LIBRARY)
#    define EMB_API __declspec(dllexport)
#  else
#    define EMB_API __declspec(dllimport)
#  endif
#else
#  define EMB_API __attribute__((visibility("default")))
#endif

#ifdef __cplusplus
extern "C" {
#endif

#define EMB_VERSION_MAJOR 0
#define EMB_VERSION_MINOR 1
#define EMB_VERSION_PATCH 0
/* MAJOR * 10000 + MINOR * 100 + PATCH, as returned by emb_version_number(). */
#define EMB_VERSION_NUMBER (EMB_VERSION_MAJOR * 10000 + EMB_VERSION_MINOR * 100 + EMB_VERSION_PATCH)

/* Status codes. Values are stable. */
typedef enum emb_status {
    EMB_OK = 0,
    EMB_ERROR_INVALID_ARGUMENT = 1,   /* a size is negative, or an output overlaps an input */
    EMB_ERROR_NULL_POINTER = 2,       /* a non-empty buffer was passed as NULL */
    EMB_ERROR_SIZE_OVERFLOW = 3,      /* a product of sizes does not fit in memory addresses, or a
                                         row is longer than INT32_MAX elements */
    EMB_ERROR_INDEX_OUT_OF_RANGE = 4, /* an index or padding_idx is outside the table */
    EMB_ERROR_UNSUPPORTED_DTYPE = 5,  /* an emb_dtype value that is unknown or not supported for this argument */
    EMB_ERROR_BUFFER_TOO_SMALL = 6,   /* an output holds fewer elements than the result */
    EMB_ERROR_NOT_SUPPORTED = 7,      /* a valid request this version does not implement */
    EMB_ERROR_INVALID_FILE = 8,       /* a table file is malformed or holds no usable table (emb_table_open) */
    EMB_ERROR_IO = 9,                 /* the system could not open, map or flush a file */
    EMB_ERROR_INTERNAL = 100          /* a bug: please report it with emb_last_error() */
} emb_status;

/* Element types. Values are stable. */
typedef enum emb_dtype {
    EMB_DTYPE_FLOAT32 = 1,
    EMB_DTYPE_FLOAT64 = 2,
    EMB_DTYPE_FLOAT16 = 3,
    EMB_DTYPE_BFLOAT16 = 4,
    EMB_DTYPE_INT32 = 5,
    EMB_DTYPE_INT64 = 6,
    EMB_DTYPE_UINT8 = 7     /* bytes: packed quantized rows in a table file (emb_table_get_info) */
} emb_dtype;

/* Instruction-set tiers, as reported by emb_isa_tier() and emb_cpu_tier(). Values are stable. */
typedef enum emb_isa {
    EMB_ISA_GENERIC = 0,     /* no vector tier known (or not an x86-64/ARM64 build) */
    EMB_ISA_X86_64_V2 = 2,   /* SSE4.2, POPCNT: Vector128 kernels */
    EMB_ISA_X86_64_V3 = 3,   /* AVX2, FMA, BMI2: Vector256 kernels */
    EMB_ISA_X86_64_V4 = 4,   /* AVX-512 F/BW/CD/DQ/VL: Vector512 kernels */
    EMB_ISA_ARM64_NEON = 64  /* AdvSimd: Vector128 kernels */
} emb_isa;

/* ---- Library information ------------------------------------------------------------------ */

/* The loaded library's version, MAJOR * 10000 + MINOR * 100 + PATCH. Compare with
 * EMB_VERSION_NUMBER at load time. Thread-safe. */
EMB_API int32_t emb_version_number(void);

/* The version as "MAJOR.MINOR.PATCH". Static string: do not free. Thread-safe. */
EMB_API const char* emb_version_string(void);

/* The tier this library binary was compiled for (an emb_isa value). Thread-safe. */
EMB_API int32_t emb_isa_tier(void);

/* The best tier the running CPU and operating system support: on x86-64 the CPUID feature bits
 * of each psABI level plus, for AVX and AVX-512, the XCR0 register-state bits (XGETBV) that say
 * the OS saves those registers: the same test the .NET runtime makes when a NativeAOT build
 * starts, so every build of a tier up to this one starts here. /proc/cpuinfo is not consulted
 * (some kernels omit flags, such as abm, that the CPU has). Under qemu-user the answer is the
 * emulated CPU's. Safe to call from any tier's build, including the baseline x86-64-v2 build, so
 * a loader can ask it before choosing which tier to load. Thread-safe. */
EMB_API int32_t emb_cpu_tier(void);

/* What keeps the running CPU and OS from running `tier` (an emb_isa value), in words, or "" when
 * nothing does: the missing CPUID features ("AVX512F, AVX512BW (CPUID)") or the register state
 * the OS has not enabled ("the OS has not enabled the AVX-512 (opmask, ZMM) register state
 * (XCR0 = 0x7, ...)"). emb_cpu_missing(t)[0] == '\0' exactly when emb_cpu_tier() >= t (for the
 * x86-64 tiers). Static string: do not free. Thread-safe. */
EMB_API const char* emb_cpu_missing(int32_t tier);

/* A JSON object describing the build: version, tier name, vector width in bits, runtime,
 * "dtypes" (the table types every operation takes), "table_dtypes" (per operation: "embedding",
 * "embedding_backward", "renorm", "embedding_bag", "embedding_bag_backward", "optimizers"), the
 * index dtypes and the specialised embedding dimensions. Static string: do not free. */
EMB_API const char* emb_build_info(void);

/* Sets how many threads one call may use, process-wide: 1 (the default) runs every call on the
 * calling thread. With n > 1 the library starts n - 1 persistent worker threads (they block
 * when idle, never spin) and splits large calls over the caller and the workers: gathers and
 * bag forwards by output row, dense backwards by destination row, sparse backwards by position,
 * renorm and optimizer steps by row. Results are bit-identical for every n. Calls moving less
 * than about 256 KiB per thread stay on the calling thread. Concurrent calls from several
 * threads share the workers (one parallel call at a time; the others wait).
 * THREADING: safe to call at any time; calls already running keep the count they started with.
 * @return EMB_OK, or EMB_ERROR_INVALID_ARGUMENT when num_threads is outside [1, 1024]. */
EMB_API int32_t emb_set_num_threads(int32_t num_threads);

/* The thread count set by emb_set_num_threads (1 until it is called). Thread-safe. */
EMB_API int32_t emb_get_num_threads(void);

/* ---- Errors -------------------------------------------------------------------------------- */

/* A short English name for a status code ("EMB_ERROR_NULL_POINTER", ...), or "unknown status".
 * Static string: do not free. Thread-safe. */
EMB_API const char* emb_status_string(int32_t status);

/* The message explaining the latest failed call on this thread, or "" if none failed yet.
 * UTF-8, owned by the library, valid until the next failing call on the same thread. */
EMB_API const char* emb_last_error(void);

/* Where the latest failed call on this thread found a bad index, for callers that word their own
 * message (the Python package builds torch's text from it without reading the indices again).
 *
 * The latest failure counts only if it was EMB_ERROR_INDEX_OUT_OF_RANGE for an element of an index
 * array: indices, bags->indices, or rows (emb_sparse_coalesce and the optimizer steps). An
 * out-of-range padding_idx or max_indices element, and every other status, do not count.
 *
 * @param position  out, may be NULL: the element's position (flattened, 0-based).
 * @param value     out, may be NULL: its value.
 * @return 1 if the latest failure was such an index (outputs written), else 0 (nothing written).
 *         Never fails and never changes emb_last_error(). Thread-safe (per-thread state). */
EMB_API int32_t emb_last_index_error(int64_t* position, int64_t* value);

/* ---- Embedding forward --------------------------------------------------------------------- */

/* Normalises a padding index as torch.nn.Embedding does: a negative value counts from the end
 * (-1 is the last row); zero is always accepted.
 *
 *   if padding_idx > 0: require padding_idx <  num_embeddings
 *   if padding_idx < 0: require padding_idx >= -num_embeddings; padding_idx += num_embeddings
 *
 * @param normalized  out, not NULL: the row index.
 * @return EMB_OK, EMB_ERROR_INDEX_OUT_OF_RANGE ("Padding_idx must be within num_embeddings"),
 *         EMB_ERROR_INVALID_ARGUMENT (num_embeddings < 0), EMB_ERROR_NULL_POINTER. */
EMB_API int32_t emb_padding_idx_normalize(int64_t padding_idx, int64_t num_embeddings, int64_t* normalized);

/* Looks up rows of a table: torch.nn.functional.embedding(indices, weight).
 *
 *   D = embedding_dim
 *   for i in 0 .. num_indices-1:
 *       require 0 <= indices[i] < num_embeddings          (else fails, nothing written)
 *       out[i*D .. i*D+D-1] = weight[indices[i]*D .. indices[i]*D+D-1]
 *
 * Values are copied bit for bit. The padding row (if any) is returned as stored: padding_idx
 * only affects gradients, so it is not an argument here.
 *
 * @param weight          in: row-major [num_embeddings, embedding_dim] table of weight_dtype;
 *                        NULL only if it has no elements.
 * @param weight_dtype    EMB_DTYPE_FLOAT32, _FLOAT64, _FLOAT16 or _BFLOAT16 (16-bit elements are
 *                        stored as their raw 16 bits; others: EMB_ERROR_UNSUPPORTED_DTYPE).
 * @param embedding_dim   0 … INT32_MAX (larger: EMB_ERROR_SIZE_OVERFLOW).
 * @param indices         in: num_indices values of index_dtype; NULL only if num_indices == 0.
 * @param index_dtype     EMB_DTYPE_INT32 or EMB_DTYPE_INT64.
 * @param out             out: receives num_indices * embedding_dim elements of weight_dtype;
 *                        must not overlap weight or indices; NULL only if that product is 0.
 * @param out_capacity    elements available at out; at least num_indices * embedding_dim.
 * @return EMB_OK; EMB_ERROR_INDEX_OUT_OF_RANGE naming the position, the value and the valid
 *         range; or a validation error. On failure nothing is written.
 * Thread-safe: yes, for concurrent calls that share weight and indices. */
EMB_API int32_t emb_embedding(
    const void* weight, int32_t weight_dtype, int64_t num_embeddings, int64_t embedding_dim,
    const void* indices, int32_t index_dtype, int64_t num_indices,
    void* out, int64_t out_capacity);

/* ---- Training: backward, renormalisation, fused optimizer steps ---------------------------- */

/* Marks "no padding row" where a normalised padding_idx is expected (torch uses -1 too). */
#define EMB_NO_PADDING (-1)

/* Flags for the backward functions; combine with |. */
#define EMB_SCALE_GRAD_BY_FREQ 1  /* divide each contribution by its index's count in the call */
#define EMB_ACCUMULATE 2          /* dense only: add into grad_weight instead of overwriting it */

/* Dense gradient of the embedding forward: torch's embedding_dense_backward.
 *
 *   D = embedding_dim;  c[k] = number of positions i with indices[i] == k   (whole call)
 *   if !(flags & EMB_ACCUMULATE): grad_weight[:] = +0.0
 *   for i in 0 .. num_indices-1, in position order:
 *       k = indices[i]; if k == padding_idx: continue
 *       if flags & EMB_SCALE_GRAD_BY_FREQ: grad_weight[k] = fma(grad_output[i], fl(1/c[k]), grad_weight[k])
 *       else:                              grad_weight[k] = grad_weight[k] + grad_output[i]
 *
 * Each row accumulates in position order, as torch does, so results are bit-identical to torch
 * 1.13 and to every ISA tier and thread count. Indices are validated before anything is written.
 * The gradient has the table's dtype, grad_dtype (torch's autograd casts grad_output to it).
 * fl(1/c) is 1.0 / c computed in double and converted as c10 converts a double: float32 rounds
 * once, float64 keeps it, float16 and bfloat16 round to float and then to the type. rd(x) below
 * rounds a float to the 16-bit type (nearest, ties to even).
 *   float32, float64:  as above (the fma rounds once).
 *   float16:  acc = rd(acc + g); with EMB_SCALE_GRAD_BY_FREQ acc = rd(acc + rd(g * fl(1/c))).
 *   bfloat16: acc = rd(acc + g); with EMB_SCALE_GRAD_BY_FREQ acc = rd(fma_f32(g, fl(1/c), acc)) in
 *             columns below D - D % 32 (torch's vector kernel) and rd(acc + rd(g * fl(1/c))) in
 *             the last D % 32 columns (its scalar kernel).
 *
 * @param grad_output   in: [num_indices, embedding_dim] of grad_dtype.
 * @param grad_dtype    EMB_DTYPE_FLOAT32, _FLOAT64, _FLOAT16 or _BFLOAT16 (16-bit elements are
 *                      their raw 16 bits); others: EMB_ERROR_UNSUPPORTED_DTYPE.
 * @param indices       in: num_indices values of index_dtype (INT32 or INT64).
 * @param padding_idx   a normalised row in [0, num_embeddings), or EMB_NO_PADDING.
 * @param grad_weight   in/out: [num_embeddings, embedding_dim] of grad_dtype; must not overlap the inputs.
 * @param grad_weight_capacity  elements available at grad_weight (>= num_embeddings * embedding_dim).
 * @param flags         EMB_SCALE_GRAD_BY_FREQ | EMB_ACCUMULATE; other bits: EMB_ERROR_INVALID_ARGUMENT.
 *                      With EMB_SCALE_GRAD_BY_FREQ, num_embeddings and num_indices above
 *                      2147483591 give EMB_ERROR_NOT_SUPPORTED.
 * @return EMB_OK; EMB_ERROR_INDEX_OUT_OF_RANGE for an index or padding_idx outside the table; or a
 *         validation error. On failure grad_weight is unchanged.
 * Thread-safe for distinct grad_weight buffers. */
EMB_API int32_t emb_embedding_backward(
    const void* grad_output, int32_t grad_dtype, int64_t num_indices, int64_t embedding_dim,
    const void* indices, int32_t index_dtype, int64_t num_embeddings, int64_t padding_idx,
    int32_t flags, void* grad_weight, int64_t grad_weight_capacity);

/* Sparse gradient in torch's layout (sparse_coo, uncoalesced): one entry per non-padding
 * position, in position order; values are the grad_output rows (scaled by fl(1/c[k]) with
 * EMB_SCALE_GRAD_BY_FREQ, which torch itself refuses for sparse gradients).
 *
 *   n = 0
 *   for i in 0 .. num_indices-1: if indices[i] != padding_idx:
 *       out_rows[n] = indices[i]; out_values[n] = grad_output[i] (* fl(1/c)); n += 1
 *   *nnz = n
 *
 * Values have grad_dtype (float32, float64, float16 or bfloat16; others:
 * EMB_ERROR_UNSUPPORTED_DTYPE) and are copied bit for bit; scaled, each is rd(g * fl(1/c)),
 * one rounding in the type, with fl(1/c) as for emb_embedding_backward.
 *
 * @param flags         0 or EMB_SCALE_GRAD_BY_FREQ; EMB_ACCUMULATE (dense only) or other bits:
 *                      EMB_ERROR_INVALID_ARGUMENT.
 * @param out_rows      out: int64, capacity entries (num_indices always suffices).
 * @param out_values    out: [capacity, embedding_dim] of grad_dtype.
 * @param nnz           out, not NULL: entries written. No output (nnz included) may overlap another
 *                      output or an input.
 * @return EMB_OK; EMB_ERROR_BUFFER_TOO_SMALL when capacity < the number of non-padding positions;
 *         EMB_ERROR_INDEX_OUT_OF_RANGE; or a validation error. On failure nothing is written. */
EMB_API int32_t emb_embedding_backward_sparse(
    const void* grad_output, int32_t grad_dtype, int64_t num_indices, int64_t embedding_dim,
    const void* indices, int32_t index_dtype, int64_t num_embeddings, int64_t padding_idx,
    int32_t flags, int64_t* out_rows, void* out_values, int64_t capacity, int64_t* nnz);

/* Coalesces a sparse gradient: unique rows in ascending order, each with the sum of its values
 * taken in entry order (starting from +0.0). This is the form the optimizer steps take.
 *
 * Each add is one rounding in values_dtype: acc = rd(acc + v) (float16 and bfloat16 add in
 * float and round back). Coalescing emb_embedding_backward_sparse's unscaled output therefore
 * gives the non-zero rows of emb_embedding_backward, bit for bit, in every dtype. torch's
 * coalesce() sums in the order of its unstable sort (entry order up to 16 entries per call) and
 * copies a row's first entry rather than adding it to +0.0 (a lone -0.0 stays -0.0 there).
 *
 * @param rows, values  in: nnz entries, rows in [0, num_embeddings), values [nnz, embedding_dim]
 *                      of values_dtype.
 * @param values_dtype  EMB_DTYPE_FLOAT32, _FLOAT64, _FLOAT16 or _BFLOAT16; others:
 *                      EMB_ERROR_UNSUPPORTED_DTYPE.
 * @param out_rows      out: int64, capacity entries (nnz always suffices).
 * @param out_values    out: [capacity, embedding_dim] of values_dtype.
 * @param num_rows      out, not NULL: unique rows written. No output (num_rows included) may overlap
 *                      another output or an input.
 * @return EMB_OK; EMB_ERROR_BUFFER_TOO_SMALL when capacity < the number of distinct rows;
 *         EMB_ERROR_INDEX_OUT_OF_RANGE; EMB_ERROR_NOT_SUPPORTED when num_embeddings or nnz exceeds
 *         2147483591 (the per-row scratch); or a validation error. On failure nothing is written. */
EMB_API int32_t emb_sparse_coalesce(
    const int64_t* rows, const void* values, int32_t values_dtype, int64_t nnz,
    int64_t embedding_dim, int64_t num_embeddings,
    int64_t* out_rows, void* out_values, int64_t capacity, int64_t* num_rows);

/* torch.embedding_renorm_: rescales, in place, each distinct row that indices reference and whose
 * p-norm exceeds max_norm (the step F.embedding(..., max_norm=...) runs before its gather).
 *
 *   require 0 <= indices[i] < num_embeddings for every i       (else nothing changes)
 *   for each distinct k in indices, ascending:
 *       n = ||weight[k]||_p, computed per weight_dtype as below
 *       if n > max_norm:                                        (strict, in double)
 *           s = rd(max_norm / (n + 1e-7))                        (the quotient in double)
 *           weight[k][c] = rd(weight[k][c] * s)                  (one rounding)
 *
 * rd(x) rounds to weight_dtype (to nearest, ties to even; from double to float16/bfloat16 through
 * float, as torch converts). p = (float)norm_type for every dtype, as torch 1.13 hands its norm a
 * float and that value picks the norm (2.0000001 is the 2-norm, 1e-50 the count). p = +inf: max|x|,
 * p = -inf: min|x| (exact, every dtype). Otherwise torch 1.13's norm exactly:
 *
 *   FLOAT32  acc = 0.0f, columns in order: p = 0: acc += (x != 0); p = 1: acc += |x|; other p
 *            (negative and fractional too): acc += powf(|x|, p), n = powf(acc, 1.0f / p).
 *            p = 2: L float lanes (8; 16 with torch's AVX-512 kernels), lane[c % L] += x*x over the
 *            whole blocks of L columns, lanes summed left to right, then s += x*x for the last D % L
 *            columns in order, n = sqrtf(s). With torch's FMA kernels (AVX2, AVX-512) each x*x is
 *            fused into its add (fmaf), except that when L/2 or more columns are left after the
 *            blocks, the first L/2 of them add a rounded x*x; with its default kernels none is fused.
 *            The kernels are torch's choice in this process, not the library's ISA tier:
 *            ATEN_CPU_CAPABILITY when it is exactly avx512, avx2 or default, else AVX2 on a CPU with
 *            AVX2 and FMA (and the OS's YMM state), else default.
 *   FLOAT64  acc = 0.0, columns in order; p = 0: acc += (x != 0);
 *            p = 1: acc += |x|; p = 2: acc = fma(x, x, acc) (acc += rd(x*x) with torch's default
 *            kernels), n = sqrt(acc); other p: acc += pow(|x|, p), n = pow(acc, 1/p).
 *   FLOAT16, BFLOAT16  torch 1.13's norm exactly: acc is a value of the dtype, each step computed in
 *            float and rounded: p = 0: acc = rd(acc + (x != 0)) (bfloat16 stops counting at 256,
 *            float16 at 2048); p = 1: acc = rd(acc + |x|);
 *            p = 2, float16: acc = rd(acc + rd(x*x)), n = rd(sqrtf(acc));
 *            p = 2, bfloat16: eight float lanes, lane[c % 8] = fmaf(x, x, lane) over the columns of
 *                whole blocks of 16, lanes summed left to right in float, then s = fmaf(x, x, s) for
 *                the last D % 16 columns, n = rd(sqrtf(s)) (torch's AVX2 kernel layout);
 *            other p: q = rd(p); float16 acc = rd(acc + powf(|x|, q)), bfloat16 acc = rd(acc +
 *                rd(powf(|x|, q))); n = rd(powf(acc, rd(1/q))).
 *            The products weight * s of two 16-bit values are exact in float, so the store rounds once.
 *   pow/powf are the C library's, as torch's; sqrt and fma are correctly rounded.
 *   Every dtype's result is torch's bit for bit.
 *
 * Like torch, max_norm and norm_type are not validated: max_norm 0 zeroes every referenced row with
 * a non-zero norm, a negative max_norm flips the row's sign; a row whose norm is NaN is unchanged.
 * Every dtype gives the same bits on every ISA tier and thread count.
 * Differences from torch 1.13:
 *   - A NaN product is stored as the dtype's default quiet NaN (bfloat16 0x7FC0; torch's vectorised
 *     bfloat16 multiply may store 0xFFFF).
 *   - Every index is validated before any row changes (torch renormalises the rows sorted before
 *     a bad index, and wraps negative ones, before it fails).
 *
 * @param weight       in/out: [num_embeddings, embedding_dim] of weight_dtype.
 * @param weight_dtype EMB_DTYPE_FLOAT32, _FLOAT64, _FLOAT16 or _BFLOAT16 (16-bit elements are stored
 *                     as their raw 16 bits; others: EMB_ERROR_UNSUPPORTED_DTYPE).
 * @param indices      in: num_indices values of index_dtype (INT32 or INT64), duplicates allowed; not
 *                     modified (sorted in a library-owned copy); must not overlap weight.
 *                     num_indices must not exceed 0x7FFFFFC7.
 * @return EMB_OK, EMB_ERROR_INDEX_OUT_OF_RANGE (nothing changed), EMB_ERROR_UNSUPPORTED_DTYPE,
 *         EMB_ERROR_INVALID_ARGUMENT (negative size, overlap), EMB_ERROR_NULL_POINTER,
 *         EMB_ERROR_SIZE_OVERFLOW.
 * Not thread-safe for concurrent calls on the same weight. */
EMB_API int32_t emb_embedding_renorm(
    void* weight, int32_t weight_dtype, int64_t num_embeddings, int64_t embedding_dim,
    const void* indices, int32_t index_dtype, int64_t num_indices,
    double max_norm, double norm_type);

/* emb_embedding_renorm for a table torch sees with strided rows (a column stride other than one
 * element, e.g. weight.t()), renormalised by the caller through a contiguous copy in weight: the
 * arguments, checks and results are emb_embedding_renorm's, except the 2-norm of FLOAT32 and
 * BFLOAT16 rows. torch's row.norm(2) of a strided row is not a last-dimension reduction, so it
 * runs its scalar kernel, columns in order:
 *
 *   FLOAT32   acc = 0.0f; acc = fmaf(x, x, acc) with torch's FMA kernels (AVX2, AVX-512),
 *             acc = acc + rd(x*x) with its default kernels; n = sqrtf(acc)
 *   BFLOAT16  acc = rd(acc + rd(x*x)) in bfloat16 arithmetic; n = rd(sqrtf(acc))
 *
 * (FLOAT64 and FLOAT16 rows, and every other norm, are column sums either way.) */
EMB_API int32_t emb_embedding_renorm_strided_rows(
    void* weight, int32_t weight_dtype, int64_t num_embeddings, int64_t embedding_dim,
    const void* indices, int32_t index_dtype, int64_t num_indices,
    double max_norm, double norm_type);

/* Fused optimizer steps on the rows of a coalesced sparse gradient (unique rows, e.g. from
 * emb_sparse_coalesce); no dense gradient is formed. Only the listed rows of weight and state change.
 *
 * Common to the four functions below:
 *   - weight_dtype is the element type of weight, values and every state buffer alike:
 *     EMB_DTYPE_FLOAT32, _FLOAT64, _FLOAT16 or _BFLOAT16 (any other value:
 *     EMB_ERROR_UNSUPPORTED_DTYPE). Buffer sizes below are in elements of that type.
 *   - rows: num_rows int64 values, strictly ascending and in [0, num_embeddings); all are checked
 *     before anything is written. values: [num_rows, embedding_dim]. Empty buffers may be NULL.
 *   - weight and every state buffer are in/out and must not overlap each other, rows or values.
 *   - Arithmetic per type (torch 1.13's for its sparse paths; docs/table-types.md, "Optimizers"):
 *     float32 as written below; float64 the same formulas in double, with the hyper-parameters
 *     kept as doubles where (float)x is written; float16 and bfloat16 compute every operation in
 *     float and round it to the type (rd below), hyper-parameters converted to float and then to
 *     the type (fl below), and nothing is fused: fma(a, b, c) becomes rd(c + rd(a * b)). Each
 *     function spells its 16-bit form out. fma(a, b, c) is a*b+c rounded once; every other
 *     operation is rounded to the type. Every column is computed independently, so results are
 *     identical on every ISA tier and for every thread count.
 *   - @return EMB_OK; EMB_ERROR_INDEX_OUT_OF_RANGE (a row outside the table);
 *     EMB_ERROR_INVALID_ARGUMENT (rows not strictly ascending, a hyper-parameter torch rejects —
 *     with torch's message, e.g. "Invalid learning rate: -1" — NaN, step < 1, a negative size,
 *     overlapping buffers); EMB_ERROR_NULL_POINTER; EMB_ERROR_SIZE_OVERFLOW;
 *     EMB_ERROR_UNSUPPORTED_DTYPE. Nothing is written on failure.
 *   - Not thread-safe for concurrent calls on the same weight or state. */

/* torch.optim.SGD without momentum; lr >= 0, weight_decay >= 0.
 *
 *   for each j, r = rows[j], g = values[j], each column c:
 *       d = weight_decay != 0 ? fma(w[r][c], (float)weight_decay, g[c]) : g[c]
 *       w[r][c] = fma(d, (float)(-lr), w[r][c])
 *   float16, bfloat16:
 *       d = weight_decay != 0 ? rd(g[c] + rd(w[r][c] * fl(weight_decay))) : g[c]
 *       w[r][c] = rd(w[r][c] + rd(d * fl(-lr)))
 *
 * With weight_decay = 0 this is torch 1.13 bit for bit for all four types (its sparse add is a
 * fused BLAS axpy for float32/float64, c10 arithmetic for float16/bfloat16). torch refuses
 * weight_decay with a sparse gradient and, with a dense one, decays every row of the table; here
 * only the listed rows are decayed (lazy weight decay). */
EMB_API int32_t emb_sgd_step(
    void* weight, int32_t weight_dtype, int64_t num_embeddings, int64_t embedding_dim,
    const int64_t* rows, const void* values, int64_t num_rows,
    double lr, double weight_decay);

/* torch.optim.Adagrad (sparse-gradient path) for step number `step` (1-based: 1 for the first step);
 * lr >= 0, lr_decay >= 0, eps >= 0.
 *
 *   clr = lr / (1 + (step - 1) * lr_decay)                      (double)
 *   for each j, r = rows[j], g = values[j], each column c:
 *       s = state_sum[r][c] + g[c] * g[c];  state_sum[r][c] = s
 *       w[r][c] = fma(g[c] / (sqrt(s) + (float)eps), (float)(-clr), w[r][c])
 *   float16, bfloat16:
 *       s = rd(state_sum[r][c] + rd(g[c] * g[c]));  state_sum[r][c] = s
 *       w[r][c] = rd(w[r][c] + rd(rd(g[c] / rd(rd(sqrt(s)) + fl(eps))) * fl(-clr)))
 *
 * torch 1.13 bit for bit for float32, float64 and bfloat16, given the same coalesced gradient.
 * torch 1.13 refuses float16 here ("sqrt_vml_cpu" not implemented for 'Half'); ours is the
 * bfloat16 formula rounded to half. fl(eps) is 0 in float16 for eps < 2^-25 (the default 1e-10
 * included): a zero gradient on a zero state then gives 0/0 = NaN.
 * @param state_sum  in/out: [num_embeddings, embedding_dim] (torch starts it at
 *                   initial_accumulator_value). */
EMB_API int32_t emb_adagrad_step(
    void* weight, void* state_sum, int32_t weight_dtype, int64_t num_embeddings, int64_t embedding_dim,
    const int64_t* rows, const void* values, int64_t num_rows,
    double lr, double lr_decay, double eps, int64_t step);

/* Row-wise Adagrad (FBGEMM's variant: one accumulator per row); lr >= 0, eps >= 0.
 *
 *   for each j, r = rows[j], g = values[j]:
 *       sum = 0.0 (double); for c in order: sum += (double)g[c] * g[c]
 *       h = momentum[r] + (float)(sum / embedding_dim);  momentum[r] = h
 *       step = (float)lr / (sqrt(h) + (float)eps)                  (float)
 *       for each column c: w[r][c] = fma(g[c], -step, w[r][c])
 *   float16, bfloat16 (the same double sum):
 *       h = rd(momentum[r] + fl(sum / embedding_dim));  momentum[r] = h
 *       step = rd(fl(lr) / rd(rd(sqrt(h)) + fl(eps)))
 *       for each column c: w[r][c] = rd(w[r][c] + rd(g[c] * -step))
 *
 * FBGEMM sums the squares in float over eight interleaved lanes, so float32 results can differ
 * from FBGEMM's by 1 ulp; torch has no counterpart.
 * @param momentum  in/out: [num_embeddings]. */
EMB_API int32_t emb_rowwise_adagrad_step(
    void* weight, void* momentum, int32_t weight_dtype, int64_t num_embeddings, int64_t embedding_dim,
    const int64_t* rows, const void* values, int64_t num_rows,
    double lr, double eps);

/* torch.optim.SparseAdam for step number `step` (1-based); lr > 0, eps > 0, 0 <= beta1, beta2 < 1.
 *
 *   step_size = lr * sqrt(1 - pow(beta2, step)) / (1 - pow(beta1, step))     (double, this order)
 *   for each j, r = rows[j], g = values[j], each column c:
 *       m = m[r][c] + (g[c] - m[r][c]) * (float)(1 - beta1);           exp_avg[r][c] = m
 *       v = v[r][c] + (g[c] * g[c] - v[r][c]) * (float)(1 - beta2);    exp_avg_sq[r][c] = v
 *       w[r][c] = w[r][c] + (m / (sqrt(v) + (float)eps)) * (float)(-step_size)
 *   float16, bfloat16: the same operations, each rounded with rd, the constants fl(1 - beta1),
 *       fl(1 - beta2), fl(eps), fl(-step_size), and sqrt(v) rounded before eps is added.
 *
 * No operation is fused; torch 1.13 bit for bit for float32, float64 and bfloat16, given the
 * same coalesced gradient. torch 1.13 refuses float16 here ("sqrt_vml_cpu" not implemented for
 * 'Half'); ours is the bfloat16 formula rounded to half (fl(eps) is 0 for eps < 2^-25).
 * @param exp_avg, exp_avg_sq  in/out: [num_embeddings, embedding_dim]. */
EMB_API int32_t emb_sparse_adam_step(
    void* weight, void* exp_avg, void* exp_avg_sq, int32_t weight_dtype,
    int64_t num_embeddings, int64_t embedding_dim,
    const int64_t* rows, const void* values, int64_t num_rows,
    double lr, double beta1, double beta2, double eps, int64_t step);

/* ---- EmbeddingBag ---------------------------------------------------------------------------- */

/* Reduction modes; values match torch's mode numbering and are stable. */
typedef enum emb_bag_mode {
    EMB_BAG_SUM = 0,
    EMB_BAG_MEAN = 1,
    EMB_BAG_MAX = 2
} emb_bag_mode;

/* Which positions form which bag, plus the per-position options. Fill every field.
 *
 * Bag b covers positions [start(b), start(b+1)):
 *   bag_size == 0, include_last_offset == 0:  num_offsets bags; start(b) = offsets[b],
 *                                             start(num_offsets) = num_indices
 *   bag_size == 0, include_last_offset != 0:  num_offsets - 1 bags; offsets[num_offsets-1]
 *                                             must equal num_indices (CSR)
 *   bag_size > 0:                             fixed-size bags (a 2-D input): num_indices / bag_size
 *                                             bags of bag_size positions; bag_size must divide
 *                                             num_indices; offsets NULL, num_offsets 0
 * The struct is an input like the buffers it names: no output of a call may overlap either.
 * Offsets must start at 0, never decrease and never exceed num_indices (torch 1.13 accepts some
 * malformed offsets and then crashes or returns garbage; see docs/divergences.md). Zero offsets
 * without include_last_offset mean zero bags. */
typedef struct emb_bags {
    const void* indices;              /* num_indices values of index_dtype */
    int64_t num_indices;
    int32_t index_dtype;              /* EMB_DTYPE_INT32 or EMB_DTYPE_INT64 */
    int32_t offsets_dtype;            /* EMB_DTYPE_INT32 or EMB_DTYPE_INT64 (when num_offsets > 0) */
    const void* offsets;              /* num_offsets values; NULL when num_offsets is 0 */
    int64_t num_offsets;
    int64_t bag_size;                 /* > 0: fixed-size bags of this many positions; 0: use offsets */
    int32_t include_last_offset;      /* 0 or 1 */
    int32_t reserved;                 /* must be 0 */
    const void* per_sample_weights;   /* NULL, or num_indices weights in the table's dtype (sum mode only;
                                         float32 for the backward functions) */
    int64_t padding_idx;              /* a normalised row, or EMB_NO_PADDING: its positions count for nothing */
} emb_bags;

/* The number of bags `bags` describes, after validating its layout (not its index values).
 * @param num_bags  out, not NULL; must not overlap *bags or the buffers it names (the check
 *                  measures per_sample_weights as float32: the count has no weight type). */
EMB_API int32_t emb_embedding_bag_count(const emb_bags* bags, int64_t* num_bags);

/* torch.nn.functional.embedding_bag forward for a float32, float64 or float16 table.
 *
 *   for each bag b:  P = its positions i with indices[i] != padding_idx, in order
 *     sum:   out[b] = +0.0; for i in P: out[b] += weight[indices[i]]
 *            with per_sample_weights w: out[b] = fma(weight[indices[i]], w[i], out[b]) when padding_idx is
 *            EMB_NO_PADDING, else out[b] + fl(weight[indices[i]] * w[i]) (torch 1.13 rounds once on its
 *            fast path and twice on its padding path; both are reproduced bit for bit)
 *     mean:  the sum above, then out[b] /= max(|P|, 1)                        (a true division)
 *     max:   out[b][d] = the first maximum over i in P of weight[indices[i]][d] (strictly greater
 *            replaces; NaN only if first); max_indices[b][d] = the row it came from
 *     a bag with P empty gives +0.0 in every mode (max_indices -1)
 *
 *   per table dtype (weight_dtype; out and bags->per_sample_weights have the same dtype):
 *     EMB_DTYPE_FLOAT32  as above.
 *     EMB_DTYPE_FLOAT64  in double; a weighted sum is always out[b] + fl(weight * w[i]) (two
 *                        roundings, with or without padding_idx, as torch 1.13).
 *     EMB_DTYPE_FLOAT16  sums in a float32 accumulator, acc += float(weight) * float(w[i]) (the
 *                        product is exact), rounded to half once per bag; mean is
 *                        half(float(half(acc)) / max(|P|, 1)); max compares the values as float and
 *                        stores the winning row's half unchanged.
 *     EMB_DTYPE_BFLOAT16 EMB_ERROR_UNSUPPORTED_DTYPE: torch 1.13 has no bfloat16 EmbeddingBag on the
 *                        CPU ("Expected tensor for argument #1 'weight' to have one of the following
 *                        scalar types: Half, Float, Double; but got CPUBFloat16Type instead").
 *   torch also refuses per_sample_weights of another dtype than the weight's; here they are read
 *   in weight_dtype, so a caller holding them in another dtype must refuse the call itself.
 *
 * Each column accumulates over the bag in position order, so every mode is bit-identical to
 * torch 1.13 and across ISA tiers. Every index is validated before anything is written.
 *
 * @param weight_dtype    EMB_DTYPE_FLOAT32, _FLOAT64 or _FLOAT16 (bfloat16 and the rest:
 *                        EMB_ERROR_UNSUPPORTED_DTYPE, nothing written).
 * @param out             out: [num_bags, embedding_dim] of weight_dtype; out_capacity elements available.
 * @param max_indices     out: [num_bags, embedding_dim] int64 for EMB_BAG_MAX (needed by the max
 *                        backward); max_indices_capacity elements available. NULL in max mode asks
 *                        for the values only (no arg-max is tracked: faster, same out); ignored and
 *                        may be NULL in the other modes.
 * Thread-safe for concurrent calls sharing weight and bags. */
EMB_API int32_t emb_embedding_bag(
    const void* weight, int32_t weight_dtype, int64_t num_embeddings, int64_t embedding_dim,
    const emb_bags* bags, int32_t mode,
    void* out, int64_t out_capacity, int64_t* max_indices, int64_t max_indices_capacity);

/* Dense gradient of emb_embedding_bag with respect to the table.
 *
 *   P_b = the positions of bag b whose index is not padding_idx;  c[k] = occurrences of k in
 *   bags->indices (whole call, padding included)
 *   if !(flags & EMB_ACCUMULATE): grad_weight[:] = +0.0
 *   sum/mean: for i in every position (padding included), in the order torch's unstable sort of
 *             the indices leaves them (libstdc++ std::sort of (indices[i], i) by value), if
 *             indices[i] != padding_idx, with b = the bag of i:
 *               s = w_i (or 1), in double; with EMB_SCALE_GRAD_BY_FREQ s /= c[indices[i]];
 *               mean: s /= |P_b|;  grad_weight[indices[i]] = fma(grad_output[b], (float)s, grad_weight[indices[i]])
 *   max:      for each bag b with P_b non-empty, in bag order, each column d:
 *               grad_weight[max_indices[b][d]][d] += grad_output[b][d]
 *
 * Bit-identical to torch 1.13 in every mode: its sort is reproduced step for step, so duplicate
 * rows are summed in its order. Every ISA tier and thread count gives the same bits.
 * EMB_SCALE_GRAD_BY_FREQ uses each row's own count, as torch documents (torch <= 2.13 divides by
 * a neighbour's count; docs/divergences.md). Indices and max indices are validated before
 * anything is written.
 *
 * @param grad_output  in: [num_bags, embedding_dim] float32 (grad_dtype EMB_DTYPE_FLOAT32).
 * @param bags         in, not NULL: the forward's bags, per-sample weights and padding_idx
 *                     (weights only with EMB_BAG_SUM: else EMB_ERROR_NOT_SUPPORTED).
 * @param max_indices  in, EMB_BAG_MAX only (ignored, may be NULL, otherwise): the forward's
 *                     [num_bags, embedding_dim] rows; entries of bags with P_b empty are ignored
 *                     (this library writes -1 there, torch 0), the others must be rows of the table.
 * @param flags        EMB_SCALE_GRAD_BY_FREQ (sum and mean; with EMB_BAG_MAX it is
 *                     EMB_ERROR_INVALID_ARGUMENT, as torch refuses it) | EMB_ACCUMULATE.
 * @param grad_weight  in/out: [num_embeddings, embedding_dim] float32; grad_weight_capacity
 *                     elements available; must not overlap any input.
 * @return EMB_OK; EMB_ERROR_INDEX_OUT_OF_RANGE (an index, a max index — message prefixed
 *         "max_indices: " — or padding_idx); EMB_ERROR_INVALID_ARGUMENT (malformed bags, mode,
 *         flags, overlap); EMB_ERROR_BUFFER_TOO_SMALL; or another validation error. On failure
 *         grad_weight is unchanged.
 * Thread-safe for distinct grad_weight buffers. */
EMB_API int32_t emb_embedding_bag_backward(
    const void* grad_output, int32_t grad_dtype, int64_t num_embeddings, int64_t embedding_dim,
    const emb_bags* bags, int32_t mode, const int64_t* max_indices, int32_t flags,
    void* grad_weight, int64_t grad_weight_capacity);

/* Sparse gradient of emb_embedding_bag (sum and mean only), in torch's uncoalesced layout: one
 * entry per non-padding position in a bag, in position order.
 *
 *   n = 0
 *   for each bag b, for i in P_b, in position order:
 *       v = grad_output[b]
 *       mean:                    v = v * (1.0f / (float)|P_b|)      (a float reciprocal, as torch)
 *       per-sample weights w:    v = v * w_i
 *       EMB_SCALE_GRAD_BY_FREQ:  v = v * (float)(1.0 / c[indices[i]])
 *       out_rows[n] = indices[i]; out_values[n] = v; n += 1           (each product rounded; no factor: a copy)
 *   *nnz = n
 *
 * Bit for bit torch 1.13's values. torch refuses scale_grad_by_freq with sparse gradients; here
 * it scales each value last. EMB_BAG_MAX gives EMB_ERROR_INVALID_ARGUMENT ("max mode does not
 * support sparse weights", as torch).
 * @param flags       0 or EMB_SCALE_GRAD_BY_FREQ; EMB_ACCUMULATE or other bits: EMB_ERROR_INVALID_ARGUMENT.
 * @param out_rows    out: int64, capacity entries (num_indices suffices).
 * @param out_values  out: [capacity, embedding_dim] float32.
 * @param nnz         out, not NULL: entries written. No output (nnz included) may overlap another
 *                    output or an input.
 * @return EMB_OK; EMB_ERROR_BUFFER_TOO_SMALL when capacity < the number of entries;
 *         EMB_ERROR_INDEX_OUT_OF_RANGE; or a validation error. On failure nothing is written.
 * Thread-safe for distinct outputs. */
EMB_API int32_t emb_embedding_bag_backward_sparse(
    const void* grad_output, int32_t grad_dtype, int64_t num_embeddings, int64_t embedding_dim,
    const emb_bags* bags, int32_t mode, int32_t flags,
    int64_t* out_rows, void* out_values, int64_t capacity, int64_t* nnz);

/* Gradient of the bag sum with respect to per_sample_weights:
 *   grad_psw[i] = Σ_d grad_output[bag(i)][d] * weight[indices[i]][d]   (sequential over d, products
 *                 rounded before each add, as torch's BLAS sdot); +0.0 at padding positions
 * Bit for bit torch 1.13 on every ISA tier. bags->per_sample_weights is not read (the gradient does
 * not depend on it) and may be NULL.
 * @param weight   in: the forward's [num_embeddings, embedding_dim] float32 table (grad_dtype).
 * @param mode     EMB_BAG_SUM; mean and max: EMB_ERROR_NOT_SUPPORTED (torch: per_sample_weights
 *                 only supported for mode='sum').
 * @param grad_per_sample_weights  out: num_indices float32; capacity elements available; must
 *                 not overlap an input.
 * @return EMB_OK; EMB_ERROR_INDEX_OUT_OF_RANGE; EMB_ERROR_BUFFER_TOO_SMALL; or a validation error.
 *         On failure nothing is written.
 * Thread-safe for distinct outputs. */
EMB_API int32_t emb_embedding_bag_per_sample_weights_backward(
    const void* grad_output, int32_t grad_dtype, const void* weight, int64_t num_embeddings,
    int64_t embedding_dim, const emb_bags* bags, int32_t mode,
    void* grad_per_sample_weights, int64_t capacity);

/* ---- Quantized tables: packing ------------------------------------------------------------ */

/* Row-wise quantized tables, torch 1.13's "fused" layout (embedding_bag_{byte,4bit,2bit}_prepack).
 * Each row of D columns is packed into row_bytes bytes: its codes, then its scale and bias.
 *
 *   bit_width 8:  code j in byte j;                          scale, bias float32 LE   row_bytes = D + 8
 *   bit_width 4:  code j in bits 4*(j%2) of byte j/2;        scale, bias float16 LE   row_bytes = ceil(D/2) + 4
 *   bit_width 2:  code j in bits 2*(j%4) of byte j/4;        scale, bias float16 LE   row_bytes = ceil(D/4) + 4
 *   value(j) = scale * code(j) + bias
 *
 * torch 1.13 refuses 4-bit rows of an odd D and 2-bit rows of a D not divisible by 4; this library
 * packs any D >= 1 and writes 0 into the unused code slots of the last byte (torch would read
 * them as extra columns: it derives D from row_bytes). Packed rows have no alignment.
 *
 * Pseudocode shared by every function below; every step is one float32 operation:
 *   lrint(v)   nearest integer, ties to even, as int64; NaN and |v| >= 2^63 give INT64_MIN
 *              (torch's lrintf on x86-64)
 *   half(v)    v rounded to float16 (ties to even, overflow to +-inf) and widened back; a NaN
 *              becomes sign | 0x7E00 (c10's conversion)
 *   min, max   the first smallest and the first largest element of the row (std::min_element /
 *              max_element: a NaN is the result only when it is the first element; the first of
 *              -0.0 and +0.0 wins)
 *
 *   8-bit row:    range = max - min;  scale = range / 255;  inverse = 255 / (range + 1e-8f)
 *                 code[j] = (uint8_t)lrint((x[j] - min) * inverse)          (the low 8 bits)
 *                 stored: scale, bias = min                                  (float32)
 *   4/2-bit row:  q = 2^bit_width - 1;  bias = half(min);  range = max - bias
 *                 scale = range == 0 ? 1 : half(range / q)
 *                 inverse = scale == 0 ? 1 : 1 / scale
 *                 if scale == 0 or inverse is +-inf: scale = 1, inverse = 1
 *                 code[j] = clamp((int32_t)lrint((x[j] - bias) * inverse), 0, q)   (low 32 bits, clamped)
 *                 stored: scale, bias                                          (float16)
 *
 * What follows for special values (all as torch 1.13): a constant row has codes 0 (8-bit: scale
 * 0; 4/2-bit: scale 1); an element that is NaN or infinite, or whose difference from min
 * overflows, gets code 0; a row holding +-inf has an infinite range, so its finite elements get
 * code 0 too (4/2-bit: an infinite scale); a NaN first element gives a NaN scale and bias; -0.0
 * and subnormals are ordinary values. float16 weights are widened exactly to float32 first.
 * torch 1.13's 8-bit prepack of a float16 weight returns a garbage row 0 (it reads freed memory);
 * here every row is packed. */

/* The packed size of one row: row_bytes = codes + scale/bias bytes (see the table above).
 * @param bit_width      2, 4 or 8 (else EMB_ERROR_INVALID_ARGUMENT, naming it).
 * @param embedding_dim  >= 1 (0 or negative: EMB_ERROR_INVALID_ARGUMENT; above INT32_MAX:
 *                       EMB_ERROR_SIZE_OVERFLOW).
 * @param row_bytes      out, not NULL.
 * Thread-safe. */
EMB_API int32_t emb_quantized_row_bytes(int32_t bit_width, int64_t embedding_dim, int64_t* row_bytes);

/* torch.ops.quantized.embedding_bag_byte_prepack (bit_width 8), embedding_bag_4bit_prepack and
 * embedding_bag_2bit_prepack (bit_width 4, 2; optimized_qparams=False), bit for bit: packs each
 * row of `weight` as described above.
 * @param weight        in: [num_embeddings, embedding_dim] of weight_dtype; NULL only when
 *                      num_embeddings is 0.
 * @param weight_dtype  EMB_DTYPE_FLOAT32 or EMB_DTYPE_FLOAT16 (others: EMB_ERROR_UNSUPPORTED_DTYPE).
 * @param bit_width     2, 4 or 8 (else EMB_ERROR_INVALID_ARGUMENT).
 * @param packed        out: exactly num_embeddings * row_bytes bytes are written; packed_capacity
 *                      bytes available (fewer: EMB_ERROR_BUFFER_TOO_SMALL); must not overlap weight.
 * @return EMB_OK or a validation error; on failure nothing is written.
 * Thread-safe for distinct outputs. Rows are split over emb_set_num_threads threads (same bytes). */
EMB_API int32_t emb_quantize(
    const void* weight, int32_t weight_dtype, int64_t num_embeddings, int64_t embedding_dim,
    int32_t bit_width, void* packed, int64_t packed_capacity);

/* torch.ops.quantized.embedding_bag_{4bit,2bit}_prepack(weight, optimized_qparams=True, nbins,
 * ratio), bit for bit: each row is packed as by emb_quantize with min and max replaced by the
 * range torch's greedy search (at::choose_qparams_optimized) picks:
 *
 *   xmin, xmax = min, max of the row
 *   step = (xmax - xmin) / (float)num_bins;  min_bins = (int)(num_bins * (1.0 - (double)(float)ratio))
 *   best = cur = loss(xmin, xmax);  lo = xmin;  hi = xmax
 *   while lo + (float)min_bins * step < hi:
 *       l1 = loss(lo + step, hi);  l2 = loss(lo, hi - step)
 *       if cur < l1 and cur < l2 and cur < best: best = cur; xmin = lo; xmax = hi
 *       if l1 < l2: lo = lo + step; cur = l1   else: hi = hi - step; cur = l2
 *       if that move left lo or hi unchanged: stop                     (see below)
 *   loss(a, b): a = half(a); r = b - a; s = r == 0 ? 1 : half(r / q); inv = s == 0 ? 1 : 1 / s
 *               n = 0; for each x in column order:
 *                   c = nearbyint((x - a) * inv) (ties to even); c = q < c ? q : c; c = c > 0 ? c : 0
 *                   e = x - (c * s + a); n = n + e * e
 *               return sqrt(n)                                       (every step float32)
 *
 * The search takes about num_bins * ratio steps per row, each reading the row twice. Where a move
 * changes nothing (a step below half an ulp of the bound it moves, e.g. a row near 1e8 with a
 * range of 64, or a step that underflows to 0, e.g. a row of subnormals) torch 1.13 loops
 * forever; this library stops there with the range torch holds while it loops.
 * @param bit_width  4 or 2; 8 gives EMB_ERROR_INVALID_ARGUMENT (torch has no optimized byte prepack).
 * @param num_bins   1 ... INT32_MAX (torch's default 200); else EMB_ERROR_INVALID_ARGUMENT.
 * @param ratio      0 ... 1 (torch's default 0.16), used as float32 as torch does; NaN or outside
 *                   [0, 1]: EMB_ERROR_INVALID_ARGUMENT (torch accepts them and may then search for
 *                   2^31 steps).
 * Other parameters, the result and thread safety as emb_quantize. */
EMB_API int32_t emb_quantize_optimized(
    const void* weight, int32_t weight_dtype, int64_t num_embeddings, int64_t embedding_dim,
    int32_t bit_width, int64_t num_bins, double ratio, void* packed, int64_t packed_capacity);

/* torch.ops.quantized.embedding_bag_byte_unpack, embedding_bag_4bit_unpack and
 * embedding_bag_2bit_unpack, bit for bit:
 *
 *   out[i][j] = fl(fl(code[i][j] * scale[i]) + bias[i])    j < embedding_dim
 *
 * two float32 roundings, no fma (torch's order: the product first), float16 scale and bias widened
 * exactly. A NaN scale gives that NaN in every column (the product's NaN wins over a NaN bias); an
 * infinite scale times code 0 gives the default NaN. Only embedding_dim columns are written: the
 * padding code slots of a 4/2-bit row are not returned (torch returns every slot as a column).
 * @param packed        in: num_embeddings rows of emb_quantized_row_bytes(bit_width, embedding_dim)
 *                      bytes; NULL only when num_embeddings is 0.
 * @param bit_width     2, 4 or 8 (else EMB_ERROR_INVALID_ARGUMENT).
 * @param out           out: [num_embeddings, embedding_dim] float32; out_capacity elements available
 *                      (fewer: EMB_ERROR_BUFFER_TOO_SMALL); must not overlap packed.
 * @return EMB_OK or a validation error; on failure nothing is written.
 * Thread-safe for distinct outputs. */
EMB_API int32_t emb_dequantize(
    const void* packed, int64_t num_embeddings, int64_t embedding_dim, int32_t bit_width,
    float* out, int64_t out_capacity);

/* ---- Quantized tables: lookups and bags ------------------------------------------------------ */

/* A row-wise quantized table is torch's prepacked weight, byte for byte (quantized::
 * embedding_bag_{byte,4bit,2bit}_prepack): num_embeddings packed rows of row_bytes bytes,
 *
 *   | codes: code_bytes bytes | scale | bias |
 *     bit_width 8: code j is byte j;                    scale, bias: float32 little-endian
 *     bit_width 4: code j is byte j/2, bits 4*(j%2);    scale, bias: float16 little-endian
 *     bit_width 2: code j is byte j/4, bits 2*(j%4);    scale, bias: float16 little-endian
 *   code_bytes = ceil(embedding_dim * bit_width / 8);  row_bytes = code_bytes + (bit_width == 8 ? 8 : 4)
 *   value(r, j) = scale(r) * code(r, j) + bias(r)
 *
 * torch reads embedding_dim from the packed width: (row_bytes - 8) for 8-bit rows, (row_bytes - 4) *
 * 8 / bit_width otherwise (its prepack only makes rows whose codes fill their last byte). Rows are
 * not aligned. No row is ever dequantized to memory: each is dequantized as it is added. */

/* Bags of a quantized table: torch 1.13's quantized::embedding_bag_{byte,4bit,2bit}_rowwise_offsets,
 * bit for bit (torch built without FBGEMM, whose fallback computes this).
 *
 *   mapped = mapping_size > 0
 *   require every 0 <= bags->indices[i] < (mapped ? mapping_size : num_embeddings)
 *   require, when mapped, every m = compressed_indices_mapping[bags->indices[i]] (every position,
 *     padding ones too) to be -1 or 0 <= m < num_embeddings   (else fails, nothing written)
 *   for each bag b (as emb_bags describes them):
 *     out[b][:] = +0.0; count = 0
 *     for each position i of bag b, in order:
 *       if bags->indices[i] == bags->padding_idx: continue        (adds nothing, not counted)
 *       count += 1
 *       r = mapped ? compressed_indices_mapping[bags->indices[i]] : bags->indices[i]
 *       if r == -1: continue                                     (pruned: counted, adds nothing)
 *       w = bags->per_sample_weights ? per_sample_weights[i] : 1.0f
 *       s = w * scale(r); c = w * bias(r)                         (float products; float16 widened first)
 *       for j in 0 .. embedding_dim-1:
 *         out[b][j] = (float)((double)s * code(r, j) + (double)(out[b][j] + c))
 *     EMB_BAG_MEAN: out[b][j] = out[b][j] / (float)max(count, 1)
 *
 * The accumulate is torch's fma(float, uint8_t, float), which C++ computes in double: the float sum
 * out + c is rounded first, then the exact double product is added and the result rounded to float
 * (twice rounded: a float fma differs in rare cases, and this library gives torch's answer). Every ISA
 * tier and thread count gives the same bits.
 *
 * Differences from torch 1.13 (docs/divergences.md): torch ignores its mode argument and always sums,
 * so EMB_BAG_MEAN here is this library's own true mean; torch has no padding index (padding_idx is
 * the float bag's, and with a mapping it is an index, i.e. an entry of the mapping); torch reads
 * out-of-range mapping entries out of bounds, accepts offsets[0] != 0 and crashes on empty offsets:
 * here they are refused or well defined. torch treats a mapping of exactly [0] as "not pruned": pass
 * mapping_size 0 for that.
 *
 * @param packed         in: num_embeddings * row_bytes bytes; NULL only if that is 0.
 * @param bit_width      8, 4 or 2 (else EMB_ERROR_INVALID_ARGUMENT).
 * @param num_embeddings packed rows (>= 0).
 * @param embedding_dim  columns per row, 1 … INT32_MAX (0 or less: EMB_ERROR_INVALID_ARGUMENT).
 * @param bags           in, not NULL: indices, offsets or bag_size, include_last_offset, padding_idx
 *                       (an index: checked against mapping_size when mapped) and per_sample_weights,
 *                       which are float32 here (EMB_BAG_SUM only: else EMB_ERROR_NOT_SUPPORTED).
 * @param mode           EMB_BAG_SUM or EMB_BAG_MEAN; EMB_BAG_MAX: EMB_ERROR_NOT_SUPPORTED (a quantized
 *                       bag has no max); anything else: EMB_ERROR_INVALID_ARGUMENT.
 * @param compressed_indices_mapping  in: NULL with mapping_size 0 (not pruned), or mapping_size
 *                       int32 entries of a pruned table (torch's compressed_indices_mapping).
 * @param mapping_size   0 … INT32_MAX.
 * @param out            out: [num_bags, embedding_dim] float32; out_capacity elements available; must
 *                       not overlap packed, the mapping, *bags or any buffer it names.
 * @return EMB_OK; EMB_ERROR_INDEX_OUT_OF_RANGE for an index (emb_last_index_error reports it), a mapping
 *         entry (not reported there) or padding_idx; EMB_ERROR_BUFFER_TOO_SMALL; or another validation
 *         error (emb_bags, sizes, pointers, overlaps). On failure nothing is written.
 * Thread-safe for concurrent calls sharing packed, the mapping and bags. */
EMB_API int32_t emb_quantized_embedding_bag(
    const void* packed, int32_t bit_width, int64_t num_embeddings, int64_t embedding_dim,
    const emb_bags* bags, int32_t mode /* EMB_BAG_SUM or EMB_BAG_MEAN */,
    const int32_t* compressed_indices_mapping, int64_t mapping_size /* 0 with NULL: not pruned */,
    float* out, int64_t out_capacity);

/* Looks up rows of a quantized table, dequantized: torch 1.13's quantized::embedding_byte and
 * embedding_4bit (torch.ao.nn.quantized.Embedding), bit for bit; 2-bit tables too.
 *
 *   validate indices and mapping entries as emb_quantized_embedding_bag does
 *   for i in 0 .. num_indices-1:                          (torch: a bag of one position per index)
 *     r = mapping_size > 0 ? compressed_indices_mapping[indices[i]] : indices[i]
 *     out[i][j] = r == -1 ? +0.0 : (float)((double)scale(r) * code(r, j) + (double)(0.0f + bias(r)))
 *
 * torch crashes on an empty input; here num_indices == 0 writes nothing and succeeds.
 * @param indices      in: num_indices values of index_dtype (EMB_DTYPE_INT32 or _INT64); NULL only if
 *                     num_indices == 0; at most INT32_MAX (else EMB_ERROR_NOT_SUPPORTED).
 * @param out          out: [num_indices, embedding_dim] float32; out_capacity elements available; must
 *                     not overlap packed, indices or the mapping.
 * Other parameters and @return as emb_quantized_embedding_bag.
 * Thread-safe for concurrent calls sharing packed, indices and the mapping. */
EMB_API int32_t emb_quantized_embedding(
    const void* packed, int32_t bit_width, int64_t num_embeddings, int64_t embedding_dim,
    const void* indices, int32_t index_dtype, int64_t num_indices,
    const int32_t* compressed_indices_mapping, int64_t mapping_size,
    float* out, int64_t out_capacity);

/* ---- Table files: .npy and .safetensors, memory-mapped ---------------------------------------- */

/* A table in a file, memory-mapped: nothing is read until rows are used, so a table larger than
 * memory serves lookups and bags, paged in from the file as its rows are touched. Open one with
 * emb_table_open, pass emb_table_get_info's data pointer, shape and dtype to any function above
 * (emb_embedding, emb_embedding_bag, the optimizer steps for a writable table, emb_quantized_* for
 * packed rows), and close it with emb_table_close.
 *
 * Files accepted: those embedding_native.tables.save (Python) writes, and the same 2-D tables written
 * by numpy's np.save or the safetensors library:
 *   .npy          format 1.0, 2.0 or 3.0; descr '<f4', '<f8', '<f2', '|u1' or '<u1'; fortran_order
 *                 False; a 2-D shape; the data fills the rest of the file exactly.
 *   .safetensors  dtype F32, F64, F16, BF16 or U8; a 2-D shape; the tensors (of any dtype) tile the
 *                 data buffer exactly; optional "__metadata__" of strings.
 * Data is little-endian, C order, aligned to its elements. A file that starts with the .npy magic
 * string, or whose name ends in ".npy", is read as .npy; any other as .safetensors.
 * The whole header is validated before anything is mapped, and any problem fails with
 * EMB_ERROR_INVALID_FILE and a message naming the file and the problem: wrong magic or version; a
 * header that is truncated, runs past the end of the file, or is not a plain Python literal / JSON
 * (repeated JSON keys included); an unsupported dtype; a shape that is not 2-D; Fortran order; data
 * offsets that disagree with the shape; truncated data or trailing bytes; misaligned data; a tensor
 * name that is missing or, with name NULL, ambiguous; sizes that overflow 64 bits. */

/* An open table file. Opaque: create with emb_table_open, free with emb_table_close. */
typedef struct emb_table_s emb_table;

/* What emb_table_get_info reports. */
typedef struct emb_table_info {
    void* data;               /* the first element, row-major; NULL when the table has no elements.
                                 Valid until emb_table_close. Writable only if the table was opened
                                 writable: writing to a read-only table's memory faults. */
    int64_t num_embeddings;   /* rows */
    int64_t embedding_dim;    /* columns; for EMB_DTYPE_UINT8, the packed row's bytes (emb_quantized_row_bytes) */
    int32_t dtype;            /* EMB_DTYPE_FLOAT32, _FLOAT64, _FLOAT16, _BFLOAT16 or _UINT8 */
    int32_t writable;         /* 1 for a read-write mapping, else 0 */
    int64_t data_offset;      /* the byte at which the data starts in the file */
} emb_table_info;

/* Opens the table file at `path`, validates its header (above) and maps it.
 *
 * The mapping advises the system of random access (POSIX_MADV_RANDOM: no read-ahead) where it can.
 * Other processes may read and write the file meanwhile; shrinking it while it is mapped makes the
 * vanished rows fault (SIGBUS), as with any mapping.
 *
 * @param path      in, not NULL: the file, NUL-terminated UTF-8.
 * @param writable  0: map read-only. 1: map read-write (the file must be writable): writes to the
 *                  table's memory reach the file; emb_table_flush waits for them to reach the disk.
 *                  Anything else: EMB_ERROR_INVALID_ARGUMENT.
 * @param name      in, may be NULL: for .safetensors, the tensor to map (NULL: the file's only
 *                  tensor); must be NULL for .npy (else EMB_ERROR_INVALID_ARGUMENT).
 * @param table     out, not NULL: receives the handle; untouched on failure.
 * @return EMB_OK; EMB_ERROR_INVALID_FILE (the message names the file and the problem); EMB_ERROR_IO
 *         (the file cannot be opened or mapped: missing, no permission, ...); EMB_ERROR_NULL_POINTER;
 *         EMB_ERROR_INVALID_ARGUMENT (writable, name for .npy, path or name not UTF-8).
 * Thread-safe. The handle owns the mapping and the open file until emb_table_close. */
EMB_API int32_t emb_table_open(const char* path, int32_t writable, const char* name, emb_table** table);

/* Describes an open table.
 * @param table  in, not NULL: from emb_table_open.
 * @param info   out, not NULL.
 * @return EMB_OK; EMB_ERROR_NULL_POINTER; EMB_ERROR_INVALID_ARGUMENT (table is not an open table).
 * Thread-safe. */
EMB_API int32_t emb_table_get_info(const emb_table* table, emb_table_info* info);

/* Writes a writable table's changed pages to the file and waits for the write (msync). For a
 * read-only table there is nothing to write: EMB_OK.
 * @return EMB_OK; EMB_ERROR_IO; EMB_ERROR_NULL_POINTER; EMB_ERROR_INVALID_ARGUMENT.
 * Thread-safe; writes made concurrently may or may not be included. */
EMB_API int32_t emb_table_flush(emb_table* table);

/* Unmaps the table and closes its file; the handle and every pointer from emb_table_get_info become
 * invalid. Writes to a writable table stay in the file (emb_table_flush first to wait for them).
 * @param table  from emb_table_open, or NULL (nothing to do: EMB_OK).
 * @return EMB_OK; EMB_ERROR_INVALID_ARGUMENT for a pointer that is not an open table (a second close
 *         is refused this way as long as the freed memory was not reused; do not rely on it).
 * Not thread-safe with any other use of the same table. */
EMB_API int32_t emb_table_close(emb_table* table);

#ifdef __cplusplus
}
#endif

#endif /* EMBEDDING_NATIVE_H */
