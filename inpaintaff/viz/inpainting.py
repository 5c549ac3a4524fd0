"""Pictures of inpainting results: input with holes, mask, predictions, composites."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from inpaintaff.viz.figures import save_figure


def inpainting_figure(
    images: Sequence[np.ndarray], knowns: Sequence[np.ndarray], predictions: Mapping[str, Sequence[np.ndarray]],
    bands: Sequence[np.ndarray] | None = None,
):
    """A matplotlib Figure: one row per example; columns: image, input (holes dark, band red), and
    each named prediction shown as a composite (known pixels from the image)."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    n, cols = len(images), 2 + len(predictions)
    fig, axes = plt.subplots(n, cols, figsize=(2.2 * cols, 2.2 * n), squeeze=False)
    for i, (img, known) in enumerate(zip(images, knowns)):
        known = known.astype(bool)
        shown = np.stack([np.where(known, img, 0.15)] * 3, -1).clip(0, 1)
        if bands is not None:
            shown[bands[i].astype(bool)] = (0.8, 0.1, 0.1)
        panels = [("image", img), ("known (band red)", shown)]
        panels += [(name, np.where(known, img, preds[i])) for name, preds in predictions.items()]
        for ax, (title, arr) in zip(axes[i], panels):
            ax.imshow(arr, cmap="gray", vmin=0, vmax=1, interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if i == 0:
                ax.set_title(title, fontsize=8)
    fig.tight_layout()
    return fig


def save_inpainting_png(path: str | Path, *args, **kwargs) -> Path:
    """Write ``inpainting_figure(*args, **kwargs)`` to a PNG, atomically."""

    fig = inpainting_figure(*args, **kwargs)
    return save_figure(fig, path, dpi=110)
