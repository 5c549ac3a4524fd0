"""Where the annotators drew each nucleus's outline: the GT's outline contrast per frame or image kind.

For every GT nucleus (at least 60 px, with a core left after 3 erosions): the mean intensity of its
outermost ring of pixels, and of the ring of background pixels just outside it, as a fraction of its
core's median intensity, both above the image's background (the median of the pixels 8 px or more
from every nucleus). A foreground model learns one such level; where the level differs from nucleus
to nucleus, or from frame to frame, no model's outline can match every GT outline, and the spread
shows how far apart they are. HeLa: the shared sequence 01's labeled frames (the fully labeled 013
and 052, the validation and test frames); DSB 2018: the val and test images, grouped by image shape.

Writes ``gt_outline_contrast.md`` (median [quartiles] per group) and ``gt_outline_contrast.png``
(box plots) into --out, and prints the table.

``--redraw`` adds what one contrast level can reach on HeLa's two fully labeled frames: every GT
nucleus redrawn as the pixels within 3 px of it (none of another nucleus) whose contrast reaches the
level, the piece joined to its core, holes filled; the foreground IoU of these outlines against the
GT's over the nuclei that do not touch the frame's border, for each level (``gt_outline_redraw.md``,
``gt_outline_redraw.png``). The redraw knows every nucleus and misses none, so what it loses is the
outline alone: the level best on one frame, measured on the other, bounds what any one outline
rule learned from a frame gets on the other.

    PYTHONPATH=. .venv/bin/python benchmarks/gt_outline_contrast.py [--redraw] [--out runs/bench_gt_outline]
"""

from __future__ import annotations

import argparse
import sys
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from scipy import ndimage as ndi

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.dsb_foreground import kind_of, split_names  # noqa: E402
from inpaintaff.io import ctc  # noqa: E402
from inpaintaff.io.folder import read_channel, read_mask  # noqa: E402
from inpaintaff.utils.resolvers import shared_data_dir  # noqa: E402
from inpaintaff.viz.figures import plt, save_figure  # noqa: E402

SQUARE = np.ones((3, 3), bool)
HELA_FRAMES = {"fully labeled": [13, 52], "val": [25, 44, 54], "test": [14, 21, 39, 77]}


def image_background(image: np.ndarray, labels: np.ndarray) -> float:
    """The median of the pixels 8 px or more from every nucleus of ``labels``."""
    return float(np.median(image[~ndi.binary_dilation(labels > 0, SQUARE, iterations=8)]))


def outline_contrast(image: np.ndarray, labels: np.ndarray, min_area: int = 60) -> np.ndarray:
    """Per nucleus of ``labels``: (its outermost ring's contrast, the contrast 1 px outside it), each the
    mean intensity above background over its core's median above background; shape (n, 2)."""
    image = image.astype(np.float64)
    background = image_background(image, labels)
    out = []
    for i, where in enumerate(ndi.find_objects(labels), start=1):
        if where is None:
            continue
        window = tuple(slice(max(0, s.start - 3), s.stop + 3) for s in where)
        lab, img = labels[window], image[window]
        nucleus = lab == i
        if nucleus.sum() < min_area:
            continue
        ring = nucleus & ~ndi.binary_erosion(nucleus, SQUARE, border_value=1)
        core = ndi.binary_erosion(nucleus, SQUARE, iterations=3)
        outside = ndi.binary_dilation(nucleus, SQUARE) & (lab == 0)
        if core.sum() < 10 or outside.sum() < 5:
            continue
        level = float(np.median(img[core])) - background
        if level <= 0:
            continue
        out.append(((img[ring].mean() - background) / level, (img[outside].mean() - background) / level))
    return np.asarray(out, dtype=np.float64).reshape(-1, 2)


