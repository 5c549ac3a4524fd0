"""The Cell Tracking Challenge SEG measure (docs/method.md §8).

A GT object R matches the predicted object S with |R ∩ S| > 0.5 |R| (at most one S can); its
score is the Jaccard index |R ∩ S| / |R ∪ S|, 0 when nothing matches. SEG = sum of scores /
number of GT objects, pooled over frames. False positives do not count; on sparsely labeled
frames only the labeled objects are evaluated (unlabeled pixels are GT background).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from inpaintaff.metrics.overlap import Overlap, overlap


@dataclass
class SegResult:
    """SEG of one frame (or pooled): per-object Jaccard scores of the GT objects."""

    n_gt: int
    score_sum: float
    n_matched: int
    jaccard: np.ndarray = field(repr=False)
    gt_ids: np.ndarray = field(repr=False)
    # Predicted object matched to each GT object (0 = none).
    matched_pred: np.ndarray = field(repr=False)

    @property
    def seg(self) -> float:
        """SEG; NaN when the frame has no GT objects."""
        return self.score_sum / self.n_gt if self.n_gt else float("nan")

    def as_dict(self) -> dict:
        return {"seg": self.seg, "n_gt": self.n_gt, "n_matched": self.n_matched, "score_sum": self.score_sum}


def seg_from_overlap(ov: Overlap) -> SegResult:
    """SEG of a frame from its overlap table."""
    n_gt = ov.gt_ids.size
    jac = np.zeros(n_gt, dtype=np.float64)
    matched = np.zeros(n_gt, dtype=np.int64)
    if n_gt and ov.pred_ids.size:
        inter = ov.inter
        best = np.asarray(inter.argmax(axis=1)).ravel()
        best_inter = np.asarray(inter.max(axis=1).todense()).ravel().astype(np.float64)
        ok = best_inter > 0.5 * ov.gt_sizes
        union = ov.gt_sizes + ov.pred_sizes[best] - best_inter
        jac[ok] = best_inter[ok] / union[ok]
        matched[ok] = ov.pred_ids[best[ok]]
    return SegResult(n_gt, float(jac.sum()), int((matched > 0).sum()), jac, ov.gt_ids, matched)


def seg_frame(gt: np.ndarray, pred: np.ndarray, source: str | Path | None = None) -> SegResult:
    """SEG of one frame: GT labels vs predicted labels (2D, uint16 range)."""
    return seg_from_overlap(overlap(gt, pred, source))


def pool_seg(results: Iterable[SegResult]) -> SegResult:
    """SEG pooled over frames: all GT objects of all frames weigh the same."""
    results = list(results)

    def cat(xs: list[np.ndarray], dt: type) -> np.ndarray:
        return np.concatenate(xs) if xs else np.zeros(0, dt)

    return SegResult(
        n_gt=sum(r.n_gt for r in results),
        score_sum=float(sum(r.score_sum for r in results)),
        n_matched=sum(r.n_matched for r in results),
        jaccard=cat([r.jaccard for r in results], np.float64),
        gt_ids=cat([r.gt_ids for r in results], np.int64),
        matched_pred=cat([r.matched_pred for r in results], np.int64),
    )
