"""The regression gate on synthetic results: clear drops fail, seed noise passes, odd cells are reported."""

from __future__ import annotations

import argparse
import io
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from rich.console import Console

from bench.cli import gate as cli_check
from bench.gate import baseline, check
from bench.gate import render as check_render
from bench.core.errors import UserError
from bench.results import load_results, to_frame, write_row

VERSIONS = {"torch": "2.14.1", "timm": "1.0.0"}
GROUPS = [("digits", "tf_efficientnet_lite0", s) for s in ("from-scratch", "full-fine-tune")] + [
    ("rotten-tomatoes", "minilm-l6", "feature-extraction")]


def rows(acc: dict, times: dict | None = None, params: dict | None = None, fraction: float = 0.05,
         device: str = "cuda:0 NVIDIA H100", versions: dict | None = None, sha: str = "abc123") -> list[dict]:
    """Result rows: ``acc`` maps (task, backbone, strategy) to one accuracy per seed (None = an error row)."""
    out = []
    for (task, backbone, strategy), values in acc.items():
        for seed, value in enumerate(values):
            time = (times or {}).get((task, backbone, strategy), [10.0] * len(values))[seed]
            p = {"epochs": 3, **(params or {}).get(strategy, {})}
            out.append({
                "cell": f"{task}-{backbone}-{strategy}-{seed}-{fraction}-{json.dumps(p, sort_keys=True)}",
                "suite": "ci", "task": task, "backbone": backbone, "strategy": strategy, "seed": seed,
                "fraction": fraction, "params": p, "status": "ok" if value is not None else "error",
                "error": None if value is not None else "RuntimeError: CUDA out of memory\ntraceback...",
                "accuracy": value, "wall_time_s": time if value is not None else None, "device": device,
                "versions": versions or VERSIONS, "git_sha": sha,
            })
    return out


def frame(*args, **kwargs) -> pd.DataFrame:
    return to_frame([{**r, "params": json.dumps(r["params"], sort_keys=True),
                      "versions": json.dumps(r["versions"])} for r in rows(*args, **kwargs)])


def steady(mean: float, n: int = 3, spread: float = 0.002) -> list[float]:
    """``n`` seeds around ``mean`` with a small, fixed spread (seed noise of a well-behaved cell)."""
    return list(mean + spread * np.linspace(-1, 1, n))


BASE = {g: steady(0.90) for g in GROUPS}


def test_clear_significant_drop_fails():
    new = {**BASE, GROUPS[1]: steady(0.85)}
    result = check.compare(frame(new), frame(BASE))
    assert result.exit_code == 1
    assert [c.key[2] for c in result.regressions] == ["full-fine-tune"]
    reg = result.regressions[0]
    assert reg.delta == pytest.approx(-0.05) and reg.p_drop < 0.05
    assert all(c.status == check.OK for c in result.comparisons if c is not reg)


def test_drop_within_seed_noise_passes():
    noisy_base, noisy_new = [0.80, 0.86, 0.92], [0.77, 0.85, 0.91]  # mean drop 1.7 points, seed sd ~6 points
    result = check.compare(frame({GROUPS[0]: noisy_new}), frame({GROUPS[0]: noisy_base}))
    (c,) = result.comparisons
    assert -c.delta > result.config.tolerance  # the drop is above the tolerance ...
    assert c.status == check.NOISE and c.p_drop >= 0.05  # ... but not significant
    assert result.exit_code == 0


def test_significant_drop_below_tolerance_passes():
    result = check.compare(frame({GROUPS[0]: steady(0.895, spread=0.0005)}),
                           frame({GROUPS[0]: steady(0.900, spread=0.0005)}))
    (c,) = result.comparisons
    assert c.p_drop < 0.05 and c.status == check.OK and result.exit_code == 0


def test_bootstrap_test_agrees_on_a_clear_drop():
    config = check.make_config({"test": "bootstrap"})
    result = check.compare(frame({**BASE, GROUPS[0]: steady(0.80)}), frame(BASE), config)
    assert [c.key[2] for c in result.regressions] == ["from-scratch"]


def test_one_seed_per_side_cannot_be_significant():
    result = check.compare(frame({GROUPS[0]: [0.70]}), frame({GROUPS[0]: [0.90]}))
    (c,) = result.comparisons
    assert c.status == check.FEW_SEEDS and math.isnan(c.p_drop) and result.exit_code == 0
    assert "one seed" in check_render.render_markdown(result)


