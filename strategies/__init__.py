"""Strategy plugins: one file per strategy, found by ``bench.run.registry`` (files starting with ``_`` are helpers)."""
