"""The command line: parses arguments and calls library functions (``transferbench`` = ``bench.cli:main``)."""

from bench.cli.main import main

__all__ = ["main"]
