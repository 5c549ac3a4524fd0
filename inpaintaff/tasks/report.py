"""``task=report``: the paper's Table 1 and Fig. 5 from finished segmentation runs.

Reads every ``segment_result.json`` below ``task.runs`` and keeps, per row (method label) and
dataset, the result on ``task.split``: a run that chose α on another split (``task=segment_select``)
first, else the most recent. Writes ``table1.md``, ``table1.csv`` (SEG; missing cells "—"),
``detection.png`` (detection accuracy over IoU thresholds, one panel per dataset) and
``report.json`` (which run fed each cell) into ``task.out_dir``.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from omegaconf import MISSING as REQUIRED
from omegaconf import DictConfig

from inpaintaff.io.files import atomic_path, write_json
from inpaintaff.io.results import RESULT_NAME, find_results, load_result, write_csv
from inpaintaff.utils.config import typed
from inpaintaff.utils.errors import InputError
from inpaintaff.viz.scores import plot_detection_over_iou
from inpaintaff.viz.tensorboard import log_to_tensorboard

log = logging.getLogger(__name__)

MISSING = "—"
PAPER_ROWS = ("CC on TRUEFG", "INPAINTAFF + TRUEFG", "INPAINTAFF + FGNET", "AFFNET + FGNET")


def pick_results(results: Sequence[dict], split: str) -> dict[tuple[str, str], dict]:
    """The result per (label, dataset) on ``split``: α chosen on another split first, then newest."""
    best: dict[tuple[str, str], dict] = {}
    for r in results:
        if r.get("split") != split or r.get("seg") is None:
            continue
        key = (str(r.get("label")), str(r.get("dataset")))
        rank = (r.get("selected_on") not in (None, split), str(r.get("finished_at", "")))
        if key not in best or rank > best[key]["_rank"]:
            best[key] = {**r, "_rank": rank}
    return best


def build_table(
    picked: Mapping[tuple[str, str], dict],
    rows: Sequence[str] = PAPER_ROWS,
    datasets: Mapping[str, str] | None = None,
    extra_rows: bool = True,
) -> tuple[list[str], list[str], list[list[str]]]:
    """(row names, column names, cells) with SEG to 3 decimals and "—" where nothing ran."""
    datasets = dict(datasets or {})
    found = sorted({d for _, d in picked} - set(datasets))
    col_keys = list(datasets) + found
    col_names = [datasets.get(d, d) for d in col_keys]
    row_names = list(rows)
    if extra_rows:
        row_names += sorted({lab for lab, _ in picked} - set(rows))
    cells = [
        [f"{picked[(r, d)]['seg']:.3f}" if (r, d) in picked else MISSING for d in col_keys] for r in row_names
    ]
    return row_names, col_names, cells


def markdown_table(row_names: Sequence[str], col_names: Sequence[str], cells: Sequence[Sequence[str]]) -> str:
    """A Markdown table with a "Method" column first."""
    lines = ["| Method | " + " | ".join(col_names) + " |", "|---|" + "---|" * len(col_names)]
    lines += ["| " + " | ".join([r, *c]) + " |" for r, c in zip(row_names, cells)]
    return "\n".join(lines) + "\n"


def detection_panels(picked: Mapping[tuple[str, str], dict], datasets: Mapping[str, str]) -> dict[str, dict]:
    """Per dataset (its column title): method label (with its α) -> [its detection over IoU]."""
    panels: dict[str, dict] = {}
    for (label, dset), r in sorted(picked.items()):
        if r.get("detection"):
            alpha = f" (α={r['alpha']:g})" if r.get("method", "mws") == "mws" and r.get("alpha") is not None else ""
            panels.setdefault(datasets.get(dset, dset), {})[f"{label}{alpha}"] = [r["detection"]]
    return panels


@dataclass
class ReportSettings:
    """``task=report`` (defaults in ``conf/task/report.yaml``)."""

    name: str = REQUIRED
    runs: Any = REQUIRED  # a folder or a list of folders (or result files)
    split: str = REQUIRED
    rows: list[str] = REQUIRED
    extra_rows: bool = REQUIRED
    datasets: dict[str, str] = REQUIRED
    out_dir: str = REQUIRED


def run(cfg: DictConfig) -> dict:
    t = typed(cfg.task, ReportSettings)
    roots = t.runs if isinstance(t.runs, list) else [t.runs]
    out = Path(t.out_dir)
    if not roots:
        raise ValueError("task.runs is empty: give the folder(s) of finished segmentation runs")
    for root in roots:
        if not Path(root).exists():
            raise InputError(root, "task.runs: folder not found")
    found = find_results(roots)
    if not found:
        where = roots[0] if len(roots) == 1 else None
        raise InputError(where, f"task.runs: no {RESULT_NAME} below {'this folder' if where else roots}: nothing to "
                         "report (run task=segment, task=segment_select or task=table1 first)")
    results = []
    for path in found:
        try:
            results.append(load_result(path))
        except (OSError, ValueError) as exc:
            log.warning("skipping unreadable result %s (%s)", path, exc)
    picked = pick_results(results, t.split)
    datasets = t.datasets
    row_names, col_names, cells = build_table(picked, t.rows or PAPER_ROWS, datasets, t.extra_rows)
    md = markdown_table(row_names, col_names, cells)
    with atomic_path(out / "table1.md") as tmp:
        tmp.write_text(f"SEG on split `{t.split}` ({len(results)} result file(s) found)\n\n" + md)
    write_csv(out / "table1.csv", [{"method": r, **dict(zip(col_names, c))} for r, c in zip(row_names, cells)],
              ["method", *col_names])
    plot = plot_detection_over_iou(out / "detection.png", detection_panels(picked, datasets))
    log_to_tensorboard(out / "tensorboard", images={"report/detection_over_iou": plot},
                       scalars={f"report/seg/{lab}/{d}": r["seg"] for (lab, d), r in picked.items()})
    sources = {f"{lab} | {d}": {"seg": r["seg"], "alpha": r.get("alpha"), "run": r["_path"]}
               for (lab, d), r in picked.items()}
    report = {"split": t.split, "rows": row_names, "columns": col_names, "cells": cells, "sources": sources,
              "n_results_found": len(results)}
    write_json(out / "report.json", report)
    log.info("Table 1 (%d result file(s)):\n%s", len(results), md)
    return report
