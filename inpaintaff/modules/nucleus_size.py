"""Every checkpoint records the nucleus size its net was trained for, so that inference can resize
images to it (``inpaintaff.segment.scale``)."""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pytorch_lightning as pl

from inpaintaff.modules.loading import META_KEY

log = logging.getLogger(__name__)

# Raw frames an unlabeled data set's estimate looks at (evenly spread): enough for a median.
MAX_FRAMES = 16


def training_diameter(data: Any) -> tuple[float | None, str]:
    """The median nucleus diameter (px) of a data module's training data, and how it was found:
    ``data.diameter`` when given; else the GT labels of the train split (labeled training); else
    the median of per-frame estimates from the raw frames' intensity foreground."""
    from inpaintaff.segment.diameter import estimate_diameter, intensity_foreground, object_diameters

    if getattr(data, "resize_to", None):
        return float(data.resize_to), "data.resize_to (every training frame resized to nuclei of this size)"
    if getattr(data, "diameter", None):
        return float(data.diameter), "data.diameter"
    if data.train_mode == "labeled":
        refs = [r for r in data.frames("train") if r.gt_path is not None]
        sizes = np.concatenate([object_diameters(np.clip(data.load_labels(r), 0, None)) for r in refs] or [[]])
        if sizes.size:
            return float(np.median(sizes)), f"median equivalent diameter of {sizes.size} GT nuclei of the train split"
    refs = data.frames("raw")
    refs = [refs[i] for i in np.linspace(0, len(refs) - 1, min(len(refs), MAX_FRAMES)).astype(int)] if refs else []
    estimates = [estimate_diameter(intensity_foreground(data.load_image(r))).diameter for r in refs]
    estimates = [e for e in estimates if e]
    if not estimates:
        return None, "unknown (no nucleus found in the raw frames)"
    how = f"median of estimates from the intensity foreground of {len(estimates)} raw frame(s)"
    return float(np.median(estimates)), how


class NucleusSizeRecorder(pl.Callback):
    """Writes ``{"nucleus_diameter": px, "nucleus_diameter_from": how, "record": ...}`` into every
    checkpoint (``record``: what shaped the run, see ``inpaintaff.modules.training_record``)."""

    def __init__(self, diameter: float | None, how: str, record: dict | None = None):
        self.diameter, self.how, self.record = diameter, how, record

    def on_save_checkpoint(self, trainer: pl.Trainer, pl_module: pl.LightningModule, checkpoint: dict) -> None:
        checkpoint[META_KEY] = {"nucleus_diameter": self.diameter, "nucleus_diameter_from": self.how,
                                "record": self.record}
