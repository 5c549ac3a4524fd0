"""α and fragment size chosen on a user's own images with masks (``task.select`` of the folder
command), as stardist's ``optimize_thresholds`` does: each image is prepared once (resizing,
foreground, affinities), then only the mutex watershed runs per (fragment size, α)."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from inpaintaff.metrics.ctc import pool_seg, seg_from_overlap
from inpaintaff.metrics.overlap import overlap
from inpaintaff.segment.one_pass import OnePassSegmenter, Prepared

log = logging.getLogger(__name__)


def sweep_alpha(one_pass: OnePassSegmenter, prepared: Sequence[Prepared], gts: Sequence, alphas: Sequence[float],
                min_sizes: Sequence[int]) -> list[dict]:
    """Pooled SEG over the prepared images for every (min_size, α)."""
    rows = []
    for min_size in min_sizes:
        for alpha in alphas:
            seg = pool_seg(seg_from_overlap(overlap(gt, one_pass.finish(prep, alpha, min_size)))
                           for prep, gt in zip(prepared, gts))
            rows.append({"alpha": float(alpha), "min_size": int(min_size), "seg": seg.seg if seg.n_gt else None,
                         "n_gt": seg.n_gt})
            log.info("alpha=%g, min_size=%d: SEG %s", alpha, min_size,
                     "n/a" if rows[-1]["seg"] is None else f"{rows[-1]['seg']:.4f}")
    return rows


def best_row(rows: Sequence[dict], alphas: Sequence[float]) -> dict:
    """The row of highest SEG (the first of equal ones: the smallest fragment size, then α)."""
    scored = [r for r in rows if r["seg"] is not None]
    if not scored:
        raise ValueError("the selection images hold no labeled object: nothing to choose α on")
    best = max(scored, key=lambda r: r["seg"])
    if len(alphas) > 1 and best["alpha"] in (min(alphas), max(alphas)):
        log.warning("best alpha %g lies at the edge of task.select.alphas %s: widen the grid", best["alpha"],
                    list(alphas))
    return best
