"""Augmentation of labeled training crops: flips and quarter turns, and brightness that varies
between crops and across a crop (nuclei of one frame differ in brightness)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage as ndi

FIELD_GRID = 3  # control points per side of the smooth brightness field


@dataclass(frozen=True)
class Augment:
    """``flips``: one of the 8 flips and quarter turns; ``contrast``: the image times U(1-c, 1+c);
    ``brightness``: plus U(-b, b); ``field``: times a smooth random field within [1-f, 1+f]."""

    flips: bool = False
    contrast: float = 0.0
    brightness: float = 0.0
    field: float = 0.0

    def __post_init__(self) -> None:
        for name in ("contrast", "brightness", "field"):
            value = getattr(self, name)
            if not 0.0 <= value < 1.0:
                raise ValueError(f"data.augment.{name} must be in [0, 1), got {value}")

    @property
    def active(self) -> bool:
        return self.flips or bool(self.contrast or self.brightness or self.field)

    def __call__(self, image: np.ndarray, labels: np.ndarray | None, rng: np.random.Generator
                 ) -> tuple[np.ndarray, np.ndarray | None]:
        """The crop (and its labels, moved alike) augmented with draws from ``rng``."""
        if self.flips:
            k, flip = int(rng.integers(4)), bool(rng.integers(2))
            image = np.rot90(image[:, ::-1] if flip else image, k)
            labels = None if labels is None else np.rot90(labels[:, ::-1] if flip else labels, k)
        image = np.ascontiguousarray(image, dtype=np.float32)
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
