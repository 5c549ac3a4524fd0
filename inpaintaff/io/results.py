"""Result files of segmentation runs: the per-run JSON, CSV tables, and finding them again."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from inpaintaff.io.files import atomic_path

# Every segment run writes this file into its run directory; sweeps and reports look for it.
RESULT_NAME = "segment_result.json"

def write_csv(path: str | Path, rows: Sequence[Mapping[str, Any]], columns: Sequence[str] | None = None) -> Path:
    """Write dict rows as CSV (columns: the given ones, else the union in first-seen order), atomically."""
    if columns is None:
        columns = []
        for r in rows:
            columns += [k for k in r if k not in columns]
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(columns), extrasaction="ignore", lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow({k: _fmt(r.get(k)) for k in columns})
    path = Path(path)
    with atomic_path(path) as tmp:
        tmp.write_text(buf.getvalue())
    return path


def _fmt(v: Any) -> Any:
    if isinstance(v, float):
        return f"{v:.6g}"
    return "" if v is None else v


def find_results(roots: Iterable[str | Path], name: str = RESULT_NAME) -> list[Path]:
    """Every result file below the given folders (or the files themselves), sorted."""
    found: set[Path] = set()
    for root in roots:
        root = Path(root)
        if root.is_file():
            found.add(root)
        elif root.is_dir():
            found.update(root.rglob(name))
    return sorted(found)


def load_result(path: str | Path) -> dict:
    """A result JSON with the path it came from under ``_path``."""
    path = Path(path)
    data = json.loads(path.read_text())
    data["_path"] = str(path)
    return data