def redraw_at_contrast(image: np.ndarray, labels: np.ndarray, levels: Sequence[float], reach: int = 3,
                       min_area: int = 60) -> tuple[np.ndarray, dict[float, np.ndarray]]:
    """Each nucleus of ``labels`` (at least ``min_area`` px, with a core after 3 erosions, not touching
    the image's border) redrawn at each contrast level: the pixels within ``reach`` px of it and of no
    other nucleus whose contrast (as ``outline_contrast``'s) reaches the level, the pieces that touch its
    core, holes filled. Returns (the GT foreground of those nuclei, {level: the redrawn foreground})."""
    image = image.astype(np.float64)
    background = image_background(image, labels)
    kept = np.zeros(labels.shape, bool)
    redrawn = {float(t): np.zeros(labels.shape, bool) for t in levels}
    for i, where in enumerate(ndi.find_objects(labels), start=1):
        if where is None or any(s.start == 0 or s.stop == n for s, n in zip(where, labels.shape)):
            continue
        window = tuple(slice(max(0, s.start - reach - 1), s.stop + reach + 1) for s in where)
        lab, img = labels[window], image[window]
        nucleus = lab == i
        core = ndi.binary_erosion(nucleus, SQUARE, iterations=3)
        if nucleus.sum() < min_area or core.sum() < 10:
            continue
        level = float(np.median(img[core])) - background
        if level <= 0:
            continue
        contrast = (img - background) / level
        near = ndi.binary_dilation(nucleus, SQUARE, iterations=reach) & ((lab == 0) | nucleus)
        kept[window] |= nucleus
        for t, out in redrawn.items():
            pieces, _ = ndi.label(near & (contrast >= t), SQUARE)
            ids = np.unique(pieces[core])
            out[window] |= ndi.binary_fill_holes(np.isin(pieces, ids[ids > 0]))
    return kept, redrawn


def hela_redraw(root: Path, levels: Sequence[float]) -> dict[int, dict[float, float]]:
    """IoU of the redrawn outlines against the GT's, per fully labeled HeLa frame and level."""
    out = {}
    for frame in HELA_FRAMES["fully labeled"]:
        image = ctc.read_image(ctc.raw_path(root, "Fluo-N2DL-HeLa", "01", frame))
        labels = ctc.read_labels(ctc.gt_seg_path(root, "Fluo-N2DL-HeLa", "01", frame))
        kept, redrawn = redraw_at_contrast(image, labels, levels)
        out[frame] = {t: float((kept & r).sum() / (kept | r).sum()) for t, r in redrawn.items()}
    return out


def redraw_table(ious: dict[int, dict[float, float]]) -> str:
    frames = list(ious)
    levels = list(ious[frames[0]])
    lines = ["| contrast level | " + " | ".join(f"IoU on {f:03d}" for f in frames) + " |",
             "|---|" + "---|" * len(frames)]
    lines += [f"| {t:.2f} | " + " | ".join(f"{ious[f][t]:.3f}" for f in frames) + " |" for t in levels]
    lines += ["", "| level chosen on | level | IoU there | IoU on the other frame | the other frame's best |",
              "|---|---|---|---|---|"]
    for f in frames:
        best = max(ious[f], key=ious[f].get)
        for g in frames:
            if g != f:
                lines.append(f"| {f:03d} | {best:.2f} | {ious[f][best]:.3f} | {ious[g][best]:.3f} on {g:03d} | "
                             f"{max(ious[g].values()):.3f} |")
    return "\n".join(lines) + "\n"


