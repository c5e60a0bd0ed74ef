"""``transferbench check`` and ``transferbench baseline save``: argument parsing only.

The comparison lives in bench.gate.check, the baseline files in bench.gate.baseline. Exit codes: 0 no regression,
1 regression, 2 bad input (a UserError, printed by bench.cli as one line).
"""

from __future__ import annotations

import argparse
from typing import Any

from bench.gate import baseline, check
from bench.gate import render as check_render
from bench.infra.atomic import write_text


def add_parsers(subparsers: Any) -> None:
    """Add the ``check`` and ``baseline`` subcommands to an ``argparse`` ``add_subparsers()`` object."""
    p = subparsers.add_parser(
        "check", help="compare results with a baseline; exit 1 on a significant regression",
        description="Compare accuracy and wall time per cell group against a baseline. A group fails when the "
                    "change is larger than the tolerance AND significant over seeds. Settings come from the "
                    "'check:' mapping of RESULTS_DIR/suite.yaml; flags override them. "
                    "Exit 0: no regression, 1: regression, 2: bad input.")
    p.add_argument("results_dir", metavar="RESULTS_DIR", help="results directory (or a results .parquet/.csv)")
    p.add_argument("--baseline", required=True, metavar="PATH_OR_NAME",
                   help="baseline .parquet, a results directory/file, or the NAME of a saved baseline")
    p.add_argument("--baseline-dir", default=baseline.DEFAULT_DIR, metavar="DIR",
                   help="where named baselines live (default: %(default)s)")
    p.add_argument("--tolerance", type=float, help="accuracy drop that may pass, in 0..1 (default 0.01 = 1 point)")
    p.add_argument("--alpha", type=float, help="significance level of the one-sided test (default 0.05)")
    p.add_argument("--time-ratio", type=float, dest="time_ratio", help="wall-time growth that may pass (default 1.25)")
    p.add_argument("--min-time-delta", type=float, dest="min_time_delta_s", metavar="SECONDS",
                   help="ignore slowdowns smaller than this many seconds (default 1)")
    p.add_argument("--test", choices=check.TESTS, help="significance test (default welch)")
    p.add_argument("--correction", choices=check.CORRECTIONS,
                   help="multiple-comparison correction over cell groups (default holm)")
    p.add_argument("--metric", help="metric column to compare (default accuracy; e.g. macro_f1)")
    p.add_argument("--time-metric", dest="time_metric", help="time column (default wall_time_s; e.g. train_time_s)")
    p.add_argument("--no-time", action="store_true", help="do not check wall time")
    p.add_argument("--fail-on", action="append", choices=check.FAIL_ON, dest="fail_on",
                   help="also exit 1 for error rows / missing / new cell groups (repeatable)")
    p.add_argument("--summary", metavar="FILE.md", help="write a Markdown summary (for a pull-request comment)")
    p.add_argument("-q", "--quiet", action="store_true", help="print the verdict and failing groups only")
    p.set_defaults(func=run_check)

    b = subparsers.add_parser("baseline", help="manage baselines for `transferbench check`")
    b.set_defaults(func=lambda args: _usage(b))
    actions = b.add_subparsers(dest="baseline_action", metavar="ACTION")
    s = actions.add_parser("save", help="store a results directory as a named baseline",
                           description="Write DIR/NAME.parquet (every row) and DIR/NAME.json (device, versions, "
                                       "git sha, date).")
    s.add_argument("results_dir", metavar="RESULTS_DIR")
    s.add_argument("--name", required=True, help="baseline name, e.g. ci-gpu")
    s.add_argument("--dir", default=baseline.DEFAULT_DIR, help="where to store it (default: %(default)s)")
    s.add_argument("--force", action="store_true", help="replace an existing baseline of that name")
    s.set_defaults(func=run_baseline_save)


def _usage(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return 2


def config_from_args(args: argparse.Namespace) -> check.CheckConfig:
    """Suite ``check:`` settings, overridden by the flags that were given."""
    settings = check.read_suite_check(args.results_dir)
    for name in ("tolerance", "alpha", "time_ratio", "min_time_delta_s", "test", "correction", "metric", "time_metric",
                 "fail_on"):
        if getattr(args, name, None) is not None:
            settings[name] = getattr(args, name)
    if getattr(args, "no_time", False):
        settings["time_metric"] = None
    return check.make_config(settings, where="check settings (suite.yaml 'check:' and flags)")


def run_check(args: argparse.Namespace, console: Any = None) -> int:
    """Run the gate for parsed ``check`` arguments; return the exit code (0 pass, 1 regression)."""
    from rich.console import Console

    from bench.results import load_results

    config = config_from_args(args)
    results = load_results(args.results_dir)
    base, _ = baseline.load_baseline(args.baseline, args.baseline_dir)
    result = check.compare(results, base, config)
    if console is None:
        console = Console()
        if not console.is_terminal:  # CI logs: do not squeeze the table into 80 columns
            console = Console(width=200)
    check_render.render_terminal(result, console, quiet=args.quiet)
    if args.summary:
        write_text(args.summary, check_render.render_markdown(result))
        if not args.quiet:
            console.print(f"summary written to {args.summary}", markup=False, highlight=False)
    return result.exit_code


def run_baseline_save(args: argparse.Namespace) -> int:
    """Save a baseline for parsed ``baseline save`` arguments; return 0."""
    path = baseline.save_baseline(args.results_dir, args.name, args.dir, force=args.force)
    print(f"baseline saved: {path} (+ {path.with_suffix('.json').name})")
    return 0
