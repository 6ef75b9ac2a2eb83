"""Data: image sources and dataset layouts, the bundled images, training patches, snapshot series."""
