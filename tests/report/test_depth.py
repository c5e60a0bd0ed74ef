"""Transfer gain vs depth on synthetic rows: the numbers are strategy − from-scratch with a Welch interval."""

from __future__ import annotations


import pandas as pd
import pytest

from report.depth import transfer_gain_by_depth
from report.sections.figures import gain_vs_depth_plot


def rows() -> pd.DataFrame:
    out = []
    for depth, backbone in ((10, "resnet10t-mnist"), (18, "resnet18-mnist")):
        for fraction in (0.1, 1.0):
            for seed, noise in enumerate((-0.01, 0.0, 0.01)):
                base = 0.70 + 0.1 * fraction
                gain = 0.05 if depth == 10 else 0.02  # the shallow network gains more from pretraining
                for strategy, acc in (("from-scratch", base), ("full-fine-tune", base + gain),
                                      ("lp-ft", base + gain / 2)):
                    out.append({"task": "fashion-mnist", "backbone": backbone, "strategy": strategy,
                                "fraction": fraction, "seed": seed, "status": "ok", "depth": depth,
                                "accuracy": acc + noise * (strategy != "from-scratch"),
                                "main_metric": "accuracy"})
    out.append({"task": "fashion-mnist", "backbone": "tf_efficientnet_lite0", "strategy": "full-fine-tune",
                "fraction": 1.0, "seed": 0, "status": "ok", "depth": None, "accuracy": 0.9,
                "main_metric": "accuracy"})  # an ImageNet backbone: no depth, left out
    return pd.DataFrame(out)


def test_gain_is_strategy_minus_from_scratch_per_depth_and_fraction():
    gains = transfer_gain_by_depth(rows())
    assert len(gains) == 2 * 2 * 2  # depths × fractions × strategies
    ft = gains[gains["strategy"] == "full-fine-tune"].set_index(["depth", "fraction"])
    assert ft.loc[(10, 1.0), "gain"] == pytest.approx(0.05)
    assert ft.loc[(18, 0.1), "gain"] == pytest.approx(0.02)
    assert ft.loc[(10, 1.0), "low"] < 0.05 < ft.loc[(10, 1.0), "high"]
    assert set(gains["n"]) == {3}


def test_plot_draws_one_figure_per_task_without_torch():
    plots = gain_vs_depth_plot(transfer_gain_by_depth(rows()))
    assert len(plots) == 1 and plots[0].src.startswith("data:image/png;base64,")
    assert "full-fine-tune at depth 10" in plots[0].alt


def test_no_depth_column_means_no_figure():
    assert gain_vs_depth_plot(transfer_gain_by_depth(rows().drop(columns="depth"))) == []


def test_report_shows_which_source_each_backbone_has(tmp_path):
    """Pretraining rows (RESULTS/pretrain/*.json) become the "Source pretraining" table; names are escaped."""
    import json

    import report
    from tests.helpers import fixtures_results as fx

    fx.write_results(tmp_path, fx.small_mixed())
    (tmp_path / "pretrain").mkdir()
    row = {"role": "pretrain", "backbone": "<b>resnet18-mnist</b>", "arch": "resnet18", "task": "mnist", "depth": 18,
           "epochs_run": 5, "accuracy": 0.9712, "train_time_s": 81.5, "weights": "resnet18-mnist-abc.safetensors"}
    (tmp_path / "pretrain" / "resnet18-mnist-abc.json").write_text(json.dumps(row))
    (tmp_path / "pretrain" / "damaged.json").write_text("{not json")
    page = report.build_report(tmp_path).read_text(encoding="utf-8")
    assert '<section id="pretraining">' in page and "0.9712" in page and ">mnist<" in page
    assert "&lt;b&gt;resnet18-mnist&lt;/b&gt;" in page and "<b>resnet18-mnist</b>" not in page


def test_the_table_is_computed_once_and_exported():
    """report.tables.compute holds it (the page draws from there) and exports it as CSV."""
    from report import tables

    data = tables.compute(rows())
    assert len(data.exports()["transfer_gain_by_depth"]) > 0
