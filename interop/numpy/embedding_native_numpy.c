/* The plain lookup and bag of embedding_native's functional API for numpy arrays, as a CPython extension.
 *
 * Through ctypes a tiny lookup pays for each of emb_embedding's nine arguments, for every array's
 * address (ndarray.ctypes.data: 0.6 µs each) and for the result's allocation in Python: 4.5 µs,
 * 2.5x torch's whole F.embedding (bench/results/python-call-floor.md). Torch tensors cross through
 * the dispatcher operators (interop/torch); numpy arrays cannot, so this module takes them whole
 * through the buffer protocol and calls the library directly.
 *
 * It answers only plain calls: C-contiguous ndarrays (not subclasses) in native byte order, a
 * non-empty 2-D float32, float64 or float16 table; a lookup of int32 or int64 indices of any shape,
 * into no out (the result is numpy.empty's, when smaller than the bytes Python maps fresh for large
 * results) or an out of exactly the result's shape and type; a bag of 1-D indices and offsets, no
 * padding row, per-sample weights of the table's type in sum mode only. Anything else, and any call
 * the library refuses, returns None having written nothing: the Python caller then takes its checked
 * path, which raises torch's error. The library is the one the Python package loaded (bind() takes its path), so both
 * ways run the same tier and give the same bits.
 *
 * Built by `make python-package` against the Python headers of /usr/bin/python3, for CPython's
 * stable ABI, so one file serves Python 3.11 and later (embedding_native/_numpy_extension.py loads
 * it). It needs no numpy headers: numpy.ndarray and numpy.empty are handed over at bind().
 */
#define PY_SSIZE_T_CLEAN
/* The stable ABI of CPython 3.11 (the first with the buffer protocol in it): one file serves 3.11 on. */
#define Py_LIMITED_API 0x030B0000
#include <Python.h>

#include <dlfcn.h>
#include <stdint.h>
#include <string.h>

#include "embedding_native.h"

/* Calls at least this many elements release the GIL while the library works (as ctypes does);
 * smaller ones keep it, which costs less than releasing it. */
#define RELEASE_GIL_ELEMENTS 16384

static struct {
    int32_t (*embedding)(const void*, int32_t, int64_t, int64_t, const void*, int32_t, int64_t, void*, int64_t);
    int32_t (*embedding_bag)(const void*, int32_t, int64_t, int64_t, const emb_bags*, int32_t, void*, int64_t, int64_t*,
                             int64_t);
    PyTypeObject* ndarray;   /* numpy.ndarray: only exact instances take this path */
    PyObject* empty;         /* numpy.empty, for new results */
    int64_t max_result_bytes; /* results this large or larger are left to Python's fresh mappings */
} library;

/* The library's code for a buffer's element format, or 0. numpy writes native-order formats
 * without a byte-order prefix, so a prefixed (byte-swapped) array is refused here. */
static int32_t table_code(const Py_buffer* view) {
    const char* f = view->format;
    if (f == NULL || f[0] == '\0' || f[1] != '\0') {
        return 0;
    }
    switch (f[0]) {
        case 'f': return view->itemsize == 4 ? EMB_DTYPE_FLOAT32 : 0;
        case 'd': return view->itemsize == 8 ? EMB_DTYPE_FLOAT64 : 0;
        case 'e': return view->itemsize == 2 ? EMB_DTYPE_FLOAT16 : 0;
        default: return 0;
    }
}

static int32_t index_code(const Py_buffer* view) {
    const char* f = view->format;
    if (f == NULL || f[0] == '\0' || f[1] != '\0') {
        return 0;
    }
    switch (f[0]) {
        case 'i': case 'l': case 'q':
            return view->itemsize == 4 ? EMB_DTYPE_INT32 : view->itemsize == 8 ? EMB_DTYPE_INT64 : 0;
        default: return 0;
    }
}

/* A C-contiguous view of an exact ndarray (writable if asked), or 0 with no error set. */
static int contiguous_view(PyObject* array, Py_buffer* view, int writable) {
    if (Py_TYPE(array) != library.ndarray) {
        return 0;
    }
    int flags = PyBUF_C_CONTIGUOUS | PyBUF_FORMAT | (writable ? PyBUF_WRITABLE : 0);
    if (PyObject_GetBuffer(array, view, flags) != 0) {
        PyErr_Clear();
        return 0;
    }
    return 1;
}

/* A view of a plain table: an exact, C-contiguous, non-empty 2-D ndarray of a table type, its code in
 * *code; or 0 with nothing held and no error set. */
static int table_view(PyObject* array, Py_buffer* view, int32_t* code) {
    if (!contiguous_view(array, view, 0)) {
        return 0;
    }
    *code = table_code(view);
    if (*code == 0 || view->ndim != 2 || view->shape[0] == 0 || view->shape[1] == 0) {
        PyBuffer_Release(view);
        return 0;
    }
    return 1;
}

/* A new ndarray of shape `leading` + (dim,) (`ndim` leading extents), of the table's dtype, or NULL
 * with an error set. */
