"""Pictures of InpaintAff results: affinity maps and patch hierarchies (PNG, also TensorBoard)."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

from inpaintaff.igm.split import ancestors_at  # noqa: E402
from inpaintaff.viz.figures import save_figure


def affinity_rgb(aff: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """(H, W, 3) picture of the attractive affinities: red = x ([0, -1]), green = y ([-1, 0]).

    Inside objects both are high (yellow); a boundary across x lowers red (shows green), one
    across y lowers green (shows red), as in the paper's figures. Unseen pairs are grey.
    """
    rgb = np.zeros(aff.shape[1:] + (3,), dtype=np.float32)
    rgb[..., 0] = np.where(valid[1], aff[1], 0.5)
    rgb[..., 1] = np.where(valid[0], aff[0], 0.5)
    rgb[..., 2] = np.where(valid[0] | valid[1], 0.0, 0.5)
    return rgb


def _random_colors(labels: np.ndarray, seed: int = 0) -> np.ndarray:
    _, inv = np.unique(labels, return_inverse=True)
    colors = np.random.default_rng(seed).uniform(0.15, 1.0, size=(inv.max() + 1, 3))
    return colors[inv.reshape(labels.shape)]


def _save(fig: plt.Figure, path: str | Path) -> Path:
    return save_figure(fig, path, dpi=110, tight=True, close=False)


def affinity_figure(image: np.ndarray, aff: np.ndarray, valid: np.ndarray, title: str = "") -> plt.Figure:
    """Raw frame, attractive affinities (x/y as colours) and mean long-range affinity."""
    fig, axes = plt.subplots(1, 3, figsize=(15, 5.2))
    axes[0].imshow(image, cmap="gray")
    axes[0].set_title("image")
    axes[1].imshow(affinity_rgb(aff, valid))
    axes[1].set_title("attractive affinities (R: x, G: y)")
    rep = aff[2:].astype(np.float64)
    v = valid[2:]
    mean = np.divide((rep * v).sum(0), v.sum(0), out=np.full(rep.shape[1:], np.nan), where=v.sum(0) > 0)
    im = axes[2].imshow(mean, cmap="magma", vmin=0, vmax=1)
    axes[2].set_title("mean long-range affinity")
    fig.colorbar(im, ax=axes[2], fraction=0.046)
    for a in axes:
        a.axis("off")
    fig.suptitle(title)
    return fig


def hierarchy_figure(images: np.ndarray, leaf_ids: np.ndarray, positions: Iterable | None = None,
                     levels: int = 3) -> plt.Figure:
    """One row per patch: the patch, the partition after 1..levels splits, and the leaves."""
    n = len(images)
    cols = levels + 2
    fig, axes = plt.subplots(max(n, 1), cols, figsize=(2.4 * cols, 2.4 * max(n, 1)), squeeze=False)
    pos = list(positions) if positions is not None else [None] * n
    for r in range(n):
        ids = torch.from_numpy(np.asarray(leaf_ids[r], dtype=np.int64))[None]
        axes[r, 0].imshow(images[r], cmap="gray")
        axes[r, 0].set_title(f"patch {tuple(int(v) for v in pos[r])}" if pos[r] is not None else "patch", fontsize=8)
        for k in range(1, levels + 1):
            axes[r, k].imshow(_random_colors(ancestors_at(ids, k)[0].numpy(), seed=k))
            axes[r, k].set_title(f"depth {k}", fontsize=8)
        n_leaves = len(np.unique(leaf_ids[r]))
        axes[r, -1].imshow(images[r], cmap="gray")
        axes[r, -1].imshow(_random_colors(leaf_ids[r]), alpha=0.55)
        axes[r, -1].set_title(f"leaves ({n_leaves})", fontsize=8)
    for a in axes.ravel():
        a.axis("off")
    fig.tight_layout()
    return fig


def save_affinity_png(path: str | Path, image: np.ndarray, aff: np.ndarray, valid: np.ndarray,
                      title: str = "") -> Path:
    """Write the affinity picture of one frame (atomically)."""
    fig = affinity_figure(image, aff, valid, title)
    try:
        return _save(fig, path)
    finally:
        plt.close(fig)


def save_hierarchy_png(path: str | Path, images: np.ndarray, leaf_ids: np.ndarray,
                       positions: Iterable | None = None, levels: int = 3) -> Path:
    """Write the hierarchy picture of a few patches (atomically)."""
    fig = hierarchy_figure(images, leaf_ids, positions, levels)
    try:
        return _save(fig, path)
    finally:
        plt.close(fig)
