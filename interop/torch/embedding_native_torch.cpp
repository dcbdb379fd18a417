// The plain calls of embedding_native's functional API for torch tensors, as a Python extension.
//
// From Python, a call through ctypes pays for its arguments one by one (about 80 ns each) and for
// every tensor's address and the result's allocation in Python (torch.empty alone is 0.9 µs), so a
// tiny lookup took twice torch's time (bench/results/python-call-floor.md). These functions take the
// tensors themselves (pybind11 with torch's tensor conversions), allocate the result in C++ and call
// the library directly; large calls release the GIL meanwhile.
//
// They cover the functional API's plain calls on contiguous CPU tensors: embedding without options;
// embedding_bag with 1-D indices and offsets, no options, per-sample weights in sum mode; the dense
// and sparse gradients and the bag's dense gradient without a padding row; coalescing; renorm; the
// quantized (8-, 4-, 2-bit rows) bag of a packed uint8 table; the drop-ins' trainable lookup as a C++
// autograd function. Anything else, and any call the library refuses, returns None and has written
// nothing: the Python caller then takes its checked path, which raises torch's error. The library is
// the one the Python package loaded (bind() takes its path), so both paths run the same tier.
//
// Built by `make python-package` against Debian's libtorch-dev (torch 1.13) and Python's headers; the
// Python package loads it only into the torch it was built for (embedding_native/_torch_operators.py).

#include <torch/extension.h>

#include <dlfcn.h>

#include <cstdint>
#include <string>
#include <vector>

#include "embedding_native.h"

