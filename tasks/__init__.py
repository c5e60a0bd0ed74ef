"""Task plugins: one file per task, found by ``bench.run.registry`` (files starting with ``_`` are helpers)."""
