// The plain calls of embedding_native's functional API as torch dispatcher operators.
//
// From Python, a call through ctypes pays for its arguments one by one (about 80 ns each) and for
// every tensor's address and the result's allocation in Python (torch.empty alone is 0.9 µs), so a
// tiny lookup took twice torch's time (bench/results/python-call-floor.md). These operators take the
// tensors themselves: torch's dispatcher hands them over, the result is allocated in C++, and the
// library is called directly.
//
// They cover exactly the functional API's plain calls (embedding without options; embedding_bag
// with 1-D indices and offsets, no options, per-sample weights in sum mode) on contiguous CPU
// tensors. Anything else, and any call the library refuses, returns None and has written nothing:
// the Python caller then takes its checked path, which raises torch's error. The library is the one
// the Python package loaded (bind() takes its path), so both paths run the same tier.
//
// Built by `make python-package` against Debian's libtorch-dev (torch 1.13); the Python package
// loads it only into the torch it was built for (embedding_native/_torch_operators.py).

#include <ATen/ATen.h>
#include <torch/library.h>

#include <dlfcn.h>

#include <cstdint>
#include <string>
#include <vector>

#include "embedding_native.h"

namespace {

struct Library {
    decltype(&emb_embedding) embedding = nullptr;
    decltype(&emb_embedding_bag) embedding_bag = nullptr;
    // Results of this many bytes or more are left to Python, which maps fresh memory for them.
    int64_t max_result_bytes = 0;
};

Library library;

// The library's dtype code of a table tensor, or 0.
int32_t table_code(c10::ScalarType type) {
    switch (type) {
        case c10::ScalarType::Float: return EMB_DTYPE_FLOAT32;
        case c10::ScalarType::Double: return EMB_DTYPE_FLOAT64;
        case c10::ScalarType::Half: return EMB_DTYPE_FLOAT16;
        case c10::ScalarType::BFloat16: return EMB_DTYPE_BFLOAT16;
        default: return 0;
    }
}

// The library's dtype code of an index tensor, or 0.
int32_t index_code(c10::ScalarType type) {
    switch (type) {
        case c10::ScalarType::Int: return EMB_DTYPE_INT32;
        case c10::ScalarType::Long: return EMB_DTYPE_INT64;
        default: return 0;
    }
}

// A dense, contiguous CPU tensor: its data pointer is all the library needs.
bool plain(const at::Tensor& tensor) {
    return tensor.layout() == c10::kStrided && tensor.device().is_cpu() && tensor.is_contiguous();
}

// A new result of the table's type, or an undefined tensor when it is too large for this path.
at::Tensor new_result(const at::Tensor& weight, at::IntArrayRef shape, int64_t elements) {
    if (elements * static_cast<int64_t>(weight.element_size()) >= library.max_result_bytes) {
        return at::Tensor();
    }
    return at::empty(shape, weight.options());
}

// torch.nn.functional.embedding(indices, weight) of a plain call; None when it is not one.
c10::optional<at::Tensor> embedding(const at::Tensor& weight, const at::Tensor& indices) {
    int32_t weight_dtype = table_code(weight.scalar_type());
    int32_t index_dtype = index_code(indices.scalar_type());
    if (library.embedding == nullptr || weight_dtype == 0 || index_dtype == 0 || weight.dim() != 2
            || !plain(weight) || !plain(indices) || weight.size(0) == 0 || weight.size(1) == 0) {
        return c10::nullopt;
    }
    int64_t rows = weight.size(0), dim = weight.size(1), count = indices.numel();
    std::vector<int64_t> shape(indices.sizes().begin(), indices.sizes().end());
    shape.push_back(dim);
    at::Tensor out = new_result(weight, shape, count * dim);
    if (!out.defined()) {
        return c10::nullopt;
    }
    int32_t status = library.embedding(weight.data_ptr(), weight_dtype, rows, dim, indices.data_ptr(), index_dtype,
                                       count, out.data_ptr(), count * dim);
    if (status != EMB_OK) {
        return c10::nullopt;
    }
    return out;
}

// torch.nn.functional.embedding_bag(indices, weight, offsets, mode=..., per_sample_weights=...) of a
// plain call (mode: EMB_BAG_SUM, _MEAN or _MAX); None when it is not one.
c10::optional<at::Tensor> embedding_bag(const at::Tensor& weight, const at::Tensor& indices, const at::Tensor& offsets,
                                        int64_t mode, const c10::optional<at::Tensor>& per_sample_weights) {
    int32_t weight_dtype = table_code(weight.scalar_type());
    int32_t index_dtype = index_code(indices.scalar_type());
    int32_t offsets_dtype = index_code(offsets.scalar_type());
    if (library.embedding_bag == nullptr || weight_dtype == 0 || index_dtype == 0 || offsets_dtype == 0
            || weight.dim() != 2 || indices.dim() != 1 || offsets.dim() != 1 || offsets.numel() == 0
            || !plain(weight) || !plain(indices) || !plain(offsets) || weight.size(0) == 0 || weight.size(1) == 0) {
        return c10::nullopt;
    }
    const void* weights = nullptr;
    if (per_sample_weights.has_value()) {
        const at::Tensor& w = *per_sample_weights;
        if (mode != EMB_BAG_SUM || w.scalar_type() != weight.scalar_type() || w.dim() != 1
                || w.numel() != indices.numel() || !plain(w)) {
            return c10::nullopt;
        }
        weights = w.data_ptr();
    }
    emb_bags bags = {};
    bags.indices = indices.data_ptr();
    bags.num_indices = indices.numel();
    bags.index_dtype = index_dtype;
    bags.offsets = offsets.data_ptr();
    bags.offsets_dtype = offsets_dtype;
    bags.num_offsets = offsets.numel();
    bags.per_sample_weights = weights;
    bags.padding_idx = EMB_NO_PADDING;
    int64_t rows = weight.size(0), dim = weight.size(1), num_bags = offsets.numel();
    at::Tensor out = new_result(weight, {num_bags, dim}, num_bags * dim);
    if (!out.defined()) {
        return c10::nullopt;
    }
    int32_t status = library.embedding_bag(weight.data_ptr(), weight_dtype, rows, dim, &bags, static_cast<int32_t>(mode),
                                           out.data_ptr(), num_bags * dim, nullptr, 0);
    if (status != EMB_OK) {
        return c10::nullopt;
    }
    return out;
}

// Binds the operators to the library at `path` (the one the Python package opened; opening it again
// returns the same handle). Returns its version number; 0 if it cannot be opened or lacks a function.
int64_t bind(const std::string& path, int64_t max_result_bytes) {
    void* handle = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (handle == nullptr) {
        return 0;
    }
    auto version = reinterpret_cast<decltype(&emb_version_number)>(dlsym(handle, "emb_version_number"));
    library.embedding = reinterpret_cast<decltype(&emb_embedding)>(dlsym(handle, "emb_embedding"));
    library.embedding_bag = reinterpret_cast<decltype(&emb_embedding_bag)>(dlsym(handle, "emb_embedding_bag"));
    library.max_result_bytes = max_result_bytes;
    if (version == nullptr || library.embedding == nullptr || library.embedding_bag == nullptr) {
        library = Library();
        return 0;
    }
    return version();
}

}  // namespace

// Catch-all kernels: every backend reaches them (a sparse or meta tensor too), and they answer None
// to anything that is not a plain call on dense CPU memory.
TORCH_LIBRARY(embedding_native_plain, m) {
    m.def("bind(str path, int max_result_bytes) -> int", bind);
    m.def("embedding(Tensor weight, Tensor indices) -> Tensor?", embedding);
    m.def("embedding_bag(Tensor weight, Tensor indices, Tensor offsets, int mode, Tensor? per_sample_weights) -> Tensor?",
          embedding_bag);
}