namespace {

struct Library {
    decltype(&emb_embedding) embedding = nullptr;
    decltype(&emb_embedding_bag) embedding_bag = nullptr;
    decltype(&emb_embedding_backward) embedding_backward = nullptr;
    decltype(&emb_embedding_backward_sparse) embedding_backward_sparse = nullptr;
    decltype(&emb_sparse_coalesce) sparse_coalesce = nullptr;
    decltype(&emb_embedding_renorm) embedding_renorm = nullptr;
    decltype(&emb_embedding_bag_backward) embedding_bag_backward = nullptr;
    decltype(&emb_quantized_embedding_bag) quantized_embedding_bag = nullptr;
    // Results of this many bytes or more are left to Python, which maps fresh memory for them.
    int64_t max_result_bytes = 0;
};

Library library;

// Library calls with at least this many elements of work run without the GIL, so other Python threads
// go on meanwhile (ctypes releases it for every call); smaller ones keep it, which costs less.
constexpr int64_t kReleaseGilElements = 16384;

// Runs `call` (one library call), without the GIL when it has `elements` of work or more and this
// thread holds the GIL (the autograd engine's threads run backward functions without it).
template <class Call>
int32_t run(int64_t elements, Call&& call) {
    if (elements >= kReleaseGilElements && PyGILState_Check()) {
        pybind11::gil_scoped_release released;
        return call();
    }
    return call();
}

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

// Whether a result of `elements` elements of `like`'s type is small enough for this path.
bool small(const at::Tensor& like, int64_t elements) {
    return elements * static_cast<int64_t>(like.element_size()) < library.max_result_bytes;
}

// A new result of the table's type, or an undefined tensor when it is too large for this path.
at::Tensor new_result(const at::Tensor& weight, at::IntArrayRef shape, int64_t elements) {
    return small(weight, elements) ? at::empty(shape, weight.options()) : at::Tensor();
}

// A dense gradient's destination: `out` (plain, of grad's type and shape (rows, dim)), or new zeros
// that the library adds into, which gives the bits of overwriting (+0.0 + g) without a second
// clear. Undefined when neither fits. Sets `accumulate` to what the library is to do.
at::Tensor gradient_out(const at::Tensor& grad, int64_t rows, int64_t dim, const c10::optional<at::Tensor>& out,
                        bool& accumulate) {
    if (out.has_value()) {
        const at::Tensor& o = *out;
        bool fits = plain(o) && o.scalar_type() == grad.scalar_type() && o.dim() == 2 && o.size(0) == rows
                    && o.size(1) == dim;
        return fits ? o : at::Tensor();
    }
    if (accumulate || !small(grad, rows * dim)) {
        return at::Tensor();  // accumulate needs out=: the checked path says so
    }
    accumulate = true;
    return at::zeros({rows, dim}, grad.options());
}

// The first `count` rows of `tensor` (a view; the tensor itself when it has that many).
at::Tensor first_rows(const at::Tensor& tensor, int64_t count) {
    return count == tensor.size(0) ? tensor : tensor.narrow(0, 0, count);
}

// grad_output of shape indices.shape + (D,), both plain, grad of a table type: D, or -1.
int64_t gradient_width(const at::Tensor& grad, const at::Tensor& indices) {
    if (table_code(grad.scalar_type()) == 0 || index_code(indices.scalar_type()) == 0 || !plain(grad)
            || !plain(indices) || grad.dim() != indices.dim() + 1) {
        return -1;
    }
    for (int64_t d = 0; d < indices.dim(); d++) {
        if (grad.size(d) != indices.size(d)) {
            return -1;
        }
    }
    return grad.size(-1);
}

// The library's bags of 1-D indices and offsets (no padding row, no include_last_offset).
emb_bags plain_bags(const at::Tensor& indices, const at::Tensor& offsets, const void* per_sample_weights) {
    emb_bags bags = {};
    bags.indices = indices.data_ptr();
    bags.num_indices = indices.numel();
    bags.index_dtype = index_code(indices.scalar_type());
    bags.offsets = offsets.data_ptr();
    bags.offsets_dtype = index_code(offsets.scalar_type());
    bags.num_offsets = offsets.numel();
    bags.per_sample_weights = per_sample_weights;
    bags.padding_idx = EMB_NO_PADDING;
    return bags;
}

// Per-sample weights a plain bag takes: none, or (sum mode only) one plain 1-D `type` weight per index.
// False when they do not fit; `address` is their data (nullptr for none).
bool plain_weights(const c10::optional<at::Tensor>& per_sample_weights, int64_t mode, c10::ScalarType type,
                   const at::Tensor& indices, const void*& address) {
    address = nullptr;
    if (!per_sample_weights.has_value()) {
        return true;
    }
    const at::Tensor& w = *per_sample_weights;
    if (mode != EMB_BAG_SUM || w.scalar_type() != type || w.dim() != 1 || w.numel() != indices.numel() || !plain(w)) {
        return false;
    }
    address = w.data_ptr();
    return true;
}

// torch.nn.functional.embedding(indices, weight) of a plain call, into `out` when given (plain, of the
// table's type and the result's shape); None when it is not one.
c10::optional<at::Tensor> embedding(const at::Tensor& weight, const at::Tensor& indices,
                                    const c10::optional<at::Tensor>& out) {
    int32_t weight_dtype = table_code(weight.scalar_type());
    int32_t index_dtype = index_code(indices.scalar_type());
    if (library.embedding == nullptr || weight_dtype == 0 || index_dtype == 0 || weight.dim() != 2
            || !plain(weight) || !plain(indices) || weight.size(0) == 0 || weight.size(1) == 0) {
        return c10::nullopt;
    }
    int64_t rows = weight.size(0), dim = weight.size(1), count = indices.numel();
    std::vector<int64_t> shape(indices.sizes().begin(), indices.sizes().end());
    shape.push_back(dim);
    at::Tensor result;
    if (out.has_value()) {
        if (plain(*out) && out->scalar_type() == weight.scalar_type() && out->sizes() == at::IntArrayRef(shape)) {
            result = *out;
        }
    } else {
        result = new_result(weight, shape, count * dim);
    }
    if (!result.defined()) {
        return c10::nullopt;
    }
    int32_t status = run(count * dim, [&] {
        return library.embedding(weight.data_ptr(), weight_dtype, rows, dim, indices.data_ptr(), index_dtype,
                                 count, result.data_ptr(), count * dim);
    });
    if (status != EMB_OK) {
        return c10::nullopt;
    }
    return result;
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
    const void* weights;
    if (!plain_weights(per_sample_weights, mode, weight.scalar_type(), indices, weights)) {
        return c10::nullopt;
    }
    emb_bags bags = plain_bags(indices, offsets, weights);
    int64_t rows = weight.size(0), dim = weight.size(1), num_bags = offsets.numel();
    at::Tensor out = new_result(weight, {num_bags, dim}, num_bags * dim);
    if (!out.defined()) {
        return c10::nullopt;
    }
    int32_t status = run(indices.numel() * dim, [&] {
        return library.embedding_bag(weight.data_ptr(), weight_dtype, rows, dim, &bags, static_cast<int32_t>(mode),
                                     out.data_ptr(), num_bags * dim, nullptr, 0);
    });
    if (status != EMB_OK) {
        return c10::nullopt;
    }
    return out;
}

// embedding_backward(grad_output, indices, num_weights, scale_grad_by_freq=..., out=..., accumulate=...)
// without a padding row; None when it is not a plain call.
c10::optional<at::Tensor> embedding_backward(const at::Tensor& grad, const at::Tensor& indices, int64_t num_weights,
                                             bool scale_grad_by_freq, const c10::optional<at::Tensor>& out,
                                             bool accumulate) {
    int64_t dim = gradient_width(grad, indices);
    if (library.embedding_backward == nullptr || dim < 0 || num_weights < 0) {
        return c10::nullopt;
    }
    at::Tensor result = gradient_out(grad, num_weights, dim, out, accumulate);
    if (!result.defined()) {
        return c10::nullopt;
    }
    int32_t flags = (scale_grad_by_freq ? EMB_SCALE_GRAD_BY_FREQ : 0) | (accumulate ? EMB_ACCUMULATE : 0);
    int32_t status = run(indices.numel() * dim, [&] {
        return library.embedding_backward(grad.data_ptr(), table_code(grad.scalar_type()), indices.numel(), dim,
                                          indices.data_ptr(), index_code(indices.scalar_type()), num_weights,
                                          EMB_NO_PADDING, flags, result.data_ptr(), num_weights * dim);
    });
    if (status != EMB_OK) {
        return c10::nullopt;
    }
    return result;
}

// embedding_sparse_backward(grad_output, indices, num_weights, scale_grad_by_freq=...) without a padding
// row: [rows, values] in torch's uncoalesced layout; [] when it is not a plain call.
std::vector<at::Tensor> embedding_sparse_backward(const at::Tensor& grad, const at::Tensor& indices,
                                                  int64_t num_weights, bool scale_grad_by_freq) {
    int64_t dim = gradient_width(grad, indices), count = indices.numel();
    if (library.embedding_backward_sparse == nullptr || dim < 0 || num_weights < 0 || !small(grad, count * dim)) {
        return {};
    }
    at::Tensor rows = at::empty({count}, indices.options().dtype(at::kLong));
    at::Tensor values = at::empty({count, dim}, grad.options());
    int64_t nnz = 0;
    int32_t status = run(count * dim, [&] {
        return library.embedding_backward_sparse(
            grad.data_ptr(), table_code(grad.scalar_type()), count, dim, indices.data_ptr(),
            index_code(indices.scalar_type()), num_weights, EMB_NO_PADDING,
            scale_grad_by_freq ? EMB_SCALE_GRAD_BY_FREQ : 0, rows.data_ptr<int64_t>(), values.data_ptr(), count, &nnz);
    });
    if (status != EMB_OK) {
        return {};
    }
    return {first_rows(rows, nnz), first_rows(values, nnz)};
}

// sparse_coalesce(rows, values, num_weights) of int64 rows: [unique rows, summed values]; [] when it is
// not a plain call.
std::vector<at::Tensor> sparse_coalesce(const at::Tensor& rows, const at::Tensor& values, int64_t num_weights) {
    int32_t values_dtype = table_code(values.scalar_type());
    if (library.sparse_coalesce == nullptr || values_dtype == 0 || rows.scalar_type() != at::kLong || !plain(rows)
            || !plain(values) || rows.dim() != 1 || values.dim() != 2 || values.size(0) != rows.size(0)
            || !small(values, values.numel())) {
        return {};
    }
    int64_t nnz = values.size(0), dim = values.size(1), count = 0;
    at::Tensor unique = at::empty({nnz}, rows.options());
    at::Tensor summed = at::empty({nnz, dim}, values.options());
    int32_t status = run(nnz * dim, [&] {
        return library.sparse_coalesce(rows.data_ptr<int64_t>(), values.data_ptr(), values_dtype, nnz, dim,
                                       num_weights, unique.data_ptr<int64_t>(), summed.data_ptr(), nnz, &count);
    });
    if (status != EMB_OK) {
        return {};
    }
    return {first_rows(unique, count), first_rows(summed, count)};
}

// embedding_renorm_(weight, indices, max_norm, norm_type) of a contiguous table, in place, bumping the
// table's autograd version as torch's in-place op does. False when it is not a plain call (nothing changed).
bool embedding_renorm(const at::Tensor& weight, const at::Tensor& indices, double max_norm, double norm_type) {
    int32_t weight_dtype = table_code(weight.scalar_type());
    int32_t index_dtype = index_code(indices.scalar_type());
    if (library.embedding_renorm == nullptr || weight_dtype == 0 || index_dtype == 0 || weight.dim() != 2
            || !plain(weight) || !plain(indices)) {
        return false;
    }
    int32_t status = run(indices.numel() * weight.size(1), [&] {
        return library.embedding_renorm(weight.data_ptr(), weight_dtype, weight.size(0), weight.size(1),
                                        indices.data_ptr(), index_dtype, indices.numel(), max_norm, norm_type);
    });
    if (status != EMB_OK) {
        return false;
    }
    if (indices.numel() > 0) {
        weight.unsafeGetTensorImpl()->bump_version();
    }
    return true;
}

// embedding_bag_backward(grad_output, indices, num_weights, offsets, mode, per_sample_weights=...,
// scale_grad_by_freq=..., max_indices=..., out=..., accumulate=...) of 1-D indices and offsets without a
// padding row or include_last_offset; None when it is not a plain call.
c10::optional<at::Tensor> embedding_bag_backward(const at::Tensor& grad, const at::Tensor& indices,
                                                 int64_t num_weights, const at::Tensor& offsets, int64_t mode,
                                                 const c10::optional<at::Tensor>& per_sample_weights,
                                                 bool scale_grad_by_freq, const c10::optional<at::Tensor>& max_indices,
                                                 const c10::optional<at::Tensor>& out, bool accumulate) {
    int32_t index_dtype = index_code(indices.scalar_type());
    int32_t offsets_dtype = index_code(offsets.scalar_type());
    if (library.embedding_bag_backward == nullptr || grad.scalar_type() != at::kFloat || index_dtype == 0
            || offsets_dtype == 0 || !plain(grad) || !plain(indices) || !plain(offsets) || grad.dim() != 2
            || indices.dim() != 1 || offsets.dim() != 1 || grad.size(0) != offsets.numel() || num_weights < 0) {
        return c10::nullopt;
    }
    int64_t num_bags = grad.size(0), dim = grad.size(1);
    const void* weights;
    if (!plain_weights(per_sample_weights, mode, at::kFloat, indices, weights)) {
        return c10::nullopt;
    }
    const int64_t* rows = nullptr;
    if (mode == EMB_BAG_MAX) {
        if (!max_indices.has_value()) {
            return c10::nullopt;
        }
        const at::Tensor& m = *max_indices;
        if (m.scalar_type() != at::kLong || !plain(m) || m.dim() != 2 || m.size(0) != num_bags || m.size(1) != dim) {
            return c10::nullopt;
        }
        rows = m.data_ptr<int64_t>();
    }
    at::Tensor result = gradient_out(grad, num_weights, dim, out, accumulate);
    if (!result.defined()) {
        return c10::nullopt;
    }
    emb_bags bags = plain_bags(indices, offsets, weights);
    int32_t flags = (scale_grad_by_freq ? EMB_SCALE_GRAD_BY_FREQ : 0) | (accumulate ? EMB_ACCUMULATE : 0);
    int32_t status = run(indices.numel() * dim, [&] {
        return library.embedding_bag_backward(grad.data_ptr(), EMB_DTYPE_FLOAT32, num_weights, dim, &bags,
                                              static_cast<int32_t>(mode), rows, flags, result.data_ptr(),
                                              num_weights * dim);
    });
    if (status != EMB_OK) {
        return c10::nullopt;
    }
    return result;
}

// embedding_bag_{byte,4bit,2bit}_rowwise_offsets(packed, indices, offsets, mode=..., per_sample_weights=...)
// of a packed uint8 table (torch's layout, `bits` 8, 4 or 2), 1-D indices and offsets, not pruned, float32
// per-sample weights; None when it is not a plain call.
c10::optional<at::Tensor> quantized_embedding_bag(const at::Tensor& packed, int64_t bits, const at::Tensor& indices,
                                                  const at::Tensor& offsets, int64_t mode,
                                                  const c10::optional<at::Tensor>& per_sample_weights) {
    int32_t index_dtype = index_code(indices.scalar_type());
    int32_t offsets_dtype = index_code(offsets.scalar_type());
    if (library.quantized_embedding_bag == nullptr || (bits != 8 && bits != 4 && bits != 2)
            || (mode != EMB_BAG_SUM && mode != EMB_BAG_MEAN) || packed.scalar_type() != at::kByte || index_dtype == 0
            || offsets_dtype == 0 || packed.dim() != 2 || indices.dim() != 1 || offsets.dim() != 1
            || offsets.numel() == 0 || !plain(packed) || !plain(indices) || !plain(offsets)) {
        return c10::nullopt;
    }
    // torch's dimension: every code slot before the scale and bias (two float32, or two float16 below 8 bits).
    int64_t scale_bias = bits == 8 ? 8 : 4;
    int64_t dim = (packed.size(1) - scale_bias) * (8 / bits);
    if (dim <= 0) {
        return c10::nullopt;
    }
    const void* weights;
    if (!plain_weights(per_sample_weights, mode, at::kFloat, indices, weights)) {
        return c10::nullopt;
    }
    int64_t num_bags = offsets.numel();
    if (num_bags * dim * static_cast<int64_t>(sizeof(float)) >= library.max_result_bytes) {
        return c10::nullopt;
    }
    at::Tensor out = at::empty({num_bags, dim}, packed.options().dtype(at::kFloat));
    emb_bags bags = plain_bags(indices, offsets, weights);
    int32_t status = run(indices.numel() * dim, [&] {
        return library.quantized_embedding_bag(packed.data_ptr(), static_cast<int32_t>(bits), packed.size(0), dim,
                                               &bags, static_cast<int32_t>(mode), nullptr, 0,
                                               out.data_ptr<float>(), num_bags * dim);
    });
    if (status != EMB_OK) {
        return c10::nullopt;
    }
    return out;
}

// The drop-in's trainable lookup (torch.embedding with a dense gradient) as a C++ autograd function,
// so that neither the forward nor the backward runs Python: EmbeddingFunction's backward is
// DenseGradient (embedding_dense_backward), whose backward is the lookup of the incoming rows again
// (torch's embedding_dense_double_backward: zero at padding positions, no frequency scaling).
struct Refused : std::exception {};

// The rows of `weight` at `indices` through the library; throws Refused when it refuses the call.
at::Tensor gather_or_refuse(const at::Tensor& weight, const at::Tensor& indices) {
    c10::optional<at::Tensor> rows = embedding(weight, indices, c10::nullopt);
    if (!rows.has_value()) {
        throw Refused();
    }
    return *rows;
}

struct DenseGradient : torch::autograd::Function<DenseGradient> {
    static at::Tensor forward(torch::autograd::AutogradContext* ctx, const at::Tensor& grad_output,
                              const at::Tensor& indices, int64_t num_weights, int64_t padding_idx,
                              bool scale_grad_by_freq) {
        ctx->save_for_backward({indices});
        ctx->saved_data["padding_idx"] = padding_idx;
        return compute(grad_output, indices, num_weights, padding_idx, scale_grad_by_freq);
    }

