"""Where a foreground's pixel errors against the true one lie.

``1 − IoU`` of a predicted foreground against the true one is (missed + false pixels) / union.
``foreground_errors`` splits that sum into parts that call for different remedies:

- ``outline``: missed pixels on the true nuclei's outermost ring and false pixels touching them
  from outside: the predicted outline one pixel off the annotators'; of them ``outline_missed`` the
  missed ones (a foreground too tight), the rest false (too generous);
- ``unlabeled``: false pixels of predicted objects that touch no true nucleus, and of them
  ``unlabeled_border`` those cut by the image's border (where the CTC GT leaves nuclei unlabeled);
- ``missed``: pixels of true nuclei that no predicted pixel touches;
- ``rest``: everything else (holes and parts of nuclei missed deeper than their outline, objects
  grown far outward).

Pixels are 8-connected: the ring is one pixel wide in the 3 × 3 neighbourhood.
``iou + outline + unlabeled + missed + rest == 1`` (``outline_missed`` is part of ``outline``,
``unlabeled_border`` of ``unlabeled``).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from scipy import ndimage as ndi


def _bool_masks(pred: np.ndarray, truth: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    pred, truth = np.asarray(pred), np.asarray(truth)
    if pred.shape != truth.shape or pred.ndim != 2:
        raise ValueError(f"foreground_errors: pred {pred.shape} and truth {truth.shape} must be equal 2D shapes")
    return pred.astype(bool), truth.astype(bool)


PARTS = ("outline", "outline_missed", "unlabeled", "unlabeled_border", "missed", "rest")


def foreground_error_counts(pred: np.ndarray, truth: np.ndarray) -> dict[str, int]:
    """Pixel counts of ``pred`` against ``truth`` (2D, nonzero = foreground): ``union``,
    ``intersection`` and each of ``PARTS`` (module docstring). Counts of several images add up."""
    pred, truth = _bool_masks(pred, truth)
    missed, false = truth & ~pred, pred & ~truth
    square = np.ones((3, 3), bool)
    ring_inside = truth & ~ndi.binary_erosion(truth, square, border_value=1)
    ring_outside = ndi.binary_dilation(truth, square) & ~truth
    unlabeled = _objects_not_touching(pred, truth, square)
    whole_missed = _objects_not_touching(truth, pred, square)
    outline_missed = missed & ring_inside & ~whole_missed
    outline = outline_missed | (false & ring_outside & ~unlabeled)
    counts = {"union": int((pred | truth).sum()), "intersection": int((pred & truth).sum()),
              "outline": int(outline.sum()), "outline_missed": int(outline_missed.sum()),
              "unlabeled": int(unlabeled.sum()), "missed": int(whole_missed.sum())}
    counts["rest"] = int(missed.sum() + false.sum()) - counts["outline"] - counts["unlabeled"] - counts["missed"]
    objects, _ = ndi.label(unlabeled, square)
    edge = np.unique(np.concatenate([objects[0], objects[-1], objects[:, 0], objects[:, -1]]))
    counts["unlabeled_border"] = int(np.isin(objects, edge[edge > 0]).sum())
    return counts


def error_shares(counts: Mapping[str, int]) -> dict[str, float]:
    """``iou`` and each of ``PARTS`` as a share of the union, from (summed) ``foreground_error_counts``."""
    union = counts["union"]
    if union == 0:
        return {"iou": 1.0, **{k: 0.0 for k in PARTS}}
    return {"iou": counts["intersection"] / union, **{k: counts[k] / union for k in PARTS}}


def foreground_errors(pred: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    """IoU of ``pred`` against ``truth`` (2D, nonzero = foreground) and ``1 − IoU`` split into shares
    of the union (module docstring): ``iou`` and each of ``PARTS``."""
    return error_shares(foreground_error_counts(pred, truth))


def _objects_not_touching(a: np.ndarray, b: np.ndarray, structure: np.ndarray) -> np.ndarray:
    """The pixels of ``a``'s connected objects that share no pixel with ``b``."""
    objects, _ = ndi.label(a, structure)
    return (objects > 0) & ~np.isin(objects, np.unique(objects[a & b]))
