"""Baseline instances without affinities: connected components of a foreground."""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from inpaintaff.utils.errors import InputError


def connected_components(foreground: np.ndarray, connectivity: int = 1) -> np.ndarray:
    """Label the connected components of a binary foreground: int64 labels 1..N, background 0.

    ``connectivity`` 1 = 4-neighbourhood (as the mutex watershed's attractive edges), 2 = 8.
    """
    fg = np.asarray(foreground)
    if fg.ndim != 2:
        raise InputError(None, f"foreground must be 2D, got shape {fg.shape}")
    if connectivity not in (1, 2):
        raise ValueError(f"connectivity must be 1 or 2, got {connectivity}")
    structure = ndimage.generate_binary_structure(2, connectivity)
    labels, _ = ndimage.label(fg.astype(bool), structure=structure)
    return labels.astype(np.int64)
