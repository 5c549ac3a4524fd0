"""α sweeps: gather every job of a Hydra multirun into one table (CSV) and a plot of SEG vs α.

``python predict.py -m task=segment task.alpha=0.1,0.3,0.5`` runs one job per α; each job writes
``segment_result.json`` into its job folder. ``tasks.sweep_collector.SweepCollector`` (a Hydra
callback, configured under ``hydra.callbacks``) writes ``sweep.csv`` and ``sweep.png`` into the
sweep folder when the multirun ends; ``python -m inpaintaff.segment.sweep <sweep_dir>`` does the
same by hand.

Results are read back from the job folders, not from return values, so a job that ran in another
process still counts. The segment task builds no Lightning Trainer, so no DDP strategy relaunches
it; for tasks that train under a multirun, use ``trainer=ddp_spawn`` (``ddp`` relaunches the script
per rank).
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

from inpaintaff.io.results import RESULT_NAME, find_results, load_result, write_csv
from inpaintaff.metrics.detection import ACCURACY_IOU, ACCURACY_KEY, accuracy_at
from inpaintaff.viz.scores import plot_seg_vs_alpha
from inpaintaff.viz.tensorboard import log_to_tensorboard

log = logging.getLogger(__name__)

TABLE_NAME = "sweep.csv"
PLOT_NAME = "sweep.png"
COLUMNS = ["job", "label", "dataset", "split", "alpha", "seg", "n_gt", "n_frames", ACCURACY_KEY, "overrides",
           "output_dir"]


def _overrides(job_dir: Path) -> str:
    path = job_dir / ".hydra" / "overrides.yaml"
    if not path.exists():
        return ""
    return " ".join(str(o) for o in (OmegaConf.load(path) or []))


def sweep_rows(sweep_dir: str | Path) -> list[dict[str, Any]]:
    """One row per job result below ``sweep_dir``, sorted by label, dataset, split and α."""
    sweep_dir = Path(sweep_dir)
    rows = []
    for path in find_results([sweep_dir]):
        r = load_result(path)
        job_dir = path.parent
        rows.append({
            "job": str(job_dir.relative_to(sweep_dir)) if job_dir != sweep_dir else ".",
            "label": r.get("label"), "dataset": r.get("dataset"), "split": r.get("split"),
            "alpha": r.get("alpha"), "seg": r.get("seg"), "n_gt": r.get("n_gt"), "n_frames": r.get("n_frames"),
            ACCURACY_KEY: accuracy_at(r.get("detection"), ACCURACY_IOU), "overrides": _overrides(job_dir),
            "output_dir": str(job_dir),
        })
    rows.sort(key=lambda r: (str(r["label"]), str(r["dataset"]), str(r["split"]), r["alpha"] or 0.0, r["job"]))
    return rows


def collect_sweep(sweep_dir: str | Path) -> list[dict[str, Any]]:
    """Write ``sweep.csv`` and ``sweep.png`` into ``sweep_dir`` from every job's result; returns the rows."""
    sweep_dir = Path(sweep_dir)
    rows = sweep_rows(sweep_dir)
    if not rows:
        log.debug("no %s below %s: nothing to collect", RESULT_NAME, sweep_dir)
        return rows
    write_csv(sweep_dir / TABLE_NAME, rows, COLUMNS)
    plot = plot_seg_vs_alpha(sweep_dir / PLOT_NAME, rows, title=f"α sweep: {sweep_dir.name}")
    log_to_tensorboard(sweep_dir / "tensorboard", images={"sweep/seg_vs_alpha": plot})
    scored = [r for r in rows if r["seg"] is not None]
    if scored:
        best = max(scored, key=lambda r: r["seg"])
        log.info("sweep of %d job(s): best SEG %.4f at alpha=%g (%s); table %s", len(rows), best["seg"],
                 best["alpha"], best["job"], sweep_dir / TABLE_NAME)
    return rows


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Gather an α sweep's job results into sweep.csv and sweep.png")
    parser.add_argument("sweep_dir", type=Path)
    args = parser.parse_args(argv)
    rows = collect_sweep(args.sweep_dir)
    print(f"{len(rows)} job result(s) -> {args.sweep_dir / TABLE_NAME}")


if __name__ == "__main__":
    main()
