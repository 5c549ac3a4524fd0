"""Pictures and numbers into TensorBoard: into a folder of its own (tasks), or into the TensorBoard
loggers of a Lightning module (training). The one place that writes TensorBoard images."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

Image = str | Path | np.ndarray


def image_rgb(img: Image) -> np.ndarray:
    """A PNG file's RGB, or an (H, W, 3) array as it is."""
    if isinstance(img, (str, Path)):
        import matplotlib.image as mpimg

        return mpimg.imread(str(img))[..., :3]
    return np.asarray(img)


def _add(writer: Any, images: Mapping[str, Image] | None, step: int,
         batches: Mapping[str, Any] | None = None) -> None:
    for tag, img in (images or {}).items():
        writer.add_image(tag, image_rgb(img), step, dataformats="HWC")
    for tag, batch in (batches or {}).items():  # (N, C, H, W) tensors or arrays in [0, 1]
        writer.add_images(tag, batch, step)


def log_to_tensorboard(
    log_dir: str | Path,
    images: Mapping[str, Image] | None = None,
    scalars: Mapping[str, float | None] | None = None,
    step: int = 0,
    series: Mapping[str, Sequence[tuple[int, float]]] | None = None,
) -> None:
    """Write PNG files (or RGB arrays (H, W, 3)) and scalars as TensorBoard events into ``log_dir``;
    ``series`` adds curves as (step, value) points per tag."""
    from torch.utils.tensorboard import SummaryWriter

    writer = SummaryWriter(log_dir=str(log_dir))
    try:
        _add(writer, images, step)
        for tag, value in (scalars or {}).items():
            if value is not None:
                writer.add_scalar(tag, float(value), step)
        for tag, points in (series or {}).items():
            for x, value in points:
                writer.add_scalar(tag, float(value), int(x))
    finally:
        writer.close()


def log_to_loggers(loggers: Iterable[Any] | None, step: int, images: Mapping[str, Image] | None = None,
                   batches: Mapping[str, Any] | None = None) -> bool:
    """Add pictures to every TensorBoard logger among a module's ``loggers``; True if one took them."""
    from pytorch_lightning.loggers import TensorBoardLogger

    done = False
    for lg in loggers or []:
        if isinstance(lg, TensorBoardLogger):
            _add(lg.experiment, images, step, batches)
            lg.experiment.flush()
            done = True
    return done