def test_deterministic_cells_drop_is_systematic():
    # Zero-shot gives the same accuracy for every seed: zero variance on both sides, the drop is no noise.
    result = check.compare(frame({GROUPS[2]: [0.61] * 3}), frame({GROUPS[2]: [0.64] * 3}))
    assert result.regressions and result.regressions[0].p_drop == 0.0
    same = check.compare(frame({GROUPS[2]: [0.64] * 3}), frame({GROUPS[2]: [0.64] * 3}))
    assert same.exit_code == 0


def test_missing_new_and_error_cells_are_reported_separately():
    extra = ("mnist", "tf_efficientnet_lite0", "partial-freeze")
    new = {GROUPS[0]: BASE[GROUPS[0]], GROUPS[2]: [None, None, None], extra: steady(0.7),
           GROUPS[1]: [None, 0.9, 0.901]}  # one failed seed, two still compared
    result = check.compare(frame(new), frame(BASE))
    assert [n.label.split(" · ")[2] for n in result.missing] == ["feature-extraction"]
    assert "failed" in result.missing[0].detail
    assert [n.label.split(" · ")[2] for n in result.new] == ["partial-freeze"]
    assert sorted(n.label.split(" · ")[2] for n in result.errors) == ["feature-extraction", "full-fine-tune"]
    assert all("CUDA out of memory" in n.detail and "traceback" not in n.detail for n in result.errors)
    assert {c.key[2]: c.n_new for c in result.comparisons} == {"from-scratch": 3, "full-fine-tune": 2}
    assert result.exit_code == 0  # reported, not failing by default ...
    strict = check.compare(frame(new), frame(BASE), check.make_config({"fail_on": ["missing", "error"]}))
    assert strict.exit_code == 1  # ... unless asked
    md = check_render.render_markdown(result)
    assert "Missing cell groups" in md and "New cell groups" in md and "Error rows" in md


def test_changed_parameters_are_named_for_a_missing_group():
    new = frame({GROUPS[0]: BASE[GROUPS[0]], GROUPS[1]: BASE[GROUPS[1]]}, params={"full-fine-tune": {"lr": 0.1}})
    result = check.compare(new, frame({GROUPS[0]: BASE[GROUPS[0]], GROUPS[1]: BASE[GROUPS[1]]}))
    assert "lr — → 0.1" in result.missing[0].detail


def test_parameter_variants_are_separate_groups():
    grid = [{"trainable_stages": 1}, {"trainable_stages": 2}]
    base = pd.concat([frame(BASE, params={"full-fine-tune": p}) for p in grid])
    worse = {**BASE, GROUPS[1]: steady(0.80)}
    new = pd.concat([frame(BASE, params={"full-fine-tune": grid[0]}), frame(worse, params={"full-fine-tune": grid[1]})])
    result = check.compare(new, base)
    assert len(result.comparisons) == 4
    assert [c.variant for c in result.regressions] == ["trainable_stages=2"]


def test_wall_time_regression_needs_ratio_and_significance():
    slow = {GROUPS[0]: [14.0, 14.1, 14.2]}
    result = check.compare(frame(BASE, times=slow), frame(BASE))
    assert [c.key[2] for c in result.slowdowns] == ["from-scratch"] and result.exit_code == 1
    assert result.slowdowns[0].time_ratio == pytest.approx(1.41, abs=0.01)
    jittery = check.compare(frame(BASE, times={GROUPS[0]: [8.0, 21.0, 13.0]}), frame(BASE, times={GROUPS[0]:
                                                                                                  [9.0, 10.0, 12.0]}))
    assert not jittery.slowdowns and jittery.exit_code == 0
    off = check.compare(frame(BASE, times=slow), frame(BASE), check.make_config({"time_metric": None}))
    assert off.exit_code == 0
    # Significant but below the ratio (×1.1), or above the ratio but a fraction of a second: both pass.
    mild = check.compare(frame(BASE, times={GROUPS[0]: [11.0, 11.05, 11.1]}), frame(BASE))
    assert mild.comparisons[0].p_slow < 0.05 and mild.exit_code == 0
    tiny = check.compare(frame(BASE, times={g: [0.4, 0.41, 0.42] for g in GROUPS}),
                         frame(BASE, times={g: [0.2, 0.21, 0.22] for g in GROUPS}))
    assert tiny.exit_code == 0
    assert check.compare(frame(BASE, times={g: [0.4, 0.41, 0.42] for g in GROUPS}),
                         frame(BASE, times={g: [0.2, 0.21, 0.22] for g in GROUPS}),
                         check.make_config({"min_time_delta_s": 0})).exit_code == 1


