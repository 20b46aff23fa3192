"""Frame pre- and post-processing, tiling and batching around a backend."""
