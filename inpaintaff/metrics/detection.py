"""Detection over IoU thresholds (paper Fig. 5): one-to-one matching of GT and predicted objects.

For a threshold τ, GT and predicted objects are paired one-to-one so that the number of pairs
with IoU > τ is largest (ties: larger IoU); TP(τ) = those pairs, FP = unpaired predictions,
FN = unpaired GT objects. precision = TP/(TP+FP), recall = TP/(TP+FN), F1 = 2TP/(2TP+FP+FN),
accuracy = TP/(TP+FP+FN).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.optimize import linear_sum_assignment

from inpaintaff.metrics.overlap import Overlap, overlap

DEFAULT_THRESHOLDS = tuple(round(t, 2) for t in np.arange(0.1, 0.95, 0.05))


@dataclass
class DetectionCounts:
    """TP, FP, FN per IoU threshold (arrays aligned with ``thresholds``)."""

    thresholds: np.ndarray
    tp: np.ndarray
    fp: np.ndarray
    fn: np.ndarray

    def __add__(self, other: DetectionCounts) -> DetectionCounts:
        if not np.array_equal(self.thresholds, other.thresholds):
            raise ValueError("cannot pool detection counts over different thresholds")
        return DetectionCounts(self.thresholds, self.tp + other.tp, self.fp + other.fp, self.fn + other.fn)

    def _ratio(self, num: np.ndarray, den: np.ndarray) -> np.ndarray:
        with np.errstate(invalid="ignore", divide="ignore"):
            # Nothing to find and nothing found: a perfect score, not 0/0.
            return np.where(den > 0, num / np.maximum(den, 1), 1.0)

    @property
    def precision(self) -> np.ndarray:
        return self._ratio(self.tp, self.tp + self.fp)

    @property
    def recall(self) -> np.ndarray:
        return self._ratio(self.tp, self.tp + self.fn)

    @property
    def f1(self) -> np.ndarray:
        return self._ratio(2 * self.tp, 2 * self.tp + self.fp + self.fn)

    @property
    def accuracy(self) -> np.ndarray:
        return self._ratio(self.tp, self.tp + self.fp + self.fn)

    def as_dict(self) -> dict:
        """JSON-ready lists, one entry per threshold."""
        return {
            "thresholds": [float(t) for t in self.thresholds],
            "tp": self.tp.tolist(), "fp": self.fp.tolist(), "fn": self.fn.tolist(),
            "precision": self.precision.tolist(), "recall": self.recall.tolist(),
            "f1": self.f1.tolist(), "accuracy": self.accuracy.tolist(),
        }


def detection_from_overlap(
    ov: Overlap, thresholds: Sequence[float] = DEFAULT_THRESHOLDS, sparse_gt: bool = False
) -> DetectionCounts:
    """Counts per threshold from an overlap table.

    ``sparse_gt``: the GT labels only some objects; predictions that touch no GT object are then
    not counted as false positives.
    """
    th = np.asarray(thresholds, dtype=np.float64)
    if th.ndim != 1 or ((th < 0) | (th >= 1)).any():
        raise ValueError(f"IoU thresholds must lie in [0, 1), got {list(thresholds)}")
    n_gt = ov.gt_ids.size
    n_pred = ov.pred_ids.size
    if sparse_gt:
        n_pred = int((np.diff(ov.inter.tocsc().indptr) > 0).sum())
    tp = np.zeros(th.size, dtype=np.int64)
    coo = ov.iou().tocoo()
    if coo.nnz:
        # Only objects that overlap anything take part in the assignment (small dense problem).
        rows, r_inv = np.unique(coo.row, return_inverse=True)
        cols, c_inv = np.unique(coo.col, return_inverse=True)
        iou = np.zeros((rows.size, cols.size))
        iou[r_inv, c_inv] = coo.data
        k = max(1, min(iou.shape))
        for i, t in enumerate(th):
            hit = iou > t
            if not hit.any():
                continue
            if t >= 0.5:  # IoU > 0.5 pairs are already one-to-one
                tp[i] = int(hit.sum())
                continue
            r, c = linear_sum_assignment(-(hit + iou / (2.0 * k)))
            tp[i] = int(hit[r, c].sum())
    return DetectionCounts(th, tp, n_pred - tp, n_gt - tp)


def detection_frame(
    gt: np.ndarray,
    pred: np.ndarray,
    thresholds: Sequence[float] = DEFAULT_THRESHOLDS,
    sparse_gt: bool = False,
    source: str | Path | None = None,
) -> DetectionCounts:
    """Detection counts of one frame."""
    return detection_from_overlap(overlap(gt, pred, source), thresholds, sparse_gt)


def pool_detection(counts: Iterable[DetectionCounts]) -> DetectionCounts:
    """Counts summed over frames."""
    counts = list(counts)
    if not counts:
        raise ValueError("no frames to pool")
    out = counts[0]
    for c in counts[1:]:
        out = out + c
    return out


# The detection accuracy that breaks near-ties of SEG: its IoU threshold, and its name in every row,
# result and CSV.
ACCURACY_IOU = 0.5
ACCURACY_KEY = "det_acc_0.5"


def accuracy_at(detection: Mapping[str, Sequence[float]] | None, threshold: float) -> float | None:
    """Detection accuracy at one IoU threshold from a detection dict (``DetectionCounts.as_dict()``, as
    result files store it); None when it was not measured there."""
    det = detection or {}
    thresholds = np.asarray(det.get("thresholds", []), float)
    idx = np.flatnonzero(np.isclose(thresholds, threshold))
    return float(det["accuracy"][idx[0]]) if idx.size else None
