"""The regression gate: compare a run with a saved baseline (``check``, ``baseline save``)."""
