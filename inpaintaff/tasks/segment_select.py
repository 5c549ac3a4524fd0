"""``task=segment_select``: choose α on one split (validation) and segment another (test) with it.

One command for the paper's protocol: ``python predict.py task=segment_select data=... ``.
The α scan runs in-process on inputs read once; ``alpha_selection.csv``/``.png`` record it, and
the chosen α's segmentation of ``task.split`` is written exactly as ``task=segment`` writes it
(its ``segment_result.json`` carries ``selected_on`` and ``alpha_selection``).
"""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path

from omegaconf import DictConfig

from inpaintaff.io.files import ensure_writable_dir
from inpaintaff.io.results import write_csv
from inpaintaff.segment.alpha import record_alpha_selection
from inpaintaff.segment.evaluation import evaluate, load_inputs, write_outputs
from inpaintaff.segment.selection import select_alpha
from inpaintaff.segment.settings import SegmentSelectSettings, segment_settings
from inpaintaff.segment.sweep import COLUMNS, plot_seg_vs_alpha
from inpaintaff.tasks.compose import load_data
from inpaintaff.viz.tensorboard import log_to_tensorboard

log = logging.getLogger(__name__)


def run(cfg: DictConfig) -> dict:
    task = segment_settings(cfg.task)  # bad settings fail before the frames are read
    if not isinstance(task, SegmentSelectSettings):
        raise ValueError("task=segment_select needs task.select_split and task.alphas")
    spec = task.affinities
    if spec.source == "dir" and spec.dir and Path(spec.dir).exists():
        ensure_writable_dir(spec.dir)  # alpha_selection.json goes there, after the whole scan
    seed = int(cfg.seed)
    dm = load_data(cfg.data)
    choice = select_alpha(load_inputs(dm, task.select_split, task, seed), task, Path(dm.root) / dm.dataset)
    alpha, min_size, rows = choice["alpha"], choice["min_size"], choice["rows"]
    out = Path(cfg.paths.output_dir)
    write_csv(out / "alpha_selection.csv", rows, [*COLUMNS, "min_size"])
    chosen = [r for r in rows if r["min_size"] == min_size]
    plot = plot_seg_vs_alpha(out / "alpha_selection.png", chosen,
                             title=f"α chosen on {task.select_split}: {alpha:g} (min_size {min_size})")
    log_to_tensorboard(out / "tensorboard", images={"alpha_selection/seg_vs_alpha": plot},
                       scalars={"alpha_selection/best_alpha": alpha})
    log.info("best alpha on %s: %g; segmenting %s", task.select_split, alpha, task.split)
    task = replace(task, mws=replace(task.mws, min_size=min_size))
    inputs = load_inputs(dm, task.split, task, seed)
    labels, scores, seconds = evaluate(inputs, task, alpha)
    alphas = [r["alpha"] for r in rows]
    extra = {"selected_on": task.select_split, "alpha_selection": rows, "min_size": min_size,
             "alpha_at_grid_edge": len(alphas) > 1 and alpha in (min(alphas), max(alphas))}
    if spec.source == "dir" and spec.dir:
        extra["alpha_file"] = str(record_alpha_selection(spec.dir, rows[0]["label"], task.foreground.source, alpha,
                                                         chosen, task.select_split, min_size=min_size))
    return write_outputs(out, task, dm, task.split, alpha, inputs, labels, scores, seconds, extra)
