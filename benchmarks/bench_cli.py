"""Shared by the benchmarks that run the user's command lines: one command, its log, its seconds."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run_cli(args: list[str], log_path: Path) -> float:
    """Run ``python <args>`` from the project root, output to ``log_path``; returns wall seconds.
    A failing command ends the benchmark with the log's path."""
    t0 = time.perf_counter()
    with open(log_path, "w") as log:
        proc = subprocess.run([sys.executable, *args], cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
    if proc.returncode:
        sys.exit(f"command failed ({proc.returncode}), see {log_path}: {' '.join(args)}")
    return time.perf_counter() - t0
