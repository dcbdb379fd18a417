"""torch's argument parser for the non-tensor arguments, and how torch names types.

torch's C++ ops (torch.embedding, torch.embedding_renorm_, torch.embedding_bag) check the Python
types of their arguments before anything else runs, and raise TypeError with the argument's
name and position; these reproduce that. Tensors that are not strided (sparse COO/CSR, ...) then
have no kernel: the dispatcher raises NotImplementedError naming the op and the backend
(:func:`renorm_arguments`). Only the error paths call these, or the callers' guards catch the
common values first.

torch is never imported here: a tensor is recognised through ``sys.modules`` only if the caller
already imported torch.
"""

import sys

import numpy as np

from .failures import layout_error, non_strided

# How torch 1.13 names an index tensor's type in its "Expected tensor for argument #1" message,
# keyed by dtype name (numpy's dtype.name, torch's str(dtype) without "torch."). Types with a
# legacy tensor class use it; the others print their C++ type name.
TORCH_TYPE_NAMES = {
    "uint8": "torch.ByteTensor", "int8": "torch.CharTensor", "int16": "torch.ShortTensor",
    "int32": "torch.IntTensor", "int64": "torch.LongTensor",
    "float16": "torch.HalfTensor", "float32": "torch.FloatTensor", "float64": "torch.DoubleTensor",
    "bfloat16": "CPUBFloat16Type", "bool": "CPUBoolType", "complex32": "CPUComplexHalfType",
    "complex64": "CPUComplexFloatType", "complex128": "CPUComplexDoubleType",
}

INDEX_DTYPE_MESSAGE = ("Expected tensor for argument #%d 'indices' to have one of the following scalar types: "
                       "Long, Int; but got %s instead (while checking arguments for %s)")


def torch_type_name(name):
    """torch's name for a dtype name in its "Expected tensor ..." messages."""
    return TORCH_TYPE_NAMES.get(name, name)


def torch_tensor_type():
    """``torch.Tensor`` if the caller imported torch, else None (torch is never imported here)."""
    torch = sys.modules.get("torch")
    return getattr(torch, "Tensor", None)


def type_name(value):
    """The type name torch's parser prints (CPython's tp_name): ``numpy.float64``, ``Tensor``, ``str``."""
    cls = type(value)
    if cls.__flags__ & (1 << 9) or cls.__module__ == "builtins":  # Py_TPFLAGS_HEAPTYPE: classes defined in Python
        return cls.__name__
    return "%s.%s" % (cls.__module__, cls.__qualname__)


def argument_type_error(op, name, position, expected, value):
    return TypeError("%s(): argument '%s' (position %d) must be %s, not %s"
                     % (op, name, position, expected, type_name(value)))


def check_bool_argument(value, op, name, position):
    """torch's ``bool`` parameter: True or False only (not 0/1, numpy.bool_ or a tensor)."""
    if value is not True and value is not False:
        raise argument_type_error(op, name, position, "bool", value)


def int_argument(value, op, name, position):
    """torch's ``int`` parameter: an int (not a bool), a numpy integer or a 0-d integer tensor; as an int."""
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        return int(value)
    tensor_type = torch_tensor_type()
    if (tensor_type is not None and isinstance(value, tensor_type) and value.dim() == 0
            and not (value.dtype.is_floating_point or value.dtype.is_complex or str(value.dtype) == "torch.bool")):
        return int(value)
    raise argument_type_error(op, name, position, "int", value)


def float_argument(value, op, name, position):
    """torch's ``float`` parameter: a Python or numpy number (bools included), or a 0-d tensor that
    does not require grad; as a float. Strings, lists, None, complex and Decimal are refused."""
    if isinstance(value, (float, int, np.number, np.bool_)):
        return float(value.real) if isinstance(value, np.complexfloating) else float(value)
    tensor_type = torch_tensor_type()
    if tensor_type is not None and isinstance(value, tensor_type) and value.dim() == 0 and not value.requires_grad:
        return float(value.real) if value.dtype.is_complex else float(value)
    raise argument_type_error(op, name, position, "float", value)


def renorm_arguments(max_norm, norm_type, weight, input):
    """embedding_renorm_'s argument checks in torch's order (its parser, then the layouts):
    returns ``(max_norm, norm_type)`` as floats, or raises what torch raises."""
    max_norm = float_argument(max_norm, "embedding_renorm_", "max_norm", 3)
    norm_type = float_argument(norm_type, "embedding_renorm_", "norm_type", 4)
    unsupported = non_strided(weight, input)
    if unsupported is not None:
        raise layout_error("embedding_renorm_", unsupported)
    return max_norm, norm_type


def shape_text(shape):
    """A shape as torch prints it: ``torch.Size([2, 3])``."""
    return "torch.Size(%s)" % list(shape)
