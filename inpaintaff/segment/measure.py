"""Per-object measurements of a label image, as cellpose and stardist users expect in a table."""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi


def measure_objects(labels: np.ndarray, intensity: np.ndarray) -> list[dict]:
    """One row per object of ``labels`` (1..N): label, area (px), centroid (y, x) and mean
    intensity of ``intensity`` (the image as read, in its own units)."""
    labels = np.asarray(labels)
    if labels.shape != np.shape(intensity):
        raise ValueError(f"labels {labels.shape} and intensity image {np.shape(intensity)} differ in shape")
    n = int(labels.max()) if labels.size else 0
    if n == 0:
        return []
    index = np.arange(1, n + 1)
    area = np.bincount(labels.ravel(), minlength=n + 1)[1:]
    present = index[area > 0]
    centroids = ndi.center_of_mass(np.ones(labels.shape, dtype=np.float32), labels, present)
    means = ndi.mean(np.asarray(intensity, dtype=np.float64), labels, present)
    return [{"label": int(i), "area": int(area[i - 1]), "centroid_y": float(c[0]), "centroid_x": float(c[1]),
             "mean_intensity": float(m)} for i, c, m in zip(present, centroids, means)]