static PyObject* new_result(PyObject* weight, const Py_ssize_t* leading, int ndim, Py_ssize_t dim) {
    PyObject* shape = PyTuple_New(ndim + 1);
    if (shape == NULL) {
        return NULL;
    }
    for (int axis = 0; axis <= ndim; axis++) {
        PyObject* extent = PyLong_FromSsize_t(axis < ndim ? leading[axis] : dim);
        if (extent == NULL) {
            Py_DECREF(shape);
            return NULL;
        }
        PyTuple_SetItem(shape, axis, extent); /* steals extent */
    }
    PyObject* dtype = PyObject_GetAttrString(weight, "dtype");
    PyObject* result = dtype == NULL ? NULL : PyObject_CallFunctionObjArgs(library.empty, shape, dtype, NULL);
    Py_XDECREF(dtype);
    Py_DECREF(shape);
    return result;
}

/* Whether out is exactly the result: the index shape + (dim,), the table's format. */
static int out_fits(const Py_buffer* out, const Py_buffer* weight, const Py_buffer* indices, Py_ssize_t dim) {
    if (out->ndim != indices->ndim + 1 || strcmp(out->format, weight->format) != 0 || out->shape[indices->ndim] != dim) {
        return 0;
    }
    for (int axis = 0; axis < indices->ndim; axis++) {
        if (out->shape[axis] != indices->shape[axis]) {
            return 0;
        }
    }
    return 1;
}

/* embedding(weight, indices, out) -> out, a new array, or None (see the top of this file). */
static PyObject* embedding(PyObject* self, PyObject* const* args, Py_ssize_t nargs) {
    (void)self;
    if (nargs != 3 || library.embedding == NULL) {
        Py_RETURN_NONE;
    }
    PyObject* weight_object = args[0];
    PyObject* out_object = args[2];
    Py_buffer weight, indices, out;
    int32_t table;
    if (!table_view(weight_object, &weight, &table)) {
        Py_RETURN_NONE;
    }
    PyObject* result = Py_None;
    Py_INCREF(result);
    if (!contiguous_view(args[1], &indices, 0)) {
        goto release_weight;
    }
    int32_t index = index_code(&indices);
    Py_ssize_t rows = weight.shape[0], dim = weight.shape[1];
    Py_ssize_t count = indices.itemsize == 0 ? 0 : indices.len / indices.itemsize;
    if (index == 0 || (count != 0 && dim > PY_SSIZE_T_MAX / count)) {
        goto release_indices;
    }
    int64_t elements = (int64_t)count * dim;
    if (out_object == Py_None) {
        if (count != 0 && count > (library.max_result_bytes - 1) / ((int64_t)dim * weight.itemsize)) {
            goto release_indices;
        }
        out_object = new_result(weight_object, indices.shape, indices.ndim, dim);
        if (out_object == NULL) {
            Py_DECREF(result);
            result = NULL;
            goto release_indices;
        }
    } else {
        Py_INCREF(out_object);
    }
    if (!contiguous_view(out_object, &out, 1)) {
        goto release_out_object;
    }
    if (out_fits(&out, &weight, &indices, dim)) {
        int32_t status;
        if (elements >= RELEASE_GIL_ELEMENTS) {
            Py_BEGIN_ALLOW_THREADS
            status = library.embedding(weight.buf, table, rows, dim, indices.buf, index, count, out.buf, elements);
            Py_END_ALLOW_THREADS
        } else {
            status = library.embedding(weight.buf, table, rows, dim, indices.buf, index, count, out.buf, elements);
        }
        if (status == EMB_OK) {
            Py_DECREF(result);
            result = out_object;
            Py_INCREF(result);
        }
    }
    PyBuffer_Release(&out);
release_out_object:
    Py_DECREF(out_object);
release_indices:
    PyBuffer_Release(&indices);
release_weight:
    PyBuffer_Release(&weight);
    return result;
}

