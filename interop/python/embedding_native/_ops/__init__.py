"""The operations behind ``embedding_native.functional``, one module per operation.

Shared by every operation::

    failures.py     exceptions named like native statuses; torch's layout errors; the bad index
                    the library reports (emb_last_index_error)
    arguments.py    torch's argument parser (int, float, bool parameters) and type names
    padding.py      padding_idx: torch's range checks and the normalisation, in one place
    buffers.py      numpy arrays and CPU torch tensors behind one interface (ArrayKind, Buffer)

One operation each::

    embedding.py    embedding (the lookup)           renorm.py        embedding_renorm_
    backward.py     dense and sparse gradients, sparse_coalesce
    bag_layout.py   embedding_bag's indices/offsets as one validated emb_bags
    embedding_bag.py  embedding_bag and its max arg-max
    bag_backward.py   the embedding_bag gradients
    info.py         build_info and the thread count
    quantized.py    8/4/2-bit tables: prepack, unpack, bags, lookups (embedding_native.quantized)

``embedding_native.functional`` is the public face: it re-exports the public functions.
"""