    // The gradient itself (no graph): zeros of (num_weights, D) the library adds into.
    static at::Tensor compute(const at::Tensor& grad_output, const at::Tensor& indices, int64_t num_weights,
                              int64_t padding_idx, bool scale_grad_by_freq) {
        at::Tensor grad = grad_output.contiguous();
        int64_t dim = grad.size(-1);
        at::Tensor result = at::zeros({num_weights, dim}, grad.options());
        int32_t flags = EMB_ACCUMULATE | (scale_grad_by_freq ? EMB_SCALE_GRAD_BY_FREQ : 0);
        int32_t status = run(indices.numel() * dim, [&] {
            return library.embedding_backward(grad.data_ptr(), table_code(grad.scalar_type()), indices.numel(),
                                              dim, indices.data_ptr(), index_code(indices.scalar_type()),
                                              num_weights, padding_idx, flags, result.data_ptr(),
                                              num_weights * dim);
        });
        TORCH_CHECK(status == EMB_OK, "embedding_native: the dense gradient failed (status ", status, ")");
        return result;
    }

    static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                   torch::autograd::variable_list grads);
};

struct EmbeddingFunction : torch::autograd::Function<EmbeddingFunction> {
    static at::Tensor forward(torch::autograd::AutogradContext* ctx, const at::Tensor& weight, const at::Tensor& indices,
                              int64_t padding_idx, bool scale_grad_by_freq) {
        at::Tensor rows = gather_or_refuse(weight, indices);
        ctx->save_for_backward({indices});
        ctx->saved_data["num_weights"] = weight.size(0);
        ctx->saved_data["padding_idx"] = padding_idx;
        ctx->saved_data["scale_grad_by_freq"] = scale_grad_by_freq;
        return rows;
    }

