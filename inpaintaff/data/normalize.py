"""Per-image percentile normalisation."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from inpaintaff.utils.errors import InputError


def percentile_normalize(
    image: np.ndarray,
    low: float = 1.0,
    high: float = 99.8,
    eps: float = 1e-6,
    source: str | Path | None = None,
) -> np.ndarray:
    """Map the ``low`` and ``high`` percentiles of ``image`` to 0 and 1 (float32, not clipped)."""
    if not 0.0 <= low < high <= 100.0:
        raise ValueError(f"percentiles must satisfy 0 <= low < high <= 100, got {low}, {high}")
    image = np.asarray(image, dtype=np.float32)
    if not np.isfinite(image).all():
        raise InputError(source, "image contains NaN or infinite values")
    lo, hi = np.percentile(image, [low, high])
    if hi - lo < eps:
        lo, hi = float(image.min()), float(image.max())
        if hi - lo < eps:
            raise InputError(source, f"image is constant (value {lo:g}); it carries nothing to normalise")
    return ((image - lo) / (hi - lo)).astype(np.float32)
