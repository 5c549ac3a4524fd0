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

    PYTHONPATH=. .venv/bin/python benchmarks/gt_outline_contrast.py [--out runs/bench_gt_outline]
"""

from __future__ import annotations

import argparse
import sys
from collections import defaultdict
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


def outline_contrast(image: np.ndarray, labels: np.ndarray, min_area: int = 60) -> np.ndarray:
    """Per nucleus of ``labels``: (its outermost ring's contrast, the contrast 1 px outside it), each the
    mean intensity above background over its core's median above background; shape (n, 2)."""
    image = image.astype(np.float64)
    background = float(np.median(image[~ndi.binary_dilation(labels > 0, SQUARE, iterations=8)]))
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


if __name__ == "__main__":
    main()
