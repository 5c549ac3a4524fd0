"""``task=label_budget_report``: gather a label-budget sweep into its table and figures.

    python predict.py task=label_budget_report task.sweep_dir=runs/hela_label_budget

Reads every job's ``budget_result.json`` below ``task.sweep_dir`` and writes into ``task.out_dir``
(the sweep folder by default):

- ``label_budget.csv``: every job's result, a row per job and method (budget, seed, labeled
  instances, α and fragment size chosen, SEG on each split, detection accuracy at IoU 0.5); job
  folders without a result (a job that failed or has not run) get a row marked ``missing``;
- ``label_budget.md``: mean ± std over seeds per budget and method;
- ``seg_vs_labels.png`` (Fig. 4) and ``detection_over_iou.png`` (Fig. 5, at the budget whose mean
  labeled instances are nearest ``task.detection_budget``), also logged to TensorBoard.

The multirun of ``experiment=hela_label_budget`` runs this at its end (``SweepCollector``).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from omegaconf import MISSING, DictConfig

from inpaintaff.io.files import atomic_path, write_json
from inpaintaff.io.results import write_csv
from inpaintaff.metrics.detection import ACCURACY_IOU, ACCURACY_KEY, accuracy_at
from inpaintaff.tasks.label_budget import RESULT_NAME
from inpaintaff.utils.config import typed
from inpaintaff.viz.scores import plot_detection_over_iou, plot_seg_vs_labels
from inpaintaff.viz.tensorboard import log_to_tensorboard

log = logging.getLogger(__name__)

CSV_NAME = "label_budget.csv"


def find_jobs(sweep_dir: Path) -> tuple[list[dict], list[Path]]:
    """(results, job folders without one): job folders are those Hydra wrote ``.hydra`` into."""
    results, missing = [], []
    jobs = sorted({p.parent for p in sweep_dir.rglob(".hydra")} | {p.parent for p in sweep_dir.rglob(RESULT_NAME)})
    for job in jobs:
        path = job / RESULT_NAME
        if not path.exists():
            if any(job == r or r in job.parents for r in (Path(x["job_dir"]) for x in results)):
                continue  # a sub-run inside a job folder
            missing.append(job)
            continue
        result = json.loads(path.read_text())
        result["job_dir"] = str(job)
        results.append(result)
    return results, missing


def job_rows(results: Sequence[Mapping], missing: Sequence[Path], sweep_dir: Path, split: str,
             select: str) -> list[dict]:
    """One row per job and method (the sweep table); ``missing`` jobs get one row each."""
    rows = []
    for r in results:
        for m in r["rows"]:
            rows.append({"job": str(Path(r["job_dir"]).relative_to(sweep_dir)), "budget": r["budget"],
                         "seed": r["seed"], "n_labeled": r["n_labeled"], "method": m["label"],
                         "alpha": m.get("alpha"), "min_size": m.get("min_size"),
                         f"seg_{select}": m.get(f"seg_{select}"), f"seg_{split}": m.get(f"seg_{split}"),
                         ACCURACY_KEY: accuracy_at(m.get(f"detection_{split}"), ACCURACY_IOU),
                         "status": "done"})
    for job in missing:
        rows.append({"job": str(job.relative_to(sweep_dir)), "status": "missing"})
    rows.sort(key=lambda r: (_budget_key(r.get("budget")), r.get("seed") or 0, str(r.get("method"))))
    return rows


def _budget_key(budget: Any) -> float:
    if budget is None:
        return float("inf")
    return float("inf") - 1 if str(budget) == "all" else float(budget)


def summarize(results: Sequence[Mapping], split: str) -> list[dict]:
    """Mean and std over seeds per budget and method (SEG on ``split``, labeled instances)."""
    groups: dict[tuple[str, str], list[tuple[int, float | None]]] = {}
    for r in results:
        for m in r["rows"]:
            groups.setdefault((str(r["budget"]), m["label"]), []).append((r["n_labeled"], m.get(f"seg_{split}")))
    order = {m: i for i, m in enumerate(dict.fromkeys(m["label"] for r in results for m in r["rows"]))}
    out = []  # budgets in increasing order; methods in the order of the jobs' rows (the plots' colours)
    for (budget, method), vals in sorted(groups.items(), key=lambda kv: (_budget_key(kv[0][0]), order[kv[0][1]])):
        n = np.asarray([v[0] for v in vals], float)
        segs = np.asarray([v[1] for v in vals if v[1] is not None], float)
        out.append({"budget": budget, "method": method, "n_seeds": len(vals),
                    "n_labeled": float(n.mean()), "n_labeled_std": float(n.std()),
                    "seg": float(segs.mean()) if segs.size else None,
                    "seg_std": float(segs.std()) if segs.size else 0.0})
    return out


def nearest_budget(summary: Sequence[Mapping], target: float) -> str | None:
    """The budget whose mean labeled instances are nearest ``target``."""
    if not summary:
        return None
    return min(summary, key=lambda r: abs(r["n_labeled"] - target))["budget"]


def markdown(summary: Sequence[Mapping], split: str) -> str:
    """Budgets × methods: mean ± std SEG over seeds, labeled instances in the first column."""
    methods = list(dict.fromkeys(r["method"] for r in summary))
    budgets = list(dict.fromkeys(r["budget"] for r in summary))
    cell = {(r["budget"], r["method"]): r for r in summary}
    lines = ["| Budget (labeled instances, mean) | " + " | ".join(methods) + " |",
             "|---" * (len(methods) + 1) + "|"]
    for b in budgets:
        first = next(cell[(b, m)] for m in methods if (b, m) in cell)
        cells = []
        for m in methods:
            r = cell.get((b, m))
            cells.append("—" if r is None or r["seg"] is None else f"{r['seg']:.3f} ± {r['seg_std']:.3f}")
        lines.append(f"| {b} ({first['n_labeled']:.1f}, {first['n_seeds']} seeds) | " + " | ".join(cells) + " |")
    return f"SEG on `{split}` (mean ± std over seeds)\n\n" + "\n".join(lines) + "\n"


def collect(sweep_dir: str | Path, out_dir: str | Path | None = None, split: str | None = None,
            detection_budget: float = 50.0) -> dict:
    """Write the sweep's table, summary and figures; returns the report (also ``label_budget.json``)."""
    sweep_dir = Path(sweep_dir)
    out = Path(out_dir or sweep_dir)
    if not sweep_dir.is_dir():
        raise FileNotFoundError(f"{sweep_dir}: sweep folder not found")
    results, missing = find_jobs(sweep_dir)
    if not results:
        raise FileNotFoundError(f"{sweep_dir}: no {RESULT_NAME} below it (has the sweep run?)")
    select = results[0]["splits"][0]
    split = split or results[0]["splits"][-1]
    rows = job_rows(results, missing, sweep_dir, split, select)
    columns = ["job", "budget", "seed", "n_labeled", "method", "alpha", "min_size", f"seg_{select}",
               f"seg_{split}", ACCURACY_KEY, "status"]
    write_csv(out / CSV_NAME, rows, columns)
    summary = summarize(results, split)
    md = markdown(summary, split)
    if missing:
        md += f"\n{len(missing)} job(s) without a result: {', '.join(str(m.relative_to(sweep_dir)) for m in missing)}\n"
        log.warning("%d job(s) of %s have no %s: %s", len(missing), sweep_dir, RESULT_NAME, missing)
    with atomic_path(out / "label_budget.md") as tmp:
        tmp.write_text(md)
    images = {"label_budget/seg_vs_labels": plot_seg_vs_labels(out / "seg_vs_labels.png", summary, split)}
    near = nearest_budget(summary, detection_budget)
    curves: dict[str, list] = {}
    for r in results:
        if str(r["budget"]) == near:
            for m in r["rows"]:
                curves.setdefault(m["label"], []).append(m.get(f"detection_{split}"))
    n_near = next(s["n_labeled"] for s in summary if s["budget"] == near)
    title = f"detection on {split} frames, budget {near} ({n_near:.0f} labeled instances, mean over seeds)"
    images["label_budget/detection_over_iou"] = plot_detection_over_iou(out / "detection_over_iou.png",
                                                                        {title: curves})
    # One curve per method, stepped by labeled instances (TensorBoard's x axis).
    series: dict[str, list[tuple[int, float]]] = {}
    for s in summary:
        if s["seg"] is not None:
            series.setdefault(f"label_budget/{s['method']}/seg_{split}", []).append((round(s["n_labeled"]), s["seg"]))
    log_to_tensorboard(out / "tensorboard", images=images, series=series)
    report = {"sweep_dir": str(sweep_dir), "split": split, "select_split": select, "n_jobs": len(results),
              "missing": [str(m) for m in missing], "summary": summary, "detection_budget": near,
              "markdown": md, "figures": {k: str(v) for k, v in images.items()}}
    write_json(out / "label_budget.json", report)
    log.info("label budget sweep (%d job(s), %d missing):\n%s", len(results), len(missing), md)
    return report


@dataclass
class LabelBudgetReportSettings:
    """``task=label_budget_report`` (defaults in ``conf/task/label_budget_report.yaml``)."""

    name: str = MISSING
    sweep_dir: str | None = MISSING
    out_dir: str | None = MISSING
    split: str | None = MISSING
    detection_budget: float = MISSING


def run(cfg: DictConfig) -> dict:
    t = typed(cfg.task, LabelBudgetReportSettings)
    if not t.sweep_dir:
        raise ValueError("set task.sweep_dir: the folder of a label-budget sweep (e.g. runs/hela_label_budget)")
    return collect(t.sweep_dir, t.out_dir, t.split, t.detection_budget)
