"""Table files: the .npy and .safetensors headers (one module each), the element types both
formats share, and the save / load drivers that ``embedding_native.tables`` re-exports."""
