"""Infrastructure with no knowledge of cells: the cache folder, offline assets, atomic writes, provenance."""
