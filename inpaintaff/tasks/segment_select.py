"""``task=segment_select``: choose α on one split (validation) and segment another (test) with it.

One command for the paper's protocol: ``python predict.py task=segment_select data=... ``.
The α scan runs in-process on inputs read once; ``alpha_selection.csv``/``.png`` record it, and
the chosen α's segmentation of ``task.split`` is written exactly as ``task=segment`` writes it
(its ``segment_result.json`` carries ``selected_on`` and ``alpha_selection``).
"""

from __future__ import annotations

import logging
from pathlib import Path

from omegaconf import DictConfig, open_dict

from inpaintaff.io.files import ensure_writable_dir
from inpaintaff.io.results import write_csv
from inpaintaff.segment.alpha import record_alpha_selection
from inpaintaff.segment.evaluation import evaluate, load_data, load_inputs, task_settings, write_outputs
from inpaintaff.segment.selection import select_alpha
from inpaintaff.segment.sweep import COLUMNS, plot_seg_vs_alpha
from inpaintaff.viz.tensorboard import log_to_tensorboard

log = logging.getLogger(__name__)


def run(cfg: DictConfig) -> dict:
    spec = cfg.task.affinities
    if spec.source == "dir" and spec.dir and Path(spec.dir).exists():
        ensure_writable_dir(spec.dir)  # alpha_selection.json goes there, after the whole scan
    task_settings(cfg)  # bad settings fail before the frames are read
    dm = load_data(cfg)
    alpha, min_size, rows = select_alpha(cfg, dm)
    out = Path(cfg.paths.output_dir)
    write_csv(out / "alpha_selection.csv", rows, [*COLUMNS, "min_size"])
    chosen = [r for r in rows if r["min_size"] == min_size]
    plot = plot_seg_vs_alpha(out / "alpha_selection.png", chosen,
                             title=f"α chosen on {cfg.task.select_split}: {alpha:g} (min_size {min_size})")
    log_to_tensorboard(out / "tensorboard", images={"alpha_selection/seg_vs_alpha": plot},
                       scalars={"alpha_selection/best_alpha": alpha})
    split = str(cfg.task.split)
    log.info("best alpha on %s: %g; segmenting %s", cfg.task.select_split, alpha, split)
    _, inputs = load_inputs(cfg, split, dm)
    with open_dict(cfg):
        cfg.task.mws.min_size = min_size
    labels, scores, seconds = evaluate(inputs, task_settings(cfg), alpha)
    alphas = [r["alpha"] for r in rows]
    extra = {"selected_on": str(cfg.task.select_split), "alpha_selection": rows, "min_size": min_size,
             "alpha_at_grid_edge": len(alphas) > 1 and alpha in (min(alphas), max(alphas))}
    if spec.source == "dir" and spec.dir:
        extra["alpha_file"] = str(record_alpha_selection(spec.dir, rows[0]["label"], cfg.task.foreground.source, alpha,
                                                         chosen,
                                                         str(cfg.task.select_split), min_size=min_size))
    return write_outputs(cfg, dm, split, alpha, inputs, labels, scores, seconds, extra)
