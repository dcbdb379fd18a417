"""The argument lists torch 1.13 prints for its modules, shared by the numpy modules and the torch
drop-ins so ``repr`` matches ``torch.nn.Embedding`` / ``torch.nn.EmbeddingBag`` exactly."""


def embedding_extra_repr(module):
    """``Embedding(4, 3, padding_idx=0, max_norm=1.0, norm_type=1.0, scale_grad_by_freq=True, sparse=True)``:
    defaults are left out, norm_type only when it is not 2."""
    s = "{num_embeddings}, {embedding_dim}"
    if module.padding_idx is not None:
        s += ", padding_idx={padding_idx}"
    if module.max_norm is not None:
        s += ", max_norm={max_norm}"
    if module.norm_type != 2:
        s += ", norm_type={norm_type}"
    if module.scale_grad_by_freq is not False:
        s += ", scale_grad_by_freq={scale_grad_by_freq}"
    if module.sparse is not False:
        s += ", sparse=True"
    return s.format(**module.__dict__)


def embedding_bag_extra_repr(module):
    """``EmbeddingBag(4, 3, max_norm=2.0, mode=sum, padding_idx=1)``: the mode always, padding_idx last."""
    s = "{num_embeddings}, {embedding_dim}"
    if module.max_norm is not None:
        s += ", max_norm={max_norm}"
    if module.norm_type != 2:
        s += ", norm_type={norm_type}"
    if module.scale_grad_by_freq is not False:
        s += ", scale_grad_by_freq={scale_grad_by_freq}"
    s += ", mode={mode}"
    if module.padding_idx is not None:
        s += ", padding_idx={padding_idx}"
    return s.format(**module.__dict__)
