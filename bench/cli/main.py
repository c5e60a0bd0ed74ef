"""The ``transferbench`` command: parses arguments and calls library functions, nothing more.

Bad input ends with one line on stderr and exit code 2, never a traceback.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from bench.core.errors import UserError
from bench.cli.arguments import positive_float, positive_int, writable_dir


def cmd_list(args: argparse.Namespace) -> int:
    from bench.cli.listing import describe

    print(describe(args.what))
    return 0


def cmd_fetch(args: argparse.Namespace) -> int:
    from bench.cli.fetching import fetch_names

    for line in fetch_names(args.names):
        print(line)
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from bench.runner import check_before_run, run_suite
    from bench.plan.suite import find_suite_file, load_suite

    suite_file = find_suite_file(args.suite)
    suite = load_suite(str(suite_file))
    results_path = Path(args.results or Path("results") / suite.name).expanduser()
    check_before_run(suite, results_path, args.only, args.force)  # before the results directory is created
    results_dir = writable_dir(results_path)
    summary = run_suite(suite, results_dir, suite_file, force=args.force, retry_errors=args.retry_errors,
                        only=args.only, device=args.device, executor=args.executor, workers=args.workers,
                        ray_address=args.ray_address, cell_timeout=args.cell_timeout, retries=args.retries,
                        claim_timeout=args.claim_timeout)
    others = f", {summary.by_others} recorded by another runner" if summary.by_others else ""
    print(f"{summary.ran} cell(s) run ({summary.failed} failed), {summary.skipped_done} already recorded{others}; "
          f"results: {results_dir / 'results.parquet'} and results.csv")
    if args.report:
        from report import build_report

        print(f"report: {build_report(results_dir, results_dir / 'report.html')}")
    return 0


def cmd_estimate(args: argparse.Namespace) -> int:
    from bench.run.estimate import run_estimates
    from bench.plan.suite import find_suite_file, load_suite

    suite = load_suite(str(find_suite_file(args.suite)))
    results_dir = Path(args.results or Path("results") / suite.name)
    summary = run_estimates(suite, results_dir, samples=args.samples, device=args.device, force=args.force,
                            only=args.only)
    print(f"{summary.ran} estimate(s) computed ({summary.failed} failed), {summary.skipped_done} already recorded; "
          f"results: {results_dir} (transferbench report {results_dir})")
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from report import build_report

    print(build_report(args.results_dir, args.output))
    return 0


def cmd_summary(args: argparse.Namespace) -> int:
    from pathlib import Path

    from bench.results import load_results
    from report import final_predictions
    from report.summary import print_summary

    frame = load_results(args.results_dir)  # the verdict counts final rows only, not search trials
    where = Path(args.results_dir)
    print_summary(frame, predictions=final_predictions(where if where.is_dir() else where.parent, frame))
    return 0


class OneLineParser(argparse.ArgumentParser):
    """argparse that reports a bad argument in one line (argparse's default prints the whole usage first)."""

    def error(self, message: str):  # type: ignore[override]
        raise UserError(f"{message} (see `{self.prog} --help`)")


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog="transferbench", description=__doc__.splitlines()[0])
    parser.add_argument("--cache-dir", help="cache for assets, weights and features (default: $TRANSFERBENCH_CACHE "
                        "or the user cache folder)")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("list", help="list strategies, tasks, backbones, suites or assets")
    p.add_argument("what", nargs="?", default="all",
                   choices=["all", "strategies", "tasks", "backbones", "suites", "assets"])
    p.set_defaults(func=cmd_list)

    p = sub.add_parser("fetch", help="download offline assets (weights, datasets) into the cache; idempotent")
    p.add_argument("names", nargs="*", help="asset, task or backbone names, or a suite file (default: all assets "
                   "the bundled quick suite needs)")
    p.set_defaults(func=cmd_fetch)

    p = sub.add_parser("run", help="run a suite (resumes by default)")
    p.add_argument("suite", help="suite YAML file or bundled suite name (quick, full, ...)")
    p.add_argument("--results", help="results directory (default: results/<suite name>)")
    p.add_argument("--force", action="store_true", help="recompute cells that are already recorded")
    p.add_argument("--retry-errors", action="store_true", help="rerun cells recorded as errors")
    p.add_argument("--only", action="append", default=[], metavar="KEY=VALUE",
                   help="run only matching cells, e.g. --only strategy=zero-shot --only seed=0 (repeatable)")
    p.add_argument("--device", help="torch device (default: cuda if available, else cpu)")
    p.add_argument("--report", action="store_true", help="write RESULTS/report.html at the end")
    p.add_argument("--executor", choices=["local", "process", "ray"], default="local",
                   help="where cells run: this process (default), a pool of worker processes, or Ray")
    p.add_argument("--workers", type=positive_int, metavar="N",
                   help="parallel cells (default: one per GPU, else per CPU core)")
    p.add_argument("--ray-address", metavar="ADDR", help="Ray cluster to join, e.g. 'auto' after 'ray start --head' "
                   "(default: start a local Ray instance for this run)")
    p.add_argument("--cell-timeout", type=positive_float, metavar="SECONDS",
                   help="stop a cell after this long and record it as an error row")
    p.add_argument("--retries", type=int, default=1, metavar="N",
                   help="rerun a cell whose worker process died (killed, crashed) up to N times (default: 1)")
    p.add_argument("--claim-timeout", type=positive_float, default=180.0, metavar="SECONDS",
                   help="runners sharing --results skip cells another runner claimed; take a claim over when its "
                   "heartbeat is this old (its runner died; default: %(default)g)")
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("estimate", help="score each task × pretrained backbone before training (LogME, H-score, "
                       "NCE, LEEP); resumes by default")
    p.add_argument("suite", help="suite YAML file or bundled suite name")
    p.add_argument("--results", help="results directory (default: results/<suite name>)")
    p.add_argument("--samples", type=int, default=2000, metavar="N",
                   help="at most N training samples per estimate (stratified; default 2000)")
    p.add_argument("--force", action="store_true", help="recompute estimates that are already recorded")
    p.add_argument("--only", action="append", default=[], metavar="KEY=VALUE",
                   help="only task=NAME or backbone=NAME (repeatable)")
    p.add_argument("--device", help="torch device (default: cuda if available, else cpu)")
    p.set_defaults(func=cmd_estimate)

    p = sub.add_parser("report", help="write the HTML report of a results directory")
    p.add_argument("results_dir", help="results directory (results/<suite>)")
    p.add_argument("-o", "--output", help="HTML file (default: RESULTS_DIR/report.html)")
    p.set_defaults(func=cmd_report)

    p = sub.add_parser("summary", help="print the verdict of a results directory (tables per group, ranks)")
    p.add_argument("results_dir", help="results directory (results/<suite>)")
    p.set_defaults(func=cmd_summary)

    from bench.cli import advising, gate as cli_check  # `advise`; the regression gate's `check` and `baseline`

    advising.add_parser(sub)
    cli_check.add_parsers(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        if args.cache_dir:
            from bench.infra.cache import set_cache_dir

            set_cache_dir(args.cache_dir)
        return args.func(args)
    except UserError as err:
        print(f"transferbench: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("transferbench: interrupted; finished cells are recorded, rerun the same command to resume",
              file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
