"""``torch.nn.functional.embedding`` on numpy arrays and CPU torch tensors, without copying.

Semantics (torch 1.13; see the header's pseudocode for the native part)::

    embedding(input, weight, padding_idx=None, max_norm=None, norm_type=2.0,
              scale_grad_by_freq=False, sparse=False, *, out=None):
        if padding_idx is not None:                       # Python-level check, as in torch
            require -V <= padding_idx < V  (0 always passes)   else PaddingIndexError
        if max_norm is not None:                          # torch's order: renorm before the gather
            input = contiguous(input)
            embedding_renorm_(weight, input, max_norm, norm_type)   # in place; see below
        require weight.ndim == 2                          else RuntimeError "'weight' must be 2-D"
        require input.dtype in (int32, int64)             else RuntimeError "Expected tensor ..."
        V, D = weight.shape
        require V > 0 or input.size == 0                  else RuntimeError "index_select(): ..."
        require weight.dtype in build_info()['table_dtypes']['embedding']   else EmbeddingNotSupportedError
        result[i..., :] = weight[input[i...], :]          # every index in [0, V), else IndexError
        return result                                     # shape input.shape + (D,)

``padding_idx``, ``scale_grad_by_freq`` and ``sparse`` change only gradients in torch, so here
they are validated (padding_idx) or accepted and have no effect on the values. The padding row is
returned as stored. Gradients are separate calls (numpy level, no autograd)::

    embedding_backward(grad_output, indices, V, padding_idx, scale_grad_by_freq)   # dense [V, D]
    embedding_sparse_backward(grad_output, indices, V, padding_idx)                # (rows, values)
    sparse_coalesce(rows, values, V)                                               # (unique rows, sums)
    embedding_renorm_(weight, indices, max_norm, norm_type)                        # in place

(``embedding_native.torch`` wraps them in torch.autograd; ``embedding_native.optim`` applies
optimizer steps to the coalesced rows.)

Buffers and copies:

* ``input``: a numpy int32/int64 array (any shape, including 0-d and empty) or a CPU torch
  tensor. A C-contiguous one is passed by pointer; a non-contiguous one is first made contiguous
  (a copy of the indices only).
* ``weight``: a 2-D numpy array (float32, float64, float16) or CPU torch tensor (also bfloat16),
  passed by pointer. A non-contiguous
  weight (a transposed or sliced view) is copied to a contiguous table first, once per call;
  pass a contiguous weight to avoid that copy.
* The result is a fresh array of ``weight``'s kind: a numpy array for a numpy weight, a torch
  tensor (``torch.empty``) for a torch weight. It does not require grad. ``out=`` writes into a
  caller's C-contiguous, writable buffer of the weight's dtype and exactly the result's shape instead, and
  returns it; on any error nothing is written.

torch is never imported here: a tensor is recognised through ``sys.modules`` only if the
caller already imported torch.

The functions live in ``embedding_native._ops``, one module per operation; this module is their
public face.
"""

from ._ops.backward import embedding_backward, embedding_sparse_backward, sparse_coalesce
from ._ops.bag_backward import (
    embedding_bag_backward, embedding_bag_per_sample_weights_backward, embedding_bag_sparse_backward,
)
from ._ops.embedding import embedding
from ._ops.embedding_bag import embedding_bag, embedding_bag_max_indices
from ._ops.info import build_info, get_num_threads, set_num_threads
from ._ops.padding import normalize_padding_idx
from ._ops.renorm import embedding_renorm_

__all__ = ["embedding", "embedding_backward", "embedding_sparse_backward", "sparse_coalesce", "embedding_renorm_",
           "normalize_padding_idx", "build_info", "set_num_threads", "get_num_threads", "embedding_bag", "embedding_bag_backward",
           "embedding_bag_sparse_backward", "embedding_bag_per_sample_weights_backward", "embedding_bag_max_indices"]
