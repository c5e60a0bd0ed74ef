"""The ``advise`` command: arguments → ``bench.advise.advise``; the answer on stdout, progress on stderr."""

from __future__ import annotations

import argparse


def cmd_advise(args: argparse.Namespace) -> int:
    from bench.advise import advise
    from bench.cli.arguments import writable_dir

    results_dir = writable_dir(args.results.expanduser()) if args.results else None
    result = advise(args.path, args.budget, _names(args.backbones), _names(args.strategies), results_dir,
                    text=args.text, label=args.label, image_size=args.image_size, device=args.device,
                    report=not args.no_report)
    print(result.answer)
    for note in result.notes:
        print(f"  {note}")
    print(f"spent {result.spent_s / 60:.1f} min of the {result.budget_s / 60:.1f} min budget; "
          f"evidence: {result.report or result.results_dir}"
          + (f"; full-budget suite: {result.suite_file} (transferbench run {result.suite_file})"
             if result.suite_file else ""))
    return 0


def _names(values: list[str] | None) -> list[str] | None:
    """``--backbones a b`` and ``--backbones a,b`` alike."""
    if not values:
        return None
    return [name for value in values for name in value.split(",") if name]


def add_parser(sub) -> None:
    from pathlib import Path

    from bench.cli.arguments import positive_int

    p = sub.add_parser("advise", help="recommend a backbone and strategy for your own image folder or table, "
                       "within a wall-clock budget (docs/ADVISE.md)")
    p.add_argument("path", help="an image folder (one sub-folder per class) or a table (.csv .tsv .jsonl .json "
                   ".parquet)")
    p.add_argument("--budget", default="5m", help="wall-clock budget: 5m, 30m, 2h, ... (default 5m)")
    p.add_argument("--backbones", nargs="+", metavar="NAME", help="candidate backbones (default: offline ones for "
                   "the data: tf_efficientnet_lite0/1/2, or glove-6b-50d and minilm-l6)")
    p.add_argument("--strategies", nargs="+", metavar="NAME", help="candidate strategies (default: zero-shot, "
                   "feature-extraction, partial-freeze, full-fine-tune, lp-ft, from-scratch)")
    p.add_argument("--results", type=Path, help="results folder (default results/advise-<data name>); rerun to resume")
    p.add_argument("--text", help="a table's text column (default 'text')")
    p.add_argument("--label", help="a table's label column (default 'label')")
    p.add_argument("--image-size", type=positive_int, default=64, metavar="PX",
                   help="pixels of the stored and fed images of a folder (default 64)")
    p.add_argument("--device", help="torch device (default: cuda if available, else cpu)")
    p.add_argument("--no-report", action="store_true", help="skip the HTML report")
    p.set_defaults(func=cmd_advise)
