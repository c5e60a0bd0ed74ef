"""``transferbench advise``: from the user's own folder or table to a recommended strategy within a budget.

``plan`` checks the request and picks the candidates; ``race`` runs the budgeted race (Optuna's successive-halving
pruner on validation curves); ``recommend`` turns final rows into the answer; ``advisor`` runs the steps and writes
the outputs. See docs/ADVISE.md.
"""

from bench.advise.advisor import AdviseResult, advise

__all__ = ["AdviseResult", "advise"]
