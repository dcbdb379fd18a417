"""ctypes bindings: one per C function of ``embedding_native.h``, nothing else.

Each binding is the library's own function object with ``argtypes`` and ``restype`` set once,
here, under a copy of its C declaration. Calling one is a plain ctypes call: no wrapper, no
``errcheck`` (the public layer checks the returned emb_status itself, which keeps the tiny-call
overhead down). Pointers are passed as Python ints (numpy ``.ctypes.data``, torch
``.data_ptr()``); ``const char*`` results come back as ``bytes``.

Importing this module loads the library (``_lib.load``), so it is imported by the layers that
call into it, never by ``errors`` or ``_cpu``.
"""

from ctypes import POINTER, Structure, c_char_p, c_double, c_int32, c_int64, c_void_p

from . import _lib

#: The loaded library and how it was chosen (path, tier, ...).
LIBRARY = _lib.load()


def _c_function(name, restype, *argtypes):
    """Binds the exported C function ``name`` with its signature; returns the ctypes function."""
    fn = getattr(LIBRARY.dll, name)
    fn.argtypes = list(argtypes)
    fn.restype = restype
    return fn


# emb_dtype values; pinned by the header ("Values are stable").
EMB_DTYPE_FLOAT32 = 1
EMB_DTYPE_FLOAT64 = 2
EMB_DTYPE_FLOAT16 = 3
EMB_DTYPE_BFLOAT16 = 4
EMB_DTYPE_INT32 = 5
EMB_DTYPE_INT64 = 6

# ---- Library information ---------------------------------------------------------------------

# EMB_API int32_t emb_version_number(void);
emb_version_number = _c_function("emb_version_number", c_int32)

# EMB_API const char* emb_version_string(void);
emb_version_string = _c_function("emb_version_string", c_char_p)

# EMB_API int32_t emb_isa_tier(void);
emb_isa_tier = _c_function("emb_isa_tier", c_int32)

# EMB_API int32_t emb_cpu_tier(void);
emb_cpu_tier = _c_function("emb_cpu_tier", c_int32)

# EMB_API const char* emb_build_info(void);
emb_build_info = _c_function("emb_build_info", c_char_p)

# EMB_API int32_t emb_set_num_threads(int32_t num_threads);
emb_set_num_threads = _c_function("emb_set_num_threads", c_int32, c_int32)

# EMB_API int32_t emb_get_num_threads(void);
emb_get_num_threads = _c_function("emb_get_num_threads", c_int32)

# ---- Errors ----------------------------------------------------------------------------------

# EMB_API const char* emb_status_string(int32_t status);
emb_status_string = _c_function("emb_status_string", c_char_p, c_int32)

# EMB_API const char* emb_last_error(void);
emb_last_error = _c_function("emb_last_error", c_char_p)

# EMB_API int32_t emb_last_index_error(int64_t* position, int64_t* value);
emb_last_index_error = _c_function("emb_last_index_error", c_int32, POINTER(c_int64), POINTER(c_int64))

# ---- Embedding forward -----------------------------------------------------------------------

# EMB_API int32_t emb_padding_idx_normalize(int64_t padding_idx, int64_t num_embeddings, int64_t* normalized);
emb_padding_idx_normalize = _c_function("emb_padding_idx_normalize", c_int32, c_int64, c_int64, POINTER(c_int64))

# EMB_API int32_t emb_embedding(
#     const void* weight, int32_t weight_dtype, int64_t num_embeddings, int64_t embedding_dim,
#     const void* indices, int32_t index_dtype, int64_t num_indices,
#     void* out, int64_t out_capacity);
emb_embedding = _c_function("emb_embedding", c_int32,
                            c_void_p, c_int32, c_int64, c_int64,
                            c_void_p, c_int32, c_int64,
                            c_void_p, c_int64)

# ---- Training: backward, renormalisation, fused optimizer steps ------------------------------

# #define EMB_NO_PADDING (-1)
EMB_NO_PADDING = -1
# #define EMB_SCALE_GRAD_BY_FREQ 1
EMB_SCALE_GRAD_BY_FREQ = 1
# #define EMB_ACCUMULATE 2
EMB_ACCUMULATE = 2