def test_a_seed_inside_params_does_not_split_a_group():
    new = frame(BASE)
    new["params"] = [json.dumps({**json.loads(p), "seed": s}) for p, s in zip(new["params"], new["seed"])]
    result = check.compare(new, frame(BASE))
    assert len(result.comparisons) == 3 and not result.missing and not result.new


def test_welch_false_alarm_rate_is_near_alpha_and_power_is_high():
    rng = np.random.default_rng(7)
    null = [check.p_value_below(rng.normal(0.9, 0.01, 3), rng.normal(0.9, 0.01, 3)) for _ in range(2000)]
    assert 0.03 < np.mean(np.array(null) < 0.05) < 0.07
    shifted = [check.p_value_below(rng.normal(0.86, 0.01, 3), rng.normal(0.9, 0.01, 3)) for _ in range(500)]
    assert np.mean(np.array(shifted) < 0.05) > 0.9


def test_holm_adjustment():
    assert check.holm([0.01, 0.04, 0.03, math.nan])[:3] == pytest.approx([0.03, 0.06, 0.06])
    assert math.isnan(check.holm([0.01, math.nan])[1]) and check.holm([0.5, 0.9]) == [1.0, 1.0]


def test_a_suite_of_noisy_groups_rarely_goes_red_by_chance():
    """30 groups without any real change, seed sd 2 points: per-group testing goes red on most runs, Holm rarely."""
    rng = np.random.default_rng(3)
    groups = [("digits", "tf_efficientnet_lite0", f"s{i}") for i in range(30)]
    red = {"none": 0, "holm": 0}
    for _ in range(12):
        base, new = ({g: list(rng.normal(0.8, 0.02, 3)) for g in groups} for _ in range(2))
        for correction in red:
            result = check.compare(frame(new), frame(base), check.make_config({"correction": correction}))
            red[correction] += result.exit_code
    # Expected about 9 of 12 red runs without a correction (1 - 0.95 ** 30 per run) and about 0.6 with Holm.
    assert red["none"] >= 5 and red["holm"] <= 2


def test_no_overlap_with_baseline_is_bad_input():
    other = {("mnist", "tf_efficientnet_lite0", "zero-shot"): steady(0.3)}
    with pytest.raises(UserError, match="no cell group"):
        check.compare(frame(other), frame(BASE))


@pytest.mark.parametrize("settings, match", [({"tolerance": 1}, "one point is 0.01"), ({"alpha": 0}, "alpha"),
                                             ({"tolerence": 0.1}, "unknown key"), ({"test": "z"}, "test")])
def test_bad_settings_are_one_line(settings, match):
    with pytest.raises(UserError, match=match) as err:
        check.make_config(settings)
    assert "\n" not in str(err.value)


# ------------------------------------------------------------------ files, baselines and the command line

def write_results(path, acc, suite_check=None, **kwargs):
    for row in rows(acc, **kwargs):
        write_row(path, row)
    if suite_check is not None:
        (path / "suite.yaml").write_text(json.dumps({"name": "ci", "tasks": ["digits"], "check": suite_check}))
    return path


def check_args(results, base, *extra):
    parser = argparse.ArgumentParser()
    cli_check.add_parsers(parser.add_subparsers())
    return parser.parse_args(["check", str(results), "--baseline", str(base), *extra])


def quiet_console():
    return Console(file=io.StringIO(), width=200)


def test_baseline_round_trip_keeps_rows_and_environment(tmp_path):
    results = write_results(tmp_path / "r", BASE)
    path = baseline.save_baseline(results, "ci", tmp_path / "baselines")
    frame_, meta = baseline.load_baseline("ci", tmp_path / "baselines")
    assert len(frame_) == 9 and meta["devices"] == ["cuda:0 NVIDIA H100"] and meta["versions"] == VERSIONS
    assert meta["git_sha"] == ["abc123"] and meta["created"]
    assert json.loads(path.with_suffix(".json").read_text())["ok_rows"] == 9
    with pytest.raises(UserError, match="--force"):
        baseline.save_baseline(results, "ci", tmp_path / "baselines")
    assert check.compare(load_results(results), frame_).exit_code == 0


@pytest.mark.parametrize("content", [b"not parquet at all", b"PAR1\x00\x01garbage"])
def test_corrupt_baseline_is_one_clear_line(tmp_path, content):
    results = write_results(tmp_path / "r", BASE)
    bad = tmp_path / "ci.parquet"
    bad.write_bytes(content)
    with pytest.raises(UserError) as err:
        cli_check.run_check(check_args(results, bad), console=quiet_console())
    assert "corrupt" in str(err.value) and str(bad) in str(err.value) and "\n" not in str(err.value)


