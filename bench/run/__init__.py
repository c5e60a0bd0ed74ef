"""One cell in one process: the cell runner, the strategy's context, task data, the feature cache, the shared
training loops, the solved probe, source pretraining, estimates, and ``kit`` (what strategies use). What to run
(suites, parameters, the registry, the search plan) is ``bench.plan``."""