# EMB_API int32_t emb_embedding_backward(
#     const void* grad_output, int32_t grad_dtype, int64_t num_indices, int64_t embedding_dim,
#     const void* indices, int32_t index_dtype, int64_t num_embeddings, int64_t padding_idx,
#     int32_t flags, void* grad_weight, int64_t grad_weight_capacity);
emb_embedding_backward = _c_function("emb_embedding_backward", c_int32,
                                     c_void_p, c_int32, c_int64, c_int64,
                                     c_void_p, c_int32, c_int64, c_int64,
                                     c_int32, c_void_p, c_int64)

# EMB_API int32_t emb_embedding_backward_sparse(
#     const void* grad_output, int32_t grad_dtype, int64_t num_indices, int64_t embedding_dim,
#     const void* indices, int32_t index_dtype, int64_t num_embeddings, int64_t padding_idx,
#     int32_t flags, int64_t* out_rows, void* out_values, int64_t capacity, int64_t* nnz);
emb_embedding_backward_sparse = _c_function("emb_embedding_backward_sparse", c_int32,
                                            c_void_p, c_int32, c_int64, c_int64,
                                            c_void_p, c_int32, c_int64, c_int64,
                                            c_int32, c_void_p, c_void_p, c_int64, POINTER(c_int64))

# EMB_API int32_t emb_sparse_coalesce(
#     const int64_t* rows, const void* values, int32_t values_dtype, int64_t nnz,
#     int64_t embedding_dim, int64_t num_embeddings,
#     int64_t* out_rows, void* out_values, int64_t capacity, int64_t* num_rows);
emb_sparse_coalesce = _c_function("emb_sparse_coalesce", c_int32,
                                  c_void_p, c_void_p, c_int32, c_int64,
                                  c_int64, c_int64,
                                  c_void_p, c_void_p, c_int64, POINTER(c_int64))

# EMB_API int32_t emb_embedding_renorm(
#     void* weight, int32_t weight_dtype, int64_t num_embeddings, int64_t embedding_dim,
#     const void* indices, int32_t index_dtype, int64_t num_indices,
#     double max_norm, double norm_type);
emb_embedding_renorm = _c_function("emb_embedding_renorm", c_int32,
                                   c_void_p, c_int32, c_int64, c_int64,
                                   c_void_p, c_int32, c_int64,
                                   c_double, c_double)

# EMB_API int32_t emb_embedding_renorm_strided_rows(...): emb_embedding_renorm's arguments.
emb_embedding_renorm_strided_rows = _c_function("emb_embedding_renorm_strided_rows", c_int32,
                                                c_void_p, c_int32, c_int64, c_int64,
                                                c_void_p, c_int32, c_int64,
                                                c_double, c_double)

# EMB_API int32_t emb_sgd_step(
#     void* weight, int32_t weight_dtype, int64_t num_embeddings, int64_t embedding_dim,
#     const int64_t* rows, const void* values, int64_t num_rows,
#     double lr, double weight_decay);
emb_sgd_step = _c_function("emb_sgd_step", c_int32,
                           c_void_p, c_int32, c_int64, c_int64,
                           c_void_p, c_void_p, c_int64,
                           c_double, c_double)

# EMB_API int32_t emb_adagrad_step(
#     void* weight, void* state_sum, int32_t weight_dtype, int64_t num_embeddings, int64_t embedding_dim,
#     const int64_t* rows, const void* values, int64_t num_rows,
#     double lr, double lr_decay, double eps, int64_t step);
emb_adagrad_step = _c_function("emb_adagrad_step", c_int32,
                               c_void_p, c_void_p, c_int32, c_int64, c_int64,
                               c_void_p, c_void_p, c_int64,
                               c_double, c_double, c_double, c_int64)

# EMB_API int32_t emb_rowwise_adagrad_step(
#     void* weight, void* momentum, int32_t weight_dtype, int64_t num_embeddings, int64_t embedding_dim,
#     const int64_t* rows, const void* values, int64_t num_rows,
#     double lr, double eps);
emb_rowwise_adagrad_step = _c_function("emb_rowwise_adagrad_step", c_int32,
                                       c_void_p, c_void_p, c_int32, c_int64, c_int64,
                                       c_void_p, c_void_p, c_int64,
                                       c_double, c_double)

