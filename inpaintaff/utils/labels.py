"""Consecutive relabelling of label images (numpy)."""

from __future__ import annotations

import numpy as np

from inpaintaff.offsets import shifted_slices


def relabel_with_ids(labels: np.ndarray, foreground: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Labels 1..N in the order of the input label values, and the input value of each (N,).

    Background (0, or everything outside ``foreground``) becomes 0; inside ``foreground`` a 0 is a
    label like any other. Labels must be non-negative integers; the result is int64.
    """
    labels = np.asarray(labels)
    none = np.zeros(0, dtype=np.int64)
    if labels.size == 0:
        return labels.astype(np.int64), none
    # Look labels up only where they count: the foreground is often a small part of the frame.
    vals = labels[foreground] if foreground is not None else labels.ravel()
    out = np.zeros(labels.shape, dtype=np.int64)
    if vals.size == 0:
        return out, none
    present = np.zeros(int(vals.max()) + 1, dtype=bool)
    present[vals] = True
    if foreground is None:
        present[0] = False
    lut = np.cumsum(present, dtype=np.int64)
    if foreground is not None:
        out[foreground] = lut[vals]
    else:
        out = lut[labels]
    return out, np.flatnonzero(present)


def relabel_consecutive(labels: np.ndarray, foreground: np.ndarray | None = None) -> np.ndarray:
    """Labels 1..N in the order of the input label values; background (0, or outside ``foreground``) is 0."""
    return relabel_with_ids(labels, foreground)[0]


def touching_ids(labels: np.ndarray) -> np.ndarray:
    """The labels whose 1-pixel dilation (3 × 3, 8-neighbours) meets another label, sorted."""
    lab = np.asarray(labels)
    found = [np.zeros(0, dtype=lab.dtype)]
    for offset in ((0, 1), (1, 0), (1, 1), (1, -1)):
        src, dst = shifted_slices(lab.shape, offset)
        a, b = lab[src], lab[dst]
        pair = (a != b) & (a > 0) & (b > 0)
        found += [a[pair], b[pair]]
    return np.unique(np.concatenate(found))
