"""One cell, in one process: the suite and its cells, the registry, the cell context, the training loop."""
