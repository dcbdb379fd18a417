"""A user of the installed embedding_native package, run from outside the repository.

    python3 consumer.py INSTALL_DIR

Checks that the package and the library it loaded both come from INSTALL_DIR (not from a
source tree on sys.path), then runs a lookup, a sum bag and a quantized round trip and compares them
with numpy, and imports the torch drop-ins when torch is installed (the subpackage ships, and so
do the torch operators that serve tensors).
"""

import os
import sys
import tempfile

import numpy as np

import embedding_native as en
import embedding_native.quantized as enq


def main(install_dir):
    install_dir = os.path.realpath(install_dir) + os.sep
    info = en.build_info()
    package_file = os.path.realpath(en.__file__)
    library = os.path.realpath(info["library_path"])
    assert package_file.startswith(install_dir), "package imported from %s, not %s" % (package_file, install_dir)
    assert library.startswith(install_dir), "library loaded from %s, not %s" % (library, install_dir)

    # the numpy extension ships with the package (make python-package built it) and serves arrays
    extension = info["numpy_extension"]
    assert extension.startswith("on: " + install_dir), "numpy extension: %s" % extension

    table = np.arange(10 * 48, dtype=np.float32).reshape(10, 48) / 7
    indices = np.array([[1, 2, 4], [4, 3, 9]], dtype=np.int64)
    rows = en.embedding(indices, table)
    assert rows.shape == (2, 3, 48) and np.array_equal(rows, table[indices]), "embedding differs from numpy"

    bags = en.embedding_bag(np.array([1, 2, 4, 5], dtype=np.int64), table, np.array([0, 2], dtype=np.int64), mode="sum")
    expected = np.stack([table[1] + table[2], table[4] + table[5]])
    assert np.array_equal(bags, expected), "embedding_bag(sum) differs from numpy"

    packed = enq.embedding_bag_byte_prepack(table)
    assert packed.shape == (10, 56), "byte prepack shape %s" % (packed.shape,)
    values = enq.embedding_bag_byte_unpack(packed)
    assert np.allclose(values, table, atol=float(np.ptp(table, axis=1).max()) / 255), "quantized round trip"

    from embedding_native import tables
    with tempfile.TemporaryDirectory() as directory:
        for suffix in (".npy", ".safetensors"):
            path = os.path.join(directory, "table" + suffix)
            tables.save(path, table)
            mapped = tables.load(path)
            assert np.array_equal(mapped, table), "table file round trip (%s)" % suffix
            del mapped

    try:
        import torch  # noqa: F401 (optional)
    except ImportError:
        pass
    else:
        import embedding_native.torch.quantized as etq
        assert os.path.realpath(etq.__file__).startswith(install_dir), "torch drop-ins not from the install"
        # the torch operators ship with the package (make python-package built them) and serve tensors
        operators = en.build_info()["torch_operators"]
        assert operators.startswith("on: " + install_dir), "torch operators: %s" % operators
        rows = en.embedding(torch.from_numpy(indices), torch.from_numpy(table))
        assert np.array_equal(rows.numpy(), table[indices]), "embedding of tensors differs from numpy"

    print("python consumer: OK (embedding_native %s, %s, %s)" % (en.__version__, info["tier"], library))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
