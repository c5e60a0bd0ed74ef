"""What to run: the registry of plugins, parameters, the suite document and its reader, the search plan and its
rounds, and the checks made before any cell runs. No training here: one cell in one process is ``bench.run``."""