/* embedding_bag(weight, indices, offsets, mode, per_sample_weights) -> a new array, or None (see the top). */
static PyObject* embedding_bag(PyObject* self, PyObject* const* args, Py_ssize_t nargs) {
    (void)self;
    if (nargs != 5 || library.embedding_bag == NULL || !PyLong_Check(args[3])) {
        Py_RETURN_NONE;
    }
    long mode = PyLong_AsLong(args[3]);
    PyObject* weights_object = args[4];
    if ((mode != EMB_BAG_SUM && mode != EMB_BAG_MEAN && mode != EMB_BAG_MAX)
            || (weights_object != Py_None && mode != EMB_BAG_SUM)) {
        PyErr_Clear();
        Py_RETURN_NONE;
    }
    Py_buffer weight, indices, offsets, weights;
    int32_t table;
    if (!table_view(args[0], &weight, &table)) {
        Py_RETURN_NONE;
    }
    PyObject* result = Py_None;
    Py_INCREF(result);
    if (!contiguous_view(args[1], &indices, 0)) {
        goto release_weight;
    }
    if (!contiguous_view(args[2], &offsets, 0)) {
        goto release_indices;
    }
    int weighted = weights_object != Py_None;
    if (weighted && !contiguous_view(weights_object, &weights, 0)) {
        goto release_offsets;
    }
    Py_ssize_t dim = weight.shape[1], count = indices.ndim == 1 ? indices.shape[0] : -1;
    Py_ssize_t num_bags = offsets.ndim == 1 ? offsets.shape[0] : 0;
    emb_bags bags;
    memset(&bags, 0, sizeof bags);
    bags.indices = indices.buf;
    bags.num_indices = count;
    bags.index_dtype = index_code(&indices);
    bags.offsets = offsets.buf;
    bags.offsets_dtype = index_code(&offsets);
    bags.num_offsets = num_bags;
    bags.padding_idx = EMB_NO_PADDING;
    bags.per_sample_weights = weighted ? weights.buf : NULL;
    int plain = count >= 0 && num_bags > 0 && bags.index_dtype != 0 && bags.offsets_dtype != 0
                && (!weighted || (weights.ndim == 1 && weights.shape[0] == count && strcmp(weights.format, weight.format) == 0))
                && num_bags <= (library.max_result_bytes - 1) / ((int64_t)dim * weight.itemsize);
    if (plain) {
        Py_ssize_t leading[1] = {num_bags};
        PyObject* out_object = new_result(args[0], leading, 1, dim);
        if (out_object == NULL) {
            Py_DECREF(result);
            result = NULL;
            goto release_weights;
        }
        Py_buffer out;
        if (contiguous_view(out_object, &out, 1)) {
            int64_t elements = (int64_t)num_bags * dim;
            int32_t status;
            if ((int64_t)count * dim >= RELEASE_GIL_ELEMENTS) {
                Py_BEGIN_ALLOW_THREADS
                status = library.embedding_bag(weight.buf, table, weight.shape[0], dim, &bags, (int32_t)mode, out.buf,
                                               elements, NULL, 0);
                Py_END_ALLOW_THREADS
            } else {
                status = library.embedding_bag(weight.buf, table, weight.shape[0], dim, &bags, (int32_t)mode, out.buf,
                                               elements, NULL, 0);
            }
            PyBuffer_Release(&out);
            if (status == EMB_OK) {
                Py_DECREF(result);
                result = out_object;
                Py_INCREF(result);
            }
        }
        Py_DECREF(out_object);
    }
release_weights:
    if (weighted) {
        PyBuffer_Release(&weights);
    }
release_offsets:
    PyBuffer_Release(&offsets);
release_indices:
    PyBuffer_Release(&indices);
release_weight:
    PyBuffer_Release(&weight);
    return result;
}

/* bind(library_path, numpy_module, max_result_bytes) -> emb_version_number() of the library bound. */
static PyObject* bind(PyObject* self, PyObject* args) {
    (void)self;
    const char* path;
    PyObject* numpy;
    long long max_result_bytes;
    if (!PyArg_ParseTuple(args, "sOL:bind", &path, &numpy, &max_result_bytes)) {
        return NULL;
    }
    void* handle = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (handle == NULL) {
        PyErr_Format(PyExc_OSError, "cannot load %s: %s", path, dlerror());
        return NULL;
    }
    int32_t (*version)(void) = (int32_t (*)(void))dlsym(handle, "emb_version_number");
    void* lookup = dlsym(handle, "emb_embedding");
    void* bag = dlsym(handle, "emb_embedding_bag");
    PyObject* ndarray = PyObject_GetAttrString(numpy, "ndarray");
    PyObject* empty = ndarray == NULL ? NULL : PyObject_GetAttrString(numpy, "empty");
    if (empty == NULL || !PyType_Check(ndarray) || version == NULL || lookup == NULL || bag == NULL) {
        Py_XDECREF(ndarray);
        Py_XDECREF(empty);
        if (!PyErr_Occurred()) {
            PyErr_Format(PyExc_OSError, "%s is not an embedding_native library", path);
        }
        return NULL;
    }
    Py_XDECREF((PyObject*)library.ndarray);
    Py_XDECREF(library.empty);
    library.ndarray = (PyTypeObject*)ndarray;
    library.empty = empty;
    library.max_result_bytes = max_result_bytes;
    memcpy(&library.embedding, &lookup, sizeof lookup);
    memcpy(&library.embedding_bag, &bag, sizeof bag);
    return PyLong_FromLong(version());
}

static PyMethodDef methods[] = {
    {"bind", bind, METH_VARARGS, "bind(library_path, numpy, max_result_bytes): use this library; returns its version number."},
    {"embedding", (PyCFunction)(void (*)(void))embedding, METH_FASTCALL,
     "embedding(weight, indices, out): the plain lookup of numpy arrays, or None when the call is not plain."},
    {"embedding_bag", (PyCFunction)(void (*)(void))embedding_bag, METH_FASTCALL,
     "embedding_bag(weight, indices, offsets, mode, per_sample_weights): the plain bag of numpy arrays, or None."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "embedding_native._numpy_calls", NULL, -1, methods, NULL, NULL, NULL, NULL};

PyMODINIT_FUNC PyInit__numpy_calls(void) {
    return PyModule_Create(&module);
}
