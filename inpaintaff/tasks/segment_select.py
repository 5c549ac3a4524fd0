"""``task=segment_select``: choose α on one split (validation) and segment another (test) with it.

One command for the paper's protocol: ``python predict.py task=segment_select data=... ``.
The α scan runs in-process on inputs read once; ``alpha_selection.csv``/``.png`` record it, and
the chosen α's segmentation of ``task.split`` is written exactly as ``task=segment`` writes it
(its ``segment_result.json`` carries ``selected_on`` and ``alpha_selection``).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, open_dict

from inpaintaff.segment.alpha import record_alpha_selection
from inpaintaff.segment.pipeline import FrameInput
from inpaintaff.segment.results import method_label, write_csv
from inpaintaff.segment.sweep import COLUMNS, plot_seg_vs_alpha
from inpaintaff.tasks.segment import (
    evaluate,
    load_data,
    load_inputs,
    resolved_task,
    summarize,
    task_dict,
    write_outputs,
)
from inpaintaff.utils.errors import InputError
from inpaintaff.viz.tensorboard import log_to_tensorboard

log = logging.getLogger(__name__)


def sweep(inputs: Sequence[FrameInput], task: Mapping[str, Any], alphas: Sequence[float],
          min_sizes: Sequence[int]) -> list[dict]:
    """Pooled SEG (and detection accuracy at IoU 0.5) for every (min_size, α): every frame segmented
    once per pair."""
    rows = []
    for min_size in min_sizes:
        sized = {**task, "mws": {**(task.get("mws") or {}), "min_size": int(min_size)}}
        for alpha in alphas:
            labels, scores, seconds = evaluate(inputs, sized, alpha)
            _, pooled = summarize(inputs, labels, scores, seconds)
            det = pooled["detection"] or {}
            acc = dict(zip(det.get("thresholds", []), det.get("accuracy", []))).get(0.5)
            rows.append({"alpha": float(alpha), "min_size": int(min_size), "seg": pooled["seg"],
                         "n_gt": pooled["n_gt"], "det_acc_0.5": acc})
    return rows


def select_alpha(cfg: DictConfig, dm) -> tuple[float, int, list[dict]]:
    """Pooled SEG of ``task.select_split`` for every α of ``task.alphas`` (and every fragment size
    of ``task.min_sizes``, when given); the best α, its min_size and all the rows."""
    split = str(cfg.task.select_split)
    alphas = [float(a) for a in cfg.task.alphas]
    if not alphas:
        raise ValueError("task.alphas is empty")
    min_sizes = [int(m) for m in (cfg.task.get("min_sizes") or [cfg.task.mws.get("min_size", 0)])]
    _, inputs = load_inputs(cfg, split, dm)
    task = resolved_task(cfg, inputs)
    if any(inp.labels is None for inp in inputs):
        raise InputError(Path(dm.root) / dm.dataset, f"every frame of split {split!r} needs GT to choose alpha")
    rows = []
    for r in sweep(inputs, task, alphas, min_sizes):
        if r["seg"] is None:
            raise InputError(Path(dm.root) / dm.dataset, f"split {split!r} holds no GT object (within "
                             "task.crop): nothing to choose alpha on")
        rows.append({"job": f"alpha={r['alpha']:g},min_size={r['min_size']}", "label": method_label(task),
                     "dataset": dm.dataset, "split": split, **r, "n_frames": len(inputs)})
        log.info("alpha=%g, min_size=%d: SEG %.4f on %s", r["alpha"], r["min_size"], r["seg"], split)
    best = max(rows, key=lambda r: r["seg"])  # first of equal scores: the smallest such min_size, then α
    if best["alpha"] in (min(alphas), max(alphas)) and len(alphas) > 1:
        log.warning("best alpha %g lies at the edge of task.alphas %s: widen the grid", best["alpha"], alphas)
    return float(best["alpha"]), int(best["min_size"]), rows


def run(cfg: DictConfig) -> dict:
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
    labels, scores, seconds = evaluate(inputs, task_dict(cfg), alpha)
    alphas = [r["alpha"] for r in rows]
    extra = {"selected_on": str(cfg.task.select_split), "alpha_selection": rows, "min_size": min_size,
             "alpha_at_grid_edge": len(alphas) > 1 and alpha in (min(alphas), max(alphas))}
    spec = cfg.task.affinities
    if spec.get("source") == "dir" and spec.get("dir"):
        extra["alpha_file"] = str(record_alpha_selection(spec.dir, rows[0]["label"], cfg.task.foreground, alpha, chosen,
                                                         str(cfg.task.select_split), min_size=min_size))
    return write_outputs(cfg, dm, split, alpha, inputs, labels, scores, seconds, extra)
