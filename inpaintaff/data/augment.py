"""Augmentation of labeled training crops: flips and quarter turns, and brightness that varies
between crops, across a crop and from nucleus to nucleus (nuclei of one frame differ in brightness)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage as ndi

FIELD_GRID = 3  # control points per side of the smooth brightness field
DIM_SMOOTH = 1.0  # px: the per-nucleus scale fades over about this, so no edge is drawn at the mask
BACKGROUND_PERCENTILE = 5.0  # of the crop's unlabeled pixels: the level dimming scales towards


@dataclass(frozen=True)
class Augment:
    """``flips``: one of the 8 flips and quarter turns; ``contrast``: the image times U(1-c, 1+c);
    ``brightness``: plus U(-b, b); ``field``: times a smooth random field within [1-f, 1+f];
    ``gamma``: the image (normalised, negatives kept) to the power exp(U(-g, g)); ``dim``: each
    labeled nucleus's contrast above the crop's background times U(1-d, 1), so that dim nuclei
    are seen as nuclei."""

    flips: bool = False
    contrast: float = 0.0
    brightness: float = 0.0
    field: float = 0.0
    gamma: float = 0.0
    dim: float = 0.0

    def __post_init__(self) -> None:
        for name in ("contrast", "brightness", "field", "gamma", "dim"):
            value = getattr(self, name)
            if not 0.0 <= value < 1.0:
                raise ValueError(f"data.augment.{name} must be in [0, 1), got {value}")

    @property
    def active(self) -> bool:
        return self.flips or bool(self.contrast or self.brightness or self.field or self.gamma or self.dim)

    def __call__(self, image: np.ndarray, labels: np.ndarray | None, rng: np.random.Generator
                 ) -> tuple[np.ndarray, np.ndarray | None]:
        """The crop (and its labels, moved alike) augmented with draws from ``rng``."""
        if self.flips:
            k, flip = int(rng.integers(4)), bool(rng.integers(2))
            image = np.rot90(image[:, ::-1] if flip else image, k)
            labels = None if labels is None else np.rot90(labels[:, ::-1] if flip else labels, k)
        image = np.ascontiguousarray(image, dtype=np.float32)
        if self.dim and labels is not None:
            image = dim_instances(image, labels, self.dim, rng)
        if self.gamma:
            power = float(np.exp(rng.uniform(-self.gamma, self.gamma)))
            image = np.sign(image) * np.abs(image) ** power
        if self.field:
            grid = rng.uniform(1 - self.field, 1 + self.field, (FIELD_GRID, FIELD_GRID))
            zoom = (image.shape[0] / FIELD_GRID, image.shape[1] / FIELD_GRID)
            field = ndi.zoom(grid, zoom, order=1, mode="nearest", grid_mode=True)
            image = image * field[:image.shape[0], :image.shape[1]]
        if self.contrast:
            image = image * rng.uniform(1 - self.contrast, 1 + self.contrast)
        if self.brightness:
            image = image + rng.uniform(-self.brightness, self.brightness)
        return image.astype(np.float32, copy=False), None if labels is None else np.ascontiguousarray(labels)


def dim_instances(image: np.ndarray, labels: np.ndarray, dim: float, rng: np.random.Generator) -> np.ndarray:
    """``image`` with each labeled instance's contrast above the background times U(1-dim, 1)
    (labels > 0 are instances, 0 background, < 0 unknown); the scale map is smoothed so that the
    change fades over about a pixel instead of drawing an edge at the mask."""
    ids = np.unique(labels[labels > 0])
    if ids.size == 0:
        return image
    lut = np.ones(int(ids.max()) + 1, dtype=np.float32)
    lut[ids] = rng.uniform(1.0 - dim, 1.0, ids.size)
    scale = ndi.gaussian_filter(np.where(labels > 0, lut[np.clip(labels, 0, None)], 1.0).astype(np.float32),
                                DIM_SMOOTH)
    unlabeled = image[labels == 0]
    background = float(np.percentile(unlabeled if unlabeled.size else image, BACKGROUND_PERCENTILE))
    return background + (image - background) * scale
