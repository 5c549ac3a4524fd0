"""α and fragment size chosen on a user's own images with masks (``task.select`` of the folder
command), as stardist's ``optimize_thresholds`` does: each image is prepared once (resizing,
foreground, affinities), then only the mutex watershed runs per (fragment size, α)."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from inpaintaff.metrics.ctc import pool_seg, seg_from_overlap
from inpaintaff.metrics.detection import detection_from_overlap, pool_detection
from inpaintaff.metrics.overlap import overlap
from inpaintaff.segment.one_pass import OnePassSegmenter, Prepared

log = logging.getLogger(__name__)

ACCURACY_IOU = 0.5  # the IoU threshold of the detection accuracy that breaks near-ties of SEG


def pooled_scores(gts: Sequence, preds: Sequence) -> dict:
    """SEG (None without GT objects), detection accuracy at IoU 0.5 and the GT objects, pooled over images."""
    overlaps = [overlap(gt, pred) for gt, pred in zip(gts, preds)]
    seg = pool_seg(seg_from_overlap(ov) for ov in overlaps)
    det = pool_detection(detection_from_overlap(ov, [ACCURACY_IOU]) for ov in overlaps)
    return {"seg": seg.seg if seg.n_gt else None, "acc_50": float(det.accuracy[0]), "n_gt": seg.n_gt}


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
                         "n/a" if rows[-1]["seg"] is None else f"{rows[-1]['seg']:.4f}", rows[-1]["acc_50"])
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
    near = [r for r in scored if r["seg"] >= top["seg"] - seg_tolerance and r.get("acc_50") is not None]
    best = max(near, key=lambda r: r["acc_50"]) if near else top
    if best is not top:
        log.info("alpha %g, min size %d: SEG %.4f, within %g of the best (%.4f at alpha %g, min size %d) and "
                 "accuracy at IoU 0.5 %.4f instead of %.4f", best["alpha"], best["min_size"], best["seg"],
                 seg_tolerance, top["seg"], top["alpha"], top["min_size"], best["acc_50"], top["acc_50"])
    if len(alphas) > 1 and best["alpha"] in (min(alphas), max(alphas)):
        log.warning("best alpha %g lies at the edge of task.select.alphas %s: widen the grid", best["alpha"],
                    list(alphas))
    return best
