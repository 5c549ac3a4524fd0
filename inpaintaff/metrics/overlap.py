"""Overlap (contingency) table of two label images, vectorised."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import sparse

from inpaintaff.utils.errors import InputError
from inpaintaff.utils.labels import relabel_with_ids

MAX_LABEL = int(np.iinfo(np.uint16).max)
# Above this many cells the dense table would be large: count the overlapping pairs sparsely.
_DENSE_LIMIT = 20_000_000


def check_labels(labels: np.ndarray, source: str | Path | None = None, what: str = "labels") -> np.ndarray:
    """A 2D integer label image in [0, 65535] (CTC's uint16), as an integer array; else InputError."""
    arr = np.asarray(labels)
    if arr.ndim != 2:
        raise InputError(source, f"{what} must be 2D, got shape {arr.shape}")
    if arr.dtype == bool or not np.issubdtype(arr.dtype, np.integer):
        raise InputError(source, f"{what} must be an integer label image, got dtype {arr.dtype}")
    if arr.size:
        lo, hi = int(arr.min()), int(arr.max())
        if lo < 0:
            raise InputError(source, f"{what} must be non-negative, min is {lo}")
        if hi > MAX_LABEL:
            raise InputError(source, f"{what} exceed uint16 (CTC masks): max label {hi} > {MAX_LABEL}")
    return arr


@dataclass(frozen=True)
class Overlap:
    """Objects of two labellings and their pairwise intersections.

    ``inter[i, j]`` = pixels shared by GT object ``gt_ids[i]`` and predicted object ``pred_ids[j]``
    (a scipy CSR matrix); ``gt_sizes``, ``pred_sizes`` = object areas.
    """

    gt_ids: np.ndarray
    pred_ids: np.ndarray
    gt_sizes: np.ndarray
    pred_sizes: np.ndarray
    inter: sparse.csr_matrix

    def iou(self) -> sparse.csr_matrix:
        """IoU of every overlapping pair (same sparsity as ``inter``)."""
        coo = self.inter.tocoo()
        union = self.gt_sizes[coo.row] + self.pred_sizes[coo.col] - coo.data
        return sparse.csr_matrix((coo.data / union, (coo.row, coo.col)), shape=self.inter.shape)


def overlap(gt: np.ndarray, pred: np.ndarray, source: str | Path | None = None) -> Overlap:
    """The overlap table of GT and predicted labels (same shape; 0 = background in both)."""
    gt = check_labels(gt, source, "GT labels")
    pred = check_labels(pred, source, "predicted labels")
    if gt.shape != pred.shape:
        raise InputError(source, f"GT labels {gt.shape} and predicted labels {pred.shape} differ in shape")
    g, gt_ids = relabel_with_ids(gt)
    p, pred_ids = relabel_with_ids(pred)
    ng, np_ = gt_ids.size + 1, pred_ids.size + 1
    gt_sizes = np.bincount(g.ravel(), minlength=ng)[1:]
    pred_sizes = np.bincount(p.ravel(), minlength=np_)[1:]
    both = (g > 0) & (p > 0)
    gi, pi = g[both] - 1, p[both] - 1
    shape = (ng - 1, np_ - 1)
    if shape[0] * shape[1] <= _DENSE_LIMIT:
        dense = np.bincount(gi * shape[1] + pi, minlength=shape[0] * shape[1]).reshape(shape)
        inter = sparse.csr_matrix(dense)
    else:
        keys, counts = np.unique(gi * shape[1] + pi, return_counts=True)
        inter = sparse.csr_matrix((counts, (keys // shape[1], keys % shape[1])), shape=shape)
    return Overlap(gt_ids, pred_ids, gt_sizes, pred_sizes, inter)