# EMB_API int32_t emb_sparse_adam_step(
#     void* weight, void* exp_avg, void* exp_avg_sq, int32_t weight_dtype,
#     int64_t num_embeddings, int64_t embedding_dim,
#     const int64_t* rows, const void* values, int64_t num_rows,
#     double lr, double beta1, double beta2, double eps, int64_t step);
emb_sparse_adam_step = _c_function("emb_sparse_adam_step", c_int32,
                                   c_void_p, c_void_p, c_void_p, c_int32,
                                   c_int64, c_int64,
                                   c_void_p, c_void_p, c_int64,
                                   c_double, c_double, c_double, c_double, c_int64)

# ---- EmbeddingBag ----------------------------------------------------------------------------

# typedef enum emb_bag_mode { EMB_BAG_SUM = 0, EMB_BAG_MEAN = 1, EMB_BAG_MAX = 2 } emb_bag_mode;
EMB_BAG_SUM = 0
EMB_BAG_MEAN = 1
EMB_BAG_MAX = 2


class emb_bags(Structure):
    """``emb_bags``, field for field (72 bytes on LP64, no padding)::

        typedef struct emb_bags {
            const void* indices;              /* num_indices values of index_dtype */
            int64_t num_indices;
            int32_t index_dtype;              /* EMB_DTYPE_INT32 or EMB_DTYPE_INT64 */
            int32_t offsets_dtype;            /* EMB_DTYPE_INT32 or EMB_DTYPE_INT64; ignored when offsets is NULL */
            const void* offsets;              /* NULL for fixed-size bags */
            int64_t num_offsets;
            int64_t bag_size;                 /* positions per bag when offsets is NULL */
            int32_t include_last_offset;      /* 0 or 1 */
            int32_t reserved;                 /* must be 0 */
            const float* per_sample_weights;  /* NULL, or num_indices float32 weights (sum mode only) */
            int64_t padding_idx;              /* a normalised row, or EMB_NO_PADDING */
        } emb_bags;

    Pointers are ``c_void_p`` (assigned Python ints: numpy ``.ctypes.data``, torch ``.data_ptr()``;
    None or 0 is NULL).
    """

    _fields_ = [
        ("indices", c_void_p),
        ("num_indices", c_int64),
        ("index_dtype", c_int32),
        ("offsets_dtype", c_int32),
        ("offsets", c_void_p),
        ("num_offsets", c_int64),
        ("bag_size", c_int64),
        ("include_last_offset", c_int32),
        ("reserved", c_int32),
        ("per_sample_weights", c_void_p),
        ("padding_idx", c_int64),
    ]


# EMB_API int32_t emb_embedding_bag_count(const emb_bags* bags, int64_t* num_bags);
emb_embedding_bag_count = _c_function("emb_embedding_bag_count", c_int32, POINTER(emb_bags), POINTER(c_int64))

# EMB_API int32_t emb_embedding_bag(
#     const void* weight, int32_t weight_dtype, int64_t num_embeddings, int64_t embedding_dim,
#     const emb_bags* bags, int32_t mode,
#     void* out, int64_t out_capacity, int64_t* max_indices, int64_t max_indices_capacity);
emb_embedding_bag = _c_function("emb_embedding_bag", c_int32,
                                c_void_p, c_int32, c_int64, c_int64,
                                POINTER(emb_bags), c_int32,
                                c_void_p, c_int64, c_void_p, c_int64)

# EMB_API int32_t emb_embedding_bag_backward(
#     const void* grad_output, int32_t grad_dtype, int64_t num_embeddings, int64_t embedding_dim,
#     const emb_bags* bags, int32_t mode, const int64_t* max_indices, int32_t flags,
#     void* grad_weight, int64_t grad_weight_capacity);
emb_embedding_bag_backward = _c_function("emb_embedding_bag_backward", c_int32,
                                         c_void_p, c_int32, c_int64, c_int64,
                                         POINTER(emb_bags), c_int32, c_void_p, c_int32,
                                         c_void_p, c_int64)