    static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                   torch::autograd::variable_list grads) {
        at::Tensor indices = ctx->get_saved_variables()[0];
        int64_t num_weights = ctx->saved_data["num_weights"].toInt(), padding_idx = ctx->saved_data["padding_idx"].toInt();
        bool scale_grad_by_freq = ctx->saved_data["scale_grad_by_freq"].toBool();
        // A node for the gradient only when a graph is being recorded (create_graph=True).
        at::Tensor grad = at::GradMode::is_enabled()
            ? DenseGradient::apply(grads[0], indices, num_weights, padding_idx, scale_grad_by_freq)
            : DenseGradient::compute(grads[0], indices, num_weights, padding_idx, scale_grad_by_freq);
        return {grad, at::Tensor(), at::Tensor(), at::Tensor()};
    }
};

torch::autograd::variable_list DenseGradient::backward(torch::autograd::AutogradContext* ctx,
                                                       torch::autograd::variable_list grads) {
    at::Tensor indices = ctx->get_saved_variables()[0];
    at::Tensor incoming = grads[0].layout() == c10::kStrided ? grads[0].contiguous() : grads[0].to_dense();
    at::Tensor rows = EmbeddingFunction::apply(incoming, indices, -1, false);
    int64_t padding_idx = ctx->saved_data["padding_idx"].toInt();
    if (padding_idx >= 0) {
        rows = rows.masked_fill(indices.eq(padding_idx).unsqueeze(-1), 0);
    }
    return {rows, at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor()};
}

