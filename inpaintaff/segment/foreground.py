"""Foreground masks: TRUEFG from GT labels (docs/method.md §6) and thresholded probability maps."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from inpaintaff.data.ctc import read_2d
from inpaintaff.offsets import shifted_slices
from inpaintaff.utils.errors import InputError

# Opposite-neighbour pairs (dy, dx): horizontal, vertical and both diagonals.
_PAIRS = ((0, 1), (1, 0), (1, 1), (1, -1))


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
    for dy, dx in _PAIRS:
        a, b = _shift(labels, dy, dx), _shift(labels, -dy, -dx)
        gap |= (a > 0) & (b > 0) & (a != b)
    return fg | gap


def foreground_from_probability(
    prob: np.ndarray | str | Path, threshold: float = 0.5, shape: tuple[int, int] | None = None
) -> np.ndarray:
    """Binary foreground ``prob > threshold`` from an array or a TIFF file of values in [0, 1].

    ``shape``, if given, is the image shape the map must have.
    """
    source = None
    if isinstance(prob, (str, Path)):
        source = Path(prob)
        prob = read_2d(source)
    prob = np.squeeze(np.asarray(prob))
    if prob.ndim != 2:
        raise InputError(source, f"foreground probabilities must be 2D, got shape {prob.shape}")
    if shape is not None and prob.shape != tuple(shape):
        raise InputError(source, f"foreground of shape {prob.shape} does not match the image shape {tuple(shape)}")
    if prob.dtype == bool:
        return prob.copy()
    if not (np.issubdtype(prob.dtype, np.floating) or np.issubdtype(prob.dtype, np.integer)):
        raise InputError(source, f"foreground probabilities must be numbers, got dtype {prob.dtype}")
    prob = prob.astype(np.float32)
    if not np.isfinite(prob).all():
        raise InputError(source, "foreground probabilities contain NaN or infinite values")
    if prob.min() < 0 or prob.max() > 1:
        raise InputError(
            source, f"foreground probabilities must lie in [0, 1], got [{prob.min():g}, {prob.max():g}]"
        )
    if not 0 <= threshold < 1:
        raise ValueError(f"threshold must lie in [0, 1), got {threshold}")
    return prob > threshold
