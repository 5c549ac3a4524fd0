"""Choosing α (and the fragment size) on a labeled split: pooled SEG over a grid, the best pair."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from inpaintaff.metrics.detection import accuracy_at
from inpaintaff.segment.evaluation import evaluate, load_inputs, resolved_task, summarize
from inpaintaff.segment.pipeline import FrameInput
from inpaintaff.segment.settings import SegmentSelectSettings, SegmentSettings, method_label
from inpaintaff.utils.errors import InputError

log = logging.getLogger(__name__)


def sweep(inputs: Sequence[FrameInput], task: SegmentSettings, alphas: Sequence[float],
          min_sizes: Sequence[int]) -> list[dict]:
    """Pooled SEG (and detection accuracy at IoU 0.5) for every (min_size, α): every frame segmented
    once per pair."""
    rows = []
    for min_size in min_sizes:
        sized = replace(task, mws=replace(task.mws, min_size=int(min_size)))
        for alpha in alphas:
            labels, scores, seconds = evaluate(inputs, sized, alpha)
            _, pooled = summarize(inputs, labels, scores, seconds)
            rows.append({"alpha": float(alpha), "min_size": int(min_size), "seg": pooled["seg"],
                         "n_gt": pooled["n_gt"], "det_acc_0.5": accuracy_at(pooled["detection"], 0.5)})
    return rows


def select_alpha(dm: Any, task: SegmentSelectSettings, seed: int) -> tuple[float, int, list[dict]]:
    """Pooled SEG of ``task.select_split`` of the data module ``dm`` for every α of ``task.alphas`` (and
    every fragment size of ``task.min_sizes``, when given); the best α, its min_size and all the rows."""
    split = task.select_split
    alphas = [float(a) for a in task.alphas]
    if not alphas:
        raise ValueError("task.alphas is empty")
    inputs = load_inputs(dm, split, task, seed)
    task = resolved_task(task, inputs)
    min_sizes = [int(m) for m in (task.min_sizes or [task.mws.min_size])]
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
