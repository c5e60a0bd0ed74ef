"""transferbench: run a strategy × task × backbone × seed × fraction matrix and record tidy results."""

__version__ = "0.1.0"