// embedding_native.torch.embedding(input, weight, padding_idx, scale_grad_by_freq=..., sparse=False) of a
// plain call on a table that needs a gradient, with a gradient small enough for this path (padding_idx
// normalised, -1 for none); None when it is not one.
c10::optional<at::Tensor> trainable_embedding(const at::Tensor& weight, const at::Tensor& indices, int64_t padding_idx,
                                              bool scale_grad_by_freq) {
    if (library.embedding == nullptr || table_code(weight.scalar_type()) == 0 || weight.dim() != 2
            || !small(weight, weight.numel())) {
        return c10::nullopt;
    }
    try {
        return EmbeddingFunction::apply(weight, indices, padding_idx, scale_grad_by_freq);
    } catch (const Refused&) {
        return c10::nullopt;
    }
}

// Binds the functions to the library at `path` (the one the Python package opened; opening it again
// returns the same handle). Returns its version number; 0 if it cannot be opened or lacks a function.
int64_t bind(const std::string& path, int64_t max_result_bytes) {
    void* handle = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (handle == nullptr) {
        return 0;
    }
    auto version = reinterpret_cast<decltype(&emb_version_number)>(dlsym(handle, "emb_version_number"));
    library.embedding = reinterpret_cast<decltype(&emb_embedding)>(dlsym(handle, "emb_embedding"));
    library.embedding_bag = reinterpret_cast<decltype(&emb_embedding_bag)>(dlsym(handle, "emb_embedding_bag"));
    library.embedding_backward = reinterpret_cast<decltype(&emb_embedding_backward)>(
        dlsym(handle, "emb_embedding_backward"));
    library.embedding_backward_sparse = reinterpret_cast<decltype(&emb_embedding_backward_sparse)>(
        dlsym(handle, "emb_embedding_backward_sparse"));
    library.sparse_coalesce = reinterpret_cast<decltype(&emb_sparse_coalesce)>(dlsym(handle, "emb_sparse_coalesce"));
    library.embedding_renorm = reinterpret_cast<decltype(&emb_embedding_renorm)>(dlsym(handle, "emb_embedding_renorm"));
    library.embedding_bag_backward = reinterpret_cast<decltype(&emb_embedding_bag_backward)>(
        dlsym(handle, "emb_embedding_bag_backward"));
    library.quantized_embedding_bag = reinterpret_cast<decltype(&emb_quantized_embedding_bag)>(
        dlsym(handle, "emb_quantized_embedding_bag"));
    library.max_result_bytes = max_result_bytes;
    if (version == nullptr || library.embedding == nullptr || library.embedding_bag == nullptr
            || library.quantized_embedding_bag == nullptr || library.embedding_backward == nullptr || library.embedding_backward_sparse == nullptr
            || library.sparse_coalesce == nullptr || library.embedding_renorm == nullptr
            || library.embedding_bag_backward == nullptr) {
        library = Library();
        return 0;
    }
    return version();
}

}  // namespace

// A Python extension module through pybind11, as torch's own bindings are: a tiny call costs about
// 0.9 µs less than through torch's dispatcher (torch.ops), which checks every argument against a
// schema and boxes it. Every tensor reaches the functions (a sparse or meta one too); they answer None
// to anything that is not a plain call on dense CPU memory.
PYBIND11_MODULE(libembedding_native_torch, m) {
    m.def("bind", &bind, "bind(path, max_result_bytes): use the library at path; returns its version number");
    m.def("embedding", &embedding);
    m.def("embedding_bag", &embedding_bag);
    m.def("embedding_backward", &embedding_backward);
    m.def("embedding_sparse_backward", &embedding_sparse_backward);
    m.def("sparse_coalesce", &sparse_coalesce);
    m.def("embedding_renorm", &embedding_renorm);
    m.def("embedding_bag_backward", &embedding_bag_backward);
    m.def("quantized_embedding_bag", &quantized_embedding_bag);
    m.def("trainable_embedding", &trainable_embedding);
}
