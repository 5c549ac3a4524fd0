"""How torch's CPU threads wait: set by the entry points before torch is imported."""

from __future__ import annotations

import os
import sys


def passive_openmp_threads() -> None:
    """Idle OpenMP threads sleep instead of spinning (``OMP_WAIT_POLICY=PASSIVE``) unless the user
    chose a policy. Read once when torch loads, so it must be set before torch is imported (spawned
    processes of ``trainer.devices=N`` inherit it). Spinning threads of torch's default thread count
    stall each other on a machine shared with other work: 16.5 s instead of 2.0 s per HeLa frame on
    2 busy cores (benchmarks/segment_folder.py). Only the waiting changes: results are identical."""
    if "torch" not in sys.modules:
        os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


# The entry points (predict.py, train.py, the command) import this module before anything that
# imports torch.
passive_openmp_threads()
