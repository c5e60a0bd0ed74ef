"""Task plugins: one file per task, found by ``bench.registry`` (files starting with ``_`` are helpers)."""
