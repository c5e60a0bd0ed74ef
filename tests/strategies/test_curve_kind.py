"""Each strategy's row says what its curve is: SGD epochs, a solved probe's L2 path, or no curve (zero-shot)."""

from __future__ import annotations

import pytest

from bench.run.cell import run_cell
from tests.strategies.test_strategies_vision import cells_for, tiny  # noqa: F401 - the fixture

KINDS = {"feature-extraction": "l2-path", "zero-shot": "none", "from-scratch": "sgd", "lp-ft": "sgd"}


@pytest.mark.parametrize("strategy", list(KINDS))
def test_rows_record_their_curve_kind(strategy, tiny):  # noqa: F811 - the fixture
    import torch

    (cell,) = cells_for(strategy, tiny)
    row = run_cell(cell, "t", torch.device("cpu")).row
    assert row["status"] == "ok", row["error"]
    assert row["curve_kind"] == KINDS[strategy]