# EMB_API int32_t emb_embedding_bag_backward_sparse(
#     const void* grad_output, int32_t grad_dtype, int64_t num_embeddings, int64_t embedding_dim,
#     const emb_bags* bags, int32_t mode, int32_t flags,
#     int64_t* out_rows, void* out_values, int64_t capacity, int64_t* nnz);
emb_embedding_bag_backward_sparse = _c_function("emb_embedding_bag_backward_sparse", c_int32,
                                                c_void_p, c_int32, c_int64, c_int64,
                                                POINTER(emb_bags), c_int32, c_int32,
                                                c_void_p, c_void_p, c_int64, POINTER(c_int64))

# EMB_API int32_t emb_embedding_bag_per_sample_weights_backward(
#     const void* grad_output, int32_t grad_dtype, const void* weight, int64_t num_embeddings,
#     int64_t embedding_dim, const emb_bags* bags, int32_t mode,
#     void* grad_per_sample_weights, int64_t capacity);
emb_embedding_bag_per_sample_weights_backward = _c_function("emb_embedding_bag_per_sample_weights_backward", c_int32,
                                                            c_void_p, c_int32, c_void_p, c_int64,
                                                            c_int64, POINTER(emb_bags), c_int32,
                                                            c_void_p, c_int64)

# ---- Row-wise quantized tables (8-, 4- and 2-bit) ----------------------------------------------

# EMB_API int32_t emb_quantized_row_bytes(int32_t bit_width, int64_t embedding_dim, int64_t* row_bytes);
emb_quantized_row_bytes = _c_function("emb_quantized_row_bytes", c_int32, c_int32, c_int64, POINTER(c_int64))

# EMB_API int32_t emb_quantize(
#     const void* weight, int32_t weight_dtype, int64_t num_embeddings, int64_t embedding_dim,
#     int32_t bit_width, void* packed, int64_t packed_capacity);
emb_quantize = _c_function("emb_quantize", c_int32,
                           c_void_p, c_int32, c_int64, c_int64,
                           c_int32, c_void_p, c_int64)

# EMB_API int32_t emb_quantize_optimized(
#     const void* weight, int32_t weight_dtype, int64_t num_embeddings, int64_t embedding_dim,
#     int32_t bit_width, int64_t num_bins, double ratio, void* packed, int64_t packed_capacity);
emb_quantize_optimized = _c_function("emb_quantize_optimized", c_int32,
                                     c_void_p, c_int32, c_int64, c_int64,
                                     c_int32, c_int64, c_double, c_void_p, c_int64)

# EMB_API int32_t emb_dequantize(
#     const void* packed, int64_t num_embeddings, int64_t embedding_dim, int32_t bit_width,
#     float* out, int64_t out_capacity);
emb_dequantize = _c_function("emb_dequantize", c_int32,
                             c_void_p, c_int64, c_int64, c_int32,
                             c_void_p, c_int64)

# EMB_API int32_t emb_quantized_embedding_bag(
#     const void* packed, int32_t bit_width, int64_t num_embeddings, int64_t embedding_dim,
#     const emb_bags* bags, int32_t mode, const int32_t* compressed_indices_mapping, int64_t mapping_size,
#     float* out, int64_t out_capacity);
emb_quantized_embedding_bag = _c_function("emb_quantized_embedding_bag", c_int32,
                                          c_void_p, c_int32, c_int64, c_int64,
                                          POINTER(emb_bags), c_int32, c_void_p, c_int64,
                                          c_void_p, c_int64)

# EMB_API int32_t emb_quantized_embedding(
#     const void* packed, int32_t bit_width, int64_t num_embeddings, int64_t embedding_dim,
#     const void* indices, int32_t index_dtype, int64_t num_indices,
#     const int32_t* compressed_indices_mapping, int64_t mapping_size,
#     float* out, int64_t out_capacity);
emb_quantized_embedding = _c_function("emb_quantized_embedding", c_int32,
                                      c_void_p, c_int32, c_int64, c_int64,
                                      c_void_p, c_int32, c_int64,
                                      c_void_p, c_int64,
                                      c_void_p, c_int64)
