"""The drop-ins' operations as operators of torch's dispatcher, ``torch.ops.embedding_native.*``,
so that ``torch.jit.trace`` records them as graph nodes and ``torch.jit.script`` can call them::

    embedding_native::embedding(Tensor(a!) weight, Tensor indices, int padding_idx=-1, float? max_norm=None,
                                float norm_type=2., bool scale_grad_by_freq=False, bool sparse=False) -> Tensor
    embedding_native::embedding_bag(Tensor(a!) weight, Tensor input, Tensor? offsets=None, float? max_norm=None,
                                    float norm_type=2., bool scale_grad_by_freq=False, str mode="mean",
                                    bool sparse=False, Tensor? per_sample_weights=None,
                                    bool include_last_offset=False, int? padding_idx=None) -> Tensor

Each is ``F.embedding`` / ``F.embedding_bag``'s argument list (embedding's padding_idx already
normalised, -1 for none); ``weight`` is marked as written because max_norm renormalises its rows
in place. The kernel is registered as CompositeImplicitAutograd: it is the eager function itself
(native kernels, the autograd.Function's gradients, torch's errors), for every backend key, so a
traced or scripted graph computes and differentiates exactly what eager code does. A saved
graph names these operators: the process that loads it must ``import embedding_native.torch``
first (torch.jit.load raises "Unknown builtin op: embedding_native::embedding_bag" otherwise).

torch 1.13's Python kernels receive the arguments with the trailing ones equal to the schema's
defaults left off, so the kernels repeat the defaults.
"""

from typing import Optional

import torch

NAMESPACE = "embedding_native"

_EMBEDDING_SCHEMA = ("embedding(Tensor(a!) weight, Tensor indices, int padding_idx=-1, float? max_norm=None, "
                     "float norm_type=2., bool scale_grad_by_freq=False, bool sparse=False) -> Tensor")
_EMBEDDING_BAG_SCHEMA = ("embedding_bag(Tensor(a!) weight, Tensor input, Tensor? offsets=None, float? max_norm=None, "
                         "float norm_type=2., bool scale_grad_by_freq=False, str mode=\"mean\", bool sparse=False, "
                         "Tensor? per_sample_weights=None, bool include_last_offset=False, "
                         "int? padding_idx=None) -> Tensor")


def _embedding_kernel(weight, indices, padding_idx=-1, max_norm=None, norm_type=2.0, scale_grad_by_freq=False,
                      sparse=False):
    from . import _eager_embedding
    return _eager_embedding(indices, weight, None if padding_idx == -1 else padding_idx, max_norm, norm_type,
                            scale_grad_by_freq, sparse)


def _embedding_bag_kernel(weight, input, offsets=None, max_norm=None, norm_type=2.0, scale_grad_by_freq=False,
                          mode="mean", sparse=False, per_sample_weights=None, include_last_offset=False,
                          padding_idx=None):
    from . import _eager_embedding_bag
    return _eager_embedding_bag(input, weight, offsets, max_norm, norm_type, scale_grad_by_freq, mode, sparse,
                                per_sample_weights, include_last_offset, padding_idx)


def _register():
    """The library, defined once per process (kept alive: dropping it unregisters the kernels)."""
    library = torch.library.Library(NAMESPACE, "DEF")
    library.define(_EMBEDDING_SCHEMA)
    library.define(_EMBEDDING_BAG_SCHEMA)
    library.impl("embedding", _embedding_kernel, "CompositeImplicitAutograd")
    library.impl("embedding_bag", _embedding_bag_kernel, "CompositeImplicitAutograd")
    return library


# A reload of this module keeps the library it registered (a namespace is defined once per
# process, and dropping the object would unregister the operators).
_LIBRARY = globals().get("_LIBRARY") or _register()
operators = getattr(torch.ops, NAMESPACE)


def operator_padding_idx(padding_idx: Optional[int], num_embeddings: int) -> int:
    """F.embedding's padding_idx check and normalisation, -1 for none (TorchScript-compatible:
    the scripted functional calls it)."""
    if padding_idx is None:
        return -1
    if padding_idx >= 0:
        assert padding_idx < num_embeddings, "Padding_idx must be within num_embeddings"
        return padding_idx
    assert padding_idx >= -num_embeddings, "Padding_idx must be within num_embeddings"
    return padding_idx + num_embeddings


def is_tracing():
    """True while torch.jit.trace records (the eager functions then call the operators)."""
    return torch._C._get_tracing_state() is not None


def untraced(function, *arguments):
    """``function(*arguments)`` with the tracer paused (its sizes and comparisons not recorded)."""
    state = torch._C._get_tracing_state()
    torch._C._set_tracing_state(None)
    try:
        return function(*arguments)
    finally:
        torch._C._set_tracing_state(state)


def _is_float_or_none(value):
    return value is None or (type(value) in (int, float))


def traceable_embedding(weight, input, padding_idx, max_norm, norm_type, scale_grad_by_freq, sparse):
    """Whether the arguments fit the operator's schema as they are (otherwise the eager function
    runs, and raises torch's error or records nothing new)."""
    return (type(weight) in (torch.Tensor, torch.nn.Parameter) and type(input) is torch.Tensor
            and weight.layout is torch.strided and type(padding_idx) is int and _is_float_or_none(max_norm)
            and type(norm_type) in (int, float) and type(scale_grad_by_freq) is bool and type(sparse) is bool)


def traceable_embedding_bag(input, weight, offsets, max_norm, norm_type, scale_grad_by_freq, mode, sparse,
                            per_sample_weights, include_last_offset, padding_idx):
    """As traceable_embedding, for embedding_bag."""
    return (type(weight) in (torch.Tensor, torch.nn.Parameter) and type(input) is torch.Tensor
            and weight.layout is torch.strided and (offsets is None or type(offsets) is torch.Tensor)
            and (per_sample_weights is None or isinstance(per_sample_weights, torch.Tensor))
            and _is_float_or_none(max_norm) and type(norm_type) in (int, float) and type(mode) is str
            and type(scale_grad_by_freq) is bool and type(sparse) is bool and type(include_last_offset) is bool
            and (padding_idx is None or type(padding_idx) is int))
