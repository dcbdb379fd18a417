"""Fused optimizer steps on the rows of a coalesced sparse gradient (numpy or CPU tensors).

Each step updates, in place, only the rows listed in ``rows`` of ``weight`` and of the
optimizer state; no dense gradient is formed. ``(rows, values)`` is a coalesced sparse
gradient: strictly ascending int64 rows in ``[0, V)`` and ``values`` of shape ``(len(rows), D)``
and the weight's dtype, e.g. from :func:`embedding_native.functional.sparse_coalesce` or
``grad.coalesce()._indices()[0], grad.coalesce()._values()`` of a torch sparse gradient. For a
dense gradient pass ``rows = arange(V)`` and ``values = grad``.

The per-row arithmetic, for each r = rows[j] and g = values[j] (see embedding_native.h)::

    sgd_step:             g = g + weight_decay * w[r];   w[r] -= lr * g           # torch.optim.SGD
    adagrad_step:         clr = lr / (1 + (step - 1) * lr_decay)                  # torch.optim.Adagrad
                          state_sum[r] += g * g;  w[r] -= clr * g / (sqrt(state_sum[r]) + eps)
    rowwise_adagrad_step: momentum[r] += mean(g * g);  w[r] -= lr * g / (sqrt(momentum[r]) + eps)
    sparse_adam_step:     m[r] += (g - m[r]) * (1 - beta1);  v[r] += (g*g - v[r]) * (1 - beta2)
                          step_size = lr * sqrt(1 - beta2^step) / (1 - beta1^step)  # torch.optim.SparseAdam
                          w[r] -= step_size * m[r] / (sqrt(v[r]) + eps)

``step`` is the 1-based number of this step (the caller counts). weight and every state buffer
must be C-contiguous and writable (numpy or CPU tensor). They are written through their memory,
so autograd does not record the update (as torch.optim's steps run under no_grad). Rows that are
not strictly ascending or out of range are rejected by the library before anything is written.

Table types: float32, float64, float16 (numpy or torch) and bfloat16 (torch). weight, values and
every state buffer must share one dtype; a mismatch raises an EmbeddingRuntimeError (a
RuntimeError, as torch's "assigned grad has data of a different type" is) before anything is
written. The arithmetic is torch 1.13's for the type (float64 the float32 formulas in double;
float16 and bfloat16 every operation computed in float and rounded to the type, nothing fused;
see embedding_native.h and docs/table-types.md). torch 1.13 refuses Adagrad and SparseAdam on
float16 ("sqrt_vml_cpu" not implemented for 'Half'); here they compute the bfloat16 formula
rounded to half. In float16 an ``eps`` below 2**-25 (the defaults 1e-10 and 1e-8 included)
rounds to 0, as it would for a half tensor: pass a larger one.

torch is never imported here.
"""

import operator

from ._bindings import emb_adagrad_step, emb_rowwise_adagrad_step, emb_sgd_step, emb_sparse_adam_step
from .errors import EMB_ERROR_INVALID_ARGUMENT, EMB_ERROR_UNSUPPORTED_DTYPE, EmbeddingRuntimeError
from ._ops.buffers import float_buffer, rows_buffer
from ._ops.failures import error, native_error

__all__ = ["sgd_step", "adagrad_step", "rowwise_adagrad_step", "sparse_adam_step"]


def _same_dtype(buffer, name, weight):
    """Refuses a values or state buffer whose table dtype is not the weight's."""
    if buffer.code != weight.code:
        raise error(EmbeddingRuntimeError, EMB_ERROR_UNSUPPORTED_DTYPE,
                    "%s must have the weight's dtype (%s), got %s" % (name, weight.dtype_name, buffer.dtype_name))


def _check_state(state, name, shape, weight):
    """A writable state buffer of exactly ``shape`` and the weight's dtype; returns its address."""
    buffer = float_buffer(state, name, writable=True, any_type=True)
    _same_dtype(buffer, name, weight)
    if tuple(buffer.shape) != tuple(shape):
        raise error(EmbeddingRuntimeError, EMB_ERROR_INVALID_ARGUMENT,
                     "%s has shape %s, expected %s" % (name, tuple(buffer.shape), tuple(shape)))
    return buffer.address


