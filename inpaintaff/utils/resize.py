"""Resizing 2D arrays: images (anti-aliased, linear), probability maps and label images (nearest),
pixel centres onto pixel centres. Below io/ and segment/, which both resize."""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi


def scaled_shape(shape: tuple[int, ...], factor: float) -> tuple[int, int]:
    """Shape of a 2D image resized by ``factor`` (at least 1 px per axis)."""
    return tuple(max(1, int(round(n * factor))) for n in shape[-2:])  # type: ignore[return-value]


def rescale_image(image: np.ndarray, factor: float) -> np.ndarray:
    """``image`` (2D, float) resized by ``factor``: Gaussian anti-aliasing before shrinking
    (σ = (1/factor − 1)/2, as scikit-image's ``rescale``), then linear interpolation."""
    image = np.asarray(image, dtype=np.float32)
    if factor == 1.0:
        return image
    if factor < 1.0:
        image = ndi.gaussian_filter(image, sigma=max(0.0, (1.0 / factor - 1.0) / 2.0), mode="mirror")
    return resize(image, scaled_shape(image.shape, factor), order=1)


def resize(array: np.ndarray, shape: tuple[int, int], order: int) -> np.ndarray:
    """Resize the last two axes of ``array`` to ``shape``: pixel centres map onto pixel centres
    (``order`` 0: nearest, which keeps labels labels; 1: linear)."""
    h, w = array.shape[-2:]
    if (h, w) == tuple(shape):
        return array
    if order == 0:
        rows = np.minimum(((np.arange(shape[0]) + 0.5) * h / shape[0]).astype(np.int64), h - 1)
        cols = np.minimum(((np.arange(shape[1]) + 0.5) * w / shape[1]).astype(np.int64), w - 1)
        return array[..., rows[:, None], cols[None, :]]
    ys = (np.arange(shape[0]) + 0.5) * h / shape[0] - 0.5
    xs = (np.arange(shape[1]) + 0.5) * w / shape[1] - 0.5
    grid = np.meshgrid(ys, xs, indexing="ij")
    if array.ndim == 2:
        return ndi.map_coordinates(array, grid, order=order, mode="nearest").astype(array.dtype)
    return np.stack([ndi.map_coordinates(a, grid, order=order, mode="nearest") for a in array]).astype(array.dtype)


def labels_to_shape(labels: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """A label image resized (nearest) to ``shape``: the way back from the model's scale."""
    return resize(np.asarray(labels), tuple(shape), order=0)
