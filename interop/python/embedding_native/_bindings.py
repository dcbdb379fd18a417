"""ctypes bindings: one per C function of ``embedding_native.h``, nothing else.

Each binding is the library's own function object with ``argtypes`` and ``restype`` set once,
here, under a copy of its C declaration. Calling one is a plain ctypes call: no wrapper, no
``errcheck`` (the public layer checks the returned emb_status itself, which keeps the tiny-call
overhead down). Pointers are passed as Python ints (numpy ``.ctypes.data``, torch
``.data_ptr()``); ``const char*`` results come back as ``bytes``.

Importing this module loads the library (``_lib.load``), so it is imported by the layers that
call into it, never by ``errors`` or ``_cpu``.
"""

from ctypes import POINTER, c_char_p, c_int32, c_int64, c_void_p

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

# ---- Errors ----------------------------------------------------------------------------------

# EMB_API const char* emb_status_string(int32_t status);
emb_status_string = _c_function("emb_status_string", c_char_p, c_int32)

# EMB_API const char* emb_last_error(void);
emb_last_error = _c_function("emb_last_error", c_char_p)

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