def _operands(weight, rows, values):
    """(weight Buffer, V, D, rows Buffer, values Buffer) after the shared checks:
    weight 2-D of a table dtype, rows 1-D, values (len(rows), D) of the weight's dtype."""
    w = float_buffer(weight, "weight", writable=True, any_type=True)
    if len(w.shape) != 2:
        raise error(EmbeddingRuntimeError, EMB_ERROR_INVALID_ARGUMENT, "'weight' must be 2-D")
    num_embeddings, dim = w.shape
    r = rows_buffer(rows)
    v = float_buffer(values, "values", any_type=True)
    _same_dtype(v, "values", w)
    if len(r.shape) != 1 or tuple(v.shape) != (r.shape[0], dim):
        raise error(EmbeddingRuntimeError, EMB_ERROR_INVALID_ARGUMENT,
                     "rows must be (n,) and values (n, %d); got %s and %s" % (dim, tuple(r.shape), tuple(v.shape)))
    return w, num_embeddings, dim, r, v


def _step_number(step):
    step = operator.index(step)
    if step < 1:
        raise ValueError("step must be >= 1 (the 1-based number of this step), got %d" % step)
    return step


def sgd_step(weight, rows, values, lr, weight_decay=0.0):
    """torch.optim.SGD without momentum on the listed rows: ``w[r] -= lr * (g + weight_decay * w[r])``.

    Unlike torch.optim.SGD with a dense gradient, weight decay applies to the listed rows only.
    Returns ``weight``.
    """
    w, num_embeddings, dim, r, v = _operands(weight, rows, values)
    status = emb_sgd_step(w.address, w.code, num_embeddings, dim, r.address, v.address, r.shape[0],
                          float(lr), float(weight_decay))
    if status:
        raise native_error(status)
    return weight


def adagrad_step(weight, state_sum, rows, values, lr, lr_decay=0.0, eps=1e-10, step=1):
    """torch.optim.Adagrad (element-wise) on the listed rows; ``state_sum`` is ``(V, D)`` of the
    weight's dtype (torch's ``initial_accumulator_value`` is its initial content). Returns ``weight``."""
    w, num_embeddings, dim, r, v = _operands(weight, rows, values)
    state = _check_state(state_sum, "state_sum", (num_embeddings, dim), w)
    status = emb_adagrad_step(w.address, state, w.code, num_embeddings, dim, r.address, v.address,
                              r.shape[0], float(lr), float(lr_decay), float(eps), _step_number(step))
    if status:
        raise native_error(status)
    return weight


def rowwise_adagrad_step(weight, momentum, rows, values, lr, eps=1e-10):
    """Row-wise Adagrad (FBGEMM's variant, one accumulator per row) on the listed rows;
    ``momentum`` is ``(V,)`` of the weight's dtype. Returns ``weight``."""
    w, num_embeddings, dim, r, v = _operands(weight, rows, values)
    state = _check_state(momentum, "momentum", (num_embeddings,), w)
    status = emb_rowwise_adagrad_step(w.address, state, w.code, num_embeddings, dim, r.address,
                                      v.address, r.shape[0], float(lr), float(eps))
    if status:
        raise native_error(status)
    return weight


def sparse_adam_step(weight, exp_avg, exp_avg_sq, rows, values, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, step=1):
    """torch.optim.SparseAdam on the listed rows; ``exp_avg`` and ``exp_avg_sq`` are ``(V, D)`` of
    the weight's dtype (zeros before the first step, as torch initialises them). Returns ``weight``."""
    w, num_embeddings, dim, r, v = _operands(weight, rows, values)
    m = _check_state(exp_avg, "exp_avg", (num_embeddings, dim), w)
    s = _check_state(exp_avg_sq, "exp_avg_sq", (num_embeddings, dim), w)
    beta1, beta2 = betas
    status = emb_sparse_adam_step(w.address, m, s, w.code, num_embeddings, dim, r.address, v.address,
                                  r.shape[0], float(lr), float(beta1), float(beta2), float(eps), _step_number(step))
    if status:
        raise native_error(status)
    return weight
