"""Strategy plugins: one file per strategy, found by ``bench.plan.registry`` (files starting with ``_`` are helpers)."""
