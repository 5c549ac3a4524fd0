"""Pictures and numbers of segmentation runs into TensorBoard (beside their PNG files)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np


def log_to_tensorboard(
    log_dir: str | Path,
    images: Mapping[str, str | Path | np.ndarray] | None = None,
    scalars: Mapping[str, float | None] | None = None,
    step: int = 0,
    series: Mapping[str, Sequence[tuple[int, float]]] | None = None,
) -> None:
    """Write PNG files (or RGB float arrays (H, W, 3)) and scalars as TensorBoard events;
    ``series`` adds curves as (step, value) points per tag."""
    from torch.utils.tensorboard import SummaryWriter

    writer = SummaryWriter(log_dir=str(log_dir))
    try:
        for tag, img in (images or {}).items():
            if isinstance(img, (str, Path)):
                import matplotlib.image as mpimg

                img = mpimg.imread(str(img))[..., :3]
            writer.add_image(tag, np.asarray(img), step, dataformats="HWC")
        for tag, value in (scalars or {}).items():
            if value is not None:
                writer.add_scalar(tag, float(value), step)
        for tag, points in (series or {}).items():
            for x, value in points:
                writer.add_scalar(tag, float(value), int(x))
    finally:
        writer.close()
