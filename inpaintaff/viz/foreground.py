"""The picture of a foreground probability: the image with the thresholded outline, and the map."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from inpaintaff.viz.figures import plt, save_figure


def save_foreground_png(path: str | Path, image: np.ndarray, prob: np.ndarray, threshold: float) -> Path:
    """``image`` (normalised) with the outline of ``prob > threshold``, beside ``prob``, as a PNG."""
    fig, axes = plt.subplots(1, 2, figsize=(10, 5 * image.shape[0] / image.shape[1] + 0.5))
    axes[0].imshow(image, cmap="gray", vmin=0, vmax=1)
    axes[0].contour(prob > threshold, levels=[0.5], colors="yellow", linewidths=0.6)
    axes[1].imshow(prob, cmap="magma", vmin=0, vmax=1)
    for ax, title in zip(axes, ["raw + foreground contour", "FGNET probability"]):
        ax.set_title(title)
        ax.axis("off")
    return save_figure(fig, path, tight=True)