def test_truncated_real_baseline_is_corrupt(tmp_path):
    path = baseline.save_baseline(write_results(tmp_path / "r", BASE), "ci", tmp_path)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(UserError, match="corrupt"):
        baseline.load_baseline(path)


def test_foreign_parquet_is_not_a_baseline(tmp_path):
    pd.DataFrame({"a": [1]}).to_parquet(tmp_path / "x.parquet")
    with pytest.raises(UserError, match="lacks column"):
        baseline.load_baseline(tmp_path / "x.parquet")


def test_cli_check_exit_codes_and_summary(tmp_path):
    base = baseline.save_baseline(write_results(tmp_path / "b", BASE), "ci", tmp_path)
    good = write_results(tmp_path / "good", BASE)
    bad = write_results(tmp_path / "bad", {**BASE, GROUPS[1]: steady(0.85)})
    summary = tmp_path / "check.md"
    assert cli_check.run_check(check_args(good, base), console=quiet_console()) == 0
    assert cli_check.run_check(check_args(bad, base, "--summary", str(summary)), console=quiet_console()) == 1
    text = summary.read_text()
    assert text.startswith("## :x:") and "### Regressions" in text and "full-fine-tune" in text.split("<details>")[0]
    # A looser tolerance from the suite file lets the same drop pass; a flag overrides the suite file.
    loose = write_results(tmp_path / "loose", {**BASE, GROUPS[1]: steady(0.85)}, suite_check={"tolerance": 0.1})
    assert cli_check.run_check(check_args(loose, base), console=quiet_console()) == 0
    assert cli_check.run_check(check_args(loose, base, "--tolerance", "0.01"), console=quiet_console()) == 1


def test_terminal_output_and_environment_warning(tmp_path):
    base = baseline.save_baseline(write_results(tmp_path / "b", BASE), "ci", tmp_path)
    other = write_results(tmp_path / "o", {**BASE, GROUPS[1]: steady(0.85)}, device="cpu",
                          versions={"torch": "2.15.0", "timm": "1.0.0"})
    console = Console(record=True, width=200, file=io.StringIO())
    assert cli_check.run_check(check_args(other, base, "--summary", str(tmp_path / "s.md")), console=console) == 1
    out = console.export_text()
    assert "WARNING" in out and "torch 2.14.1 → 2.15.0" in out and "device differs" in out
    assert "FAIL" in out and "regression" in out and "full-fine-tune" in out
    assert "[!WARNING]" in (tmp_path / "s.md").read_text()


def test_baseline_save_through_argparse(tmp_path, capsys):
    results = write_results(tmp_path / "r", BASE)
    parser = argparse.ArgumentParser()
    cli_check.add_parsers(parser.add_subparsers())
    args = parser.parse_args(["baseline", "save", str(results), "--name", "ci", "--dir", str(tmp_path / "bl")])
    assert args.func(args) == 0 and (tmp_path / "bl" / "ci.parquet").is_file()
    assert "baseline saved" in capsys.readouterr().out
    args = parser.parse_args(["check", str(results), "--baseline", "ci", "--baseline-dir", str(tmp_path / "bl"),
                              "--fail-on", "new", "-q"])
    assert args.func(args) == 0


def test_transferbench_cli_exit_codes(tmp_path):
    """The real entry point: 0 pass, 1 regression, 2 corrupt baseline with one line on stderr."""
    pytest.importorskip("bench.cli")
    base = baseline.save_baseline(write_results(tmp_path / "b", BASE), "ci", tmp_path)
    good = write_results(tmp_path / "good", BASE)
    bad = write_results(tmp_path / "bad", {**BASE, GROUPS[0]: steady(0.8)})
    corrupt = tmp_path / "corrupt.parquet"
    corrupt.write_text("garbage")
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    codes = {}
    for name, results, base_path in (("good", good, base), ("bad", bad, base), ("corrupt", good, corrupt)):
        proc = subprocess.run([sys.executable, "-m", "bench.cli", "check", str(results), "--baseline", str(base_path),
                               "-q"], check=False, capture_output=True, text=True, env=env, cwd=tmp_path,
                              timeout=120)
        codes[name] = proc.returncode
    assert codes == {"good": 0, "bad": 1, "corrupt": 2}
    assert len(proc.stderr.strip().splitlines()) == 1 and "corrupt" in proc.stderr
