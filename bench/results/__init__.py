"""The results schema and its one reader and one writer; seed statistics shared by the report and the gate.

Nothing here imports torch: the report and the regression gate read results without the training code.
"""

from bench.results.schema import CellRecord, new_row
from bench.results.store import (cells_dir, consolidate, consolidate_locked, load_results, read_cell_rows,
                                 read_pretraining, record_cell, record_copy, to_frame, write_row)

__all__ = ["CellRecord", "new_row", "cells_dir", "consolidate", "consolidate_locked", "load_results",
           "read_cell_rows", "read_pretraining", "record_cell", "record_copy", "to_frame", "write_row"]
