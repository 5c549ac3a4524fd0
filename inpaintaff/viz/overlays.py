"""Instance overlays: contours over the raw image, false merges and splits marked against GT."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from inpaintaff.metrics.overlap import overlap
from inpaintaff.viz.figures import plt, save_figure

CONTOUR = (0.2, 1.0, 0.2)  # predicted instance contours
GT_CONTOUR = (0.3, 0.6, 1.0)  # GT contours of the marked objects
MERGE = (1.0, 0.15, 0.15)  # a predicted object holding two or more GT objects
SPLIT = (1.0, 0.85, 0.0)  # a GT object cut into two or more predicted objects
MISS = (1.0, 0.2, 1.0)  # a GT object that no predicted object matches (and is not split)


def boundaries(labels: np.ndarray) -> np.ndarray:
    """Pixels of a labelled object with a 4-neighbour of another label (inner contours)."""
    lab = np.asarray(labels)
    b = np.zeros(lab.shape, dtype=bool)
    diff = lab[1:, :] != lab[:-1, :]
    b[1:, :] |= diff
    b[:-1, :] |= diff
    diff = lab[:, 1:] != lab[:, :-1]
    b[:, 1:] |= diff
    b[:, :-1] |= diff
    return b & (lab > 0)


@dataclass
class Errors:
    """Object ids involved in segmentation errors against GT."""

    merges: np.ndarray  # predicted ids holding > 50 % of two or more GT objects
    splits: np.ndarray  # GT ids with two or more predicted objects covering >= split_fraction each
    misses: np.ndarray  # GT ids matched by no predicted object, and not split


def find_errors(gt: np.ndarray, pred: np.ndarray, split_fraction: float = 0.2) -> Errors:
    """False merges and splits by the SEG matching rule (|R ∩ S| > 0.5 |R|)."""
    ov = overlap(gt, pred)
    inter = ov.inter.tocsr()
    if inter.nnz == 0:
        return Errors(np.zeros(0, np.int64), np.zeros(0, np.int64), ov.gt_ids.copy())
    coo = inter.tocoo()
    frac = coo.data / ov.gt_sizes[coo.row]
    matched = frac > 0.5
    per_pred = np.bincount(coo.col[matched], minlength=ov.pred_ids.size)
    merges = ov.pred_ids[per_pred >= 2]
    big = frac >= split_fraction
    per_gt_big = np.bincount(coo.row[big], minlength=ov.gt_ids.size)
    split_rows = per_gt_big >= 2
    has_match = np.bincount(coo.row[matched], minlength=ov.gt_ids.size) > 0
    misses = ov.gt_ids[~has_match & ~split_rows]
    return Errors(merges, ov.gt_ids[split_rows], misses)


def overlay_rgb(
    image: np.ndarray, labels: np.ndarray, gt: np.ndarray | None = None, fill_alpha: float = 0.45
) -> tuple[np.ndarray, Errors | None]:
    """An RGB float image (H, W, 3): gray raw image, instance contours, errors filled (if GT)."""
    img = np.asarray(image, dtype=np.float32)
    lo, hi = np.percentile(img, [1, 99.8]) if img.size else (0.0, 1.0)
    gray = np.clip((img - lo) / max(hi - lo, 1e-6), 0, 1)
    rgb = np.repeat(gray[..., None], 3, axis=2)
    errors = None
    if gt is not None:
        errors = find_errors(gt, labels)
        for ids, color, lab in ((errors.merges, MERGE, labels), (errors.splits, SPLIT, gt), (errors.misses, MISS, gt)):
            if ids.size:
                m = np.isin(lab, ids)
                rgb[m] = (1 - fill_alpha) * rgb[m] + fill_alpha * np.asarray(color)
        marked = np.isin(gt, np.concatenate([errors.splits, errors.misses]))
        rgb[boundaries(np.where(marked, gt, 0))] = GT_CONTOUR
    rgb[boundaries(labels)] = CONTOUR
    return rgb, errors


def save_overlay(
    path: str | Path, image: np.ndarray, labels: np.ndarray, gt: np.ndarray | None = None, title: str = ""
) -> tuple[np.ndarray, Errors | None]:
    """Write the overlay as PNG (with a legend) at about the image's resolution; returns the RGB."""
    from matplotlib.patches import Patch

    rgb, errors = overlay_rgb(image, labels, gt)
    h, w = rgb.shape[:2]
    dpi = 100
    scale = max(1.0, 600 / w)  # small images are enlarged so that the legend fits
    fig, ax = plt.subplots(figsize=(w * scale / dpi, h * scale / dpi + 0.7), dpi=dpi)
    ax.imshow(rgb, interpolation="nearest")
    ax.set_axis_off()
    handles = [Patch(color=CONTOUR, label=f"instances ({int(labels.max())})")]
    if errors is not None:
        handles += [
            Patch(color=MERGE, label=f"false merges ({errors.merges.size})"),
            Patch(color=SPLIT, label=f"false splits ({errors.splits.size})"),
            Patch(color=MISS, label=f"missed ({errors.misses.size})"),
        ]
    ax.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, 0.0), ncol=len(handles), fontsize=8,
              frameon=False)
    if title:
        ax.set_title(title, fontsize=9)
    fig.tight_layout(pad=0.2)
    save_figure(fig, path, dpi=dpi, tight=True)
    return rgb, errors


def side_by_side(path: str | Path, image: np.ndarray, gt: np.ndarray, panels: Sequence[tuple[str, np.ndarray]],
                 title: str) -> Path:
    """Several segmentations of one image side by side, each with its false merges and splits
    against ``gt`` marked and counted in its title."""
    h, w = image.shape
    fig, axes = plt.subplots(1, len(panels), figsize=(3.6 * len(panels), 3.6 * h / w + 0.5), squeeze=False)
    for ax, (name, labels) in zip(axes[0], panels):
        rgb, errors = overlay_rgb(image, labels, gt)
        ax.imshow(rgb, interpolation="nearest")
        ax.set_axis_off()
        ax.set_title(f"{name}\nmerges {errors.merges.size}, splits {errors.splits.size}", fontsize=8)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout(rect=(0, 0, 1, 0.9))
    return save_figure(fig, path)


def save_rgb_png(path: str | Path, rgb: np.ndarray) -> Path:
    """Write an (H, W, 3) RGB array (uint8, or float in [0, 1]) as PNG at its own size, atomically:
    cheap enough for one picture per image of a large folder."""
    from PIL import Image

    from inpaintaff.io.files import atomic_path

    rgb = np.asarray(rgb)
    if rgb.dtype != np.uint8:
        rgb = (np.clip(rgb, 0, 1) * 255 + 0.5).astype(np.uint8)
    with atomic_path(path) as tmp:
        Image.fromarray(np.ascontiguousarray(rgb)).save(tmp, format="PNG")
    return Path(path)