def redraw_plot(path: Path, ious: dict[int, dict[float, float]]) -> Path:
    fig, ax = plt.subplots(figsize=(7, 4))
    for frame, curve in ious.items():
        ax.plot(list(curve), list(curve.values()), marker="o", label=f"frame {frame:03d}")
    ax.set_xlabel("contrast level of the redrawn outline (0: background, 1: the core's median)")
    ax.set_ylabel("foreground IoU against the GT")
    ax.set_title("Every GT nucleus redrawn at one contrast level", fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend()
    return save_figure(fig, path, tight=True)


def hela_groups(root: Path) -> dict[str, np.ndarray]:
    """One group per labeled frame of HeLa sequence 01."""
    groups = {}
    for split, frames in HELA_FRAMES.items():
        for frame in frames:
            image = ctc.read_image(ctc.raw_path(root, "Fluo-N2DL-HeLa", "01", frame))
            labels = ctc.read_labels(ctc.gt_seg_path(root, "Fluo-N2DL-HeLa", "01", frame))
            groups[f"HeLa {frame:03d} ({split})"] = outline_contrast(image, labels)
    return groups


def dsb_groups(root: Path) -> dict[str, np.ndarray]:
    """One group per image shape of the DSB val and test images."""
    per_kind: dict[str, list[np.ndarray]] = defaultdict(list)
    for name in [*split_names("val"), *split_names("test")]:
        image = read_channel(root / "dsb2018" / "images" / f"{name}.tif")
        labels = read_mask(root / "dsb2018" / "masks" / f"{name}.tif", image.shape)
        per_kind[kind_of(image)].append(outline_contrast(image, labels))
    groups = {f"DSB {kind}": np.concatenate(v) for kind, v in per_kind.items()}
    return dict(sorted(groups.items(), key=lambda kv: -len(kv[1])))


def table(groups: dict[str, np.ndarray]) -> str:
    def q(v: np.ndarray) -> str:
        return f"{np.median(v):.2f} [{np.percentile(v, 25):.2f}, {np.percentile(v, 75):.2f}]" if v.size else "—"

    lines = ["| GT of | nuclei | outline ring: median [quartiles] | 1 px outside |", "|---|---|---|---|"]
    lines += [f"| {name} | {len(v)} | {q(v[:, 0])} | {q(v[:, 1])} |" for name, v in groups.items()]
    return "\n".join(lines) + "\n"


def plot(path: Path, groups: dict[str, np.ndarray]) -> Path:
    names = [n for n, v in groups.items() if len(v)][::-1]  # boxes are drawn bottom-up: the first group on top
    fig, axes = plt.subplots(1, 2, figsize=(12, 0.35 * len(names) + 1.5), sharey=True)
    for ax, col, title in zip(axes, (0, 1), ("the GT's outline ring", "1 px outside the GT")):
        ax.boxplot([groups[n][:, col] for n in names], orientation="horizontal", showfliers=False)
        ax.set_yticks(range(1, len(names) + 1), [f"{n} ({len(groups[n])})" for n in names], fontsize=8)
        ax.set_xlim(0, 1)
        ax.grid(alpha=0.3)
        ax.set_xlabel("contrast above background / the nucleus core's")
        ax.set_title(f"Contrast of {title}", fontsize=9)
    return save_figure(fig, path, tight=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, default=shared_data_dir())
    ap.add_argument("--no-dsb", action="store_true", help="HeLa's frames only")
    ap.add_argument("--redraw", action="store_true", help="also the IoU of the GT redrawn at one contrast level")
    ap.add_argument("--levels", type=float, nargs="+", default=[round(0.05 * k, 2) for k in range(1, 13)])
    ap.add_argument("--out", type=Path, default=ROOT / "runs" / "bench_gt_outline")
    args = ap.parse_args()
    groups = hela_groups(args.data)
    if not args.no_dsb:
        groups.update(dsb_groups(args.data))
    args.out.mkdir(parents=True, exist_ok=True)
    text = table(groups)
    (args.out / "gt_outline_contrast.md").write_text(text)
    plot(args.out / "gt_outline_contrast.png", groups)
    print(text)
    if args.redraw:
        ious = hela_redraw(args.data, args.levels)
        text = redraw_table(ious)
        (args.out / "gt_outline_redraw.md").write_text(text)
        redraw_plot(args.out / "gt_outline_redraw.png", ious)
        print(text)


if __name__ == "__main__":
    main()
