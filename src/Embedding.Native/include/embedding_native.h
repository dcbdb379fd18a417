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
 *   - Shapes and counts are int64_t. A pointer may be NULL only where the buffer it names is
 *     empty (zero elements); every product of sizes is checked for overflow.
 *   - Element types are passed explicitly as emb_dtype values.
 *
 * THREADING
 *   All functions are reentrant. Calls that only read a table (emb_embedding) may run on many
 *   threads at once over the same table. The last-error message is per thread. The library
 *   starts no threads and never spins.
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
    EMB_ERROR_INTERNAL = 100          /* a bug: please report it with emb_last_error() */
} emb_status;

/* Element types. Values are stable. */
typedef enum emb_dtype {
    EMB_DTYPE_FLOAT32 = 1,
    EMB_DTYPE_FLOAT64 = 2,
    EMB_DTYPE_FLOAT16 = 3,
    EMB_DTYPE_BFLOAT16 = 4,
    EMB_DTYPE_INT32 = 5,
    EMB_DTYPE_INT64 = 6
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

/* The best tier the running CPU supports, from CPUID (x86-64) or the architecture (ARM64).
 * Safe to call from any tier's build, including the baseline x86-64-v2 build, so a loader can
 * call it before choosing which tier to load. It does not check that the operating system
 * enabled the AVX state; a loader should also consult the OS (e.g. /proc/cpuinfo). */
EMB_API int32_t emb_cpu_tier(void);

/* A JSON object describing the build: version, tier name, vector width in bits, runtime,
 * supported dtypes and the specialised embedding dimensions. Static string: do not free. */
EMB_API const char* emb_build_info(void);

/* ---- Errors -------------------------------------------------------------------------------- */

/* A short English name for a status code ("EMB_ERROR_NULL_POINTER", ...), or "unknown status".
 * Static string: do not free. Thread-safe. */
EMB_API const char* emb_status_string(int32_t status);

/* The message explaining the latest failed call on this thread, or "" if none failed yet.
 * UTF-8, owned by the library, valid until the next failing call on the same thread. */
EMB_API const char* emb_last_error(void);

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
 * @param weight_dtype    EMB_DTYPE_FLOAT32 (other types: EMB_ERROR_UNSUPPORTED_DTYPE).
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

#ifdef __cplusplus
}
#endif

#endif /* EMBEDDING_NATIVE_H */
