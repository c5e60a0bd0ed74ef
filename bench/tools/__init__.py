"""Developer tools (speed figures, executor and report benchmarks); not used by the library."""
