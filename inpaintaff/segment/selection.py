"""Choosing α (and the fragment size, and FGNET's threshold) on labeled images: the one home of that
choice, shaped like stardist's ``optimize_thresholds``. A grid is scored by pooled SEG and detection
accuracy (``sweep`` over a split's frame inputs for the segmentation tasks, ``sweep_alpha`` over
images prepared once for the one-pass folder command), and ``best_row`` is the one rule that picks
from it. Storing the choice beside the affinities or the model, and reading it back, is
``segment/alpha.py``."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from inpaintaff.metrics.ctc import pool_seg, seg_from_overlap
from inpaintaff.metrics.detection import ACCURACY_IOU, ACCURACY_KEY, accuracy_at, detection_from_overlap, pool_detection
from inpaintaff.metrics.overlap import overlap
from inpaintaff.segment.evaluation import evaluate, resolved_task, summarize
from inpaintaff.segment.one_pass import OnePassSegmenter, Prepared
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
                         "n_gt": pooled["n_gt"], ACCURACY_KEY: accuracy_at(pooled["detection"], ACCURACY_IOU)})
    return rows


def select_alpha(inputs: Sequence[FrameInput], task: SegmentSelectSettings, where: Path) -> dict:
    """α (and the fragment size) chosen on the labeled frames ``inputs`` of ``task.select_split``, as
    stardist's ``optimize_thresholds`` does: pooled SEG for every α of ``task.alphas`` and every fragment
    size of ``task.min_sizes`` (when given). ``where``: the data set's folder, which the rows and errors
    name. Returns ``{"alpha", "min_size", "rows"}``: the choice and every grid point."""
    split = task.select_split
    alphas = [float(a) for a in task.alphas]
    if not alphas:
        raise ValueError("task.alphas is empty")
    if not inputs:
        raise InputError(where, f"split {split!r} holds no frames")
    if any(inp.labels is None for inp in inputs):
        raise InputError(where, f"every frame of split {split!r} needs GT to choose alpha")
    task = resolved_task(task, inputs)
    min_sizes = [int(m) for m in (task.min_sizes or [task.mws.min_size])]
    rows = []
    for r in sweep(inputs, task, alphas, min_sizes):
        if r["seg"] is None:
            raise InputError(where, f"split {split!r} holds no GT object (within task.crop): nothing to "
                             "choose alpha on")
        rows.append({"job": f"alpha={r['alpha']:g},min_size={r['min_size']}", "label": method_label(task),
                     "dataset": Path(where).name, "split": split, **r, "n_frames": len(inputs)})
        log.info("alpha=%g, min_size=%d: SEG %.4f on %s", r["alpha"], r["min_size"], r["seg"], split)
    best = best_row(rows, alphas)  # highest SEG: the smallest such min_size, then α
    return {"alpha": float(best["alpha"]), "min_size": int(best["min_size"]), "rows": rows}


def pooled_scores(gts: Sequence, preds: Sequence) -> dict:
    """SEG (None without GT objects), detection accuracy at IoU 0.5 and the GT objects, pooled over images."""
    overlaps = [overlap(gt, pred) for gt, pred in zip(gts, preds)]
    seg = pool_seg(seg_from_overlap(ov) for ov in overlaps)
    det = pool_detection(detection_from_overlap(ov, [ACCURACY_IOU]) for ov in overlaps)
    return {"seg": seg.seg if seg.n_gt else None, ACCURACY_KEY: float(det.accuracy[0]), "n_gt": seg.n_gt}


def sweep_alpha(one_pass: OnePassSegmenter, prepared: Sequence[Prepared], gts: Sequence, alphas: Sequence[float],
                min_sizes: Sequence[int], thresholds: Sequence[float] | None = None) -> list[dict]:
    """Pooled SEG and detection accuracy at IoU 0.5 over the prepared images for every (foreground
    threshold, min_size, α). ``thresholds`` (on FGNET's probability; empty: the settings' one) count
    for FGNET only; other foregrounds' rows have the threshold None."""
    if one_pass.settings.foreground != "fgnet":
        grid: Sequence[float | None] = [None]
    else:
        grid = [float(t) for t in thresholds] if thresholds else [one_pass.threshold]
    rows = []
    for threshold in grid:
        for min_size in min_sizes:
            for alpha in alphas:
                preds = [one_pass.finish(prep, alpha, min_size, threshold) for prep in prepared]
                rows.append({"alpha": float(alpha), "min_size": int(min_size), "threshold": threshold,
                             **pooled_scores(gts, preds)})
                log.info("%salpha=%g, min_size=%d: SEG %s, accuracy at IoU 0.5 %.4f",
                         "" if threshold is None else f"threshold={threshold:g}, ", alpha, min_size,
                         "n/a" if rows[-1]["seg"] is None else f"{rows[-1]['seg']:.4f}", rows[-1][ACCURACY_KEY])
    return rows


def best_row(rows: Sequence[dict], alphas: Sequence[float], seg_tolerance: float = 0.0) -> dict:
    """The row of highest SEG (the first of equal ones: the smallest fragment size, then α); among the
    rows within ``seg_tolerance`` of it, the one of highest detection accuracy at IoU 0.5.

    SEG does not count predicted objects that match no nucleus: two settings of nearly equal SEG can
    differ much in how many pieces they cut off (on DSB val, α 1 and 1.5: SEG 0.878 and 0.880,
    accuracy 0.745 and 0.644)."""
    scored = [r for r in rows if r["seg"] is not None]
    if not scored:
        raise ValueError("the selection images hold no labeled object: nothing to choose α on")
    top = max(scored, key=lambda r: r["seg"])  # the first of equal ones
    near = [r for r in scored if r["seg"] >= top["seg"] - seg_tolerance and r.get(ACCURACY_KEY) is not None]
    best = max(near, key=lambda r: r[ACCURACY_KEY]) if near else top
    if best is not top:
        log.info("alpha %g, min size %d: SEG %.4f, within %g of the best (%.4f at alpha %g, min size %d) and "
                 "accuracy at IoU 0.5 %.4f instead of %.4f", best["alpha"], best["min_size"], best["seg"],
                 seg_tolerance, top["seg"], top["alpha"], top["min_size"], best[ACCURACY_KEY], top[ACCURACY_KEY])
    if len(alphas) > 1 and best["alpha"] in (min(alphas), max(alphas)):
        log.warning("best alpha %g lies at the edge of the alphas %s: widen the grid", best["alpha"],
                    list(alphas))
    return best
