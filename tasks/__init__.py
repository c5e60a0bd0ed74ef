"""Task plugins: one file per task, found by ``bench.plan.registry`` (files starting with ``_`` are helpers)."""
