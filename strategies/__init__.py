"""Strategy plugins: one file per strategy, found by ``bench.registry`` (files starting with ``_`` are helpers)."""
