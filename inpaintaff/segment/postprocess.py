"""Clean-up of instance labels: small fragments join the neighbour they share most boundary with;
specks far smaller than a nucleus are dropped; holes inside an instance are filled."""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi

from inpaintaff.utils.labels import relabel_consecutive


def merge_small_segments(labels: np.ndarray, min_size: int, max_rounds: int = 4) -> np.ndarray:
    """Merge every segment smaller than ``min_size`` pixels into the touching segment (4-neighbourhood)
    with which it shares the longest boundary; fragments touching no other segment stay.

    Slivers along the foreground edge, where the affinities' boundary and the foreground's differ
    by a pixel or two, are the typical case. Labels come back consecutive from 1 (0 = background).
    """
    if min_size <= 1 or labels.max() == 0:
        return labels
    labels = labels.copy()
    for _ in range(max_rounds):
        sizes = np.bincount(labels.ravel())
        small = (sizes < min_size) & (sizes > 0)
        small[0] = False
        if not small.any():
            break
        # Boundary pairs (a, b) between different non-background segments, in both directions.
        a = np.concatenate([labels[:, :-1].ravel(), labels[:-1, :].ravel()])
        b = np.concatenate([labels[:, 1:].ravel(), labels[1:, :].ravel()])
        keep = (a != b) & (a > 0) & (b > 0)
        a, b = np.concatenate([a[keep], b[keep]]), np.concatenate([b[keep], a[keep]])
        from_small = small[a]
        a, b = a[from_small], b[from_small]
        if a.size == 0:
            break
        n = len(sizes)
        pairs, counts = np.unique(a.astype(np.int64) * n + b, return_counts=True)
        src, dst = pairs // n, pairs % n
        # For each small segment, the neighbour with most shared boundary (ties: the larger one).
        order = np.lexsort((sizes[dst], counts, src))
        src, dst = src[order], dst[order]
        last = np.r_[src[1:] != src[:-1], True]
        lut = np.arange(n, dtype=labels.dtype)
        lut[src[last]] = dst[last]
        # Resolve chains (a small segment merged into another small one that itself moved).
        for _ in range(8):
            nxt = lut[lut]
            if np.array_equal(nxt, lut):
                break
            lut = nxt
        labels = lut[labels]
    return relabel_consecutive(labels).astype(labels.dtype)


def drop_small_objects(labels: np.ndarray, min_area: float) -> np.ndarray:
    """``labels`` without the objects of fewer than ``min_area`` pixels (they become background),
    consecutive from 1. For the specks a foreground picks up in the noise of a dim image: run after
    :func:`merge_small_segments` with a fragment size above ``min_area``, so that what goes is isolated,
    not a piece of a nucleus."""
    if min_area <= 1 or labels.max() == 0:
        return labels
    small = np.bincount(labels.ravel()) < min_area
    small[0] = False
    if not small.any():
        return labels
    return relabel_consecutive(np.where(small[labels], 0, labels)).astype(labels.dtype)


def fill_holes(labels: np.ndarray) -> np.ndarray:
    """Background pixels enclosed by one instance join it (holes inside a nucleus); pixels of other
    instances are never changed."""
    out = np.array(labels, copy=True)
    for i, sl in enumerate(ndi.find_objects(labels), start=1):
        if sl is None:
            continue
        own = labels[sl] == i
        hole = ndi.binary_fill_holes(own) & ~own & (labels[sl] == 0)
        if hole.any():
            out[sl][hole] = i
    return out
