"""TRUEFG: the foreground of GT labels (docs/method.md §6); thresholded probability files are read by
``inpaintaff.io.foreground``."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from inpaintaff.offsets import shifted_slices
from inpaintaff.utils.errors import InputError

# Opposite-neighbour pairs (dy, dx): horizontal, vertical and both diagonals.
GAP_PAIRS = ((0, 1), (1, 0), (1, 1), (1, -1))


def _shift(a: np.ndarray, dy: int, dx: int, fill: int = 0) -> np.ndarray:
    """``out[y, x] = a[y + dy, x + dx]``, ``fill`` outside the image."""
    out = np.full_like(a, fill)
    src, dst = shifted_slices(a.shape, (dy, dx))
    out[src] = a[dst]
    return out


def true_foreground(labels: np.ndarray, source: str | Path | None = None) -> np.ndarray:
    """TRUEFG: the binary foreground of GT ``labels``, with one-pixel gaps between segments closed.

    A background pixel joins the foreground when two opposite neighbours (left/right, up/down or
    diagonal) belong to two different segments; gaps two or more pixels wide stay open, and a
    segment's own notches and holes stay as the GT draws them.
    """
    labels = np.asarray(labels)
    if labels.ndim != 2:
        raise InputError(source, f"labels must be 2D, got shape {labels.shape}")
    if not np.issubdtype(labels.dtype, np.integer):
        raise InputError(source, f"labels must be integers, got dtype {labels.dtype}")
    fg = labels > 0
    gap = np.zeros_like(fg)
    for dy, dx in GAP_PAIRS:
        a, b = _shift(labels, dy, dx), _shift(labels, -dy, -dx)
        gap |= (a > 0) & (b > 0) & (a != b)
    return fg | gap
