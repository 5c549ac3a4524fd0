"""How well is the median nucleus diameter estimated from a foreground? DSB 2018 (and HeLa GT frames).

For every DSB image: the true median equivalent diameter from its mask against the estimate of
``inpaintaff.segment.diameter.estimate_diameter`` from (a) the true foreground of the mask
(``true_foreground``) and (b) the model-free ``intensity_foreground`` of the percentile-normalised
image; the naive baseline (median equivalent diameter of the foreground's connected components) side
by side. Errors are |estimate / true - 1|, by size group relative to HeLa's 25 px (small < 0.7 x 25,
hela-like 0.7-1.4 x, large > 1.4 x).

    .venv/bin/python benchmarks/diameter_estimator.py [--data ../shared/data/dsb2018] [--out runs/bench_diameter]

Writes ``per_image.csv`` and ``scatter.png`` into --out.
"""

from __future__ import annotations

import argparse
import csv
from multiprocessing import Pool
from pathlib import Path

import numpy as np

from inpaintaff.data.normalize import percentile_normalize
from inpaintaff.io.ctc import read_image, read_labels
from inpaintaff.segment.diameter import estimate_diameter, intensity_foreground, median_diameter, naive_diameter
from inpaintaff.segment.foreground import true_foreground
from inpaintaff.utils.resolvers import shared_data_dir

SHARED = shared_data_dir()
HELA_D = 25.0
ESTIMATORS = ("true_fg_edt", "true_fg_naive", "intensity_edt", "intensity_naive")
GROUPS = ("small", "hela-like", "large", "all")


def group_of(d: float) -> str:
    """Size group of a true median diameter relative to HeLa's 25 px."""
    return "small" if d < 0.7 * HELA_D else ("large" if d > 1.4 * HELA_D else "hela-like")


def measure(image: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    """True median diameter and the four estimates (NaN when an estimator finds nothing)."""
    nan = float("nan")
    row: dict[str, float] = {"true": median_diameter(labels)}
    for name, fg in (
        ("true_fg", true_foreground(labels)),
        ("intensity", intensity_foreground(percentile_normalize(image))),
    ):
        est = estimate_diameter(fg)
        row[f"{name}_edt"] = nan if est.diameter is None else est.diameter
        row[f"{name}_edt_n"] = est.n_objects
        naive = naive_diameter(fg)
        row[f"{name}_naive"] = nan if naive is None else naive
    return row


def _one(args: tuple[Path, Path]) -> dict:
    img_path, mask_path = args
    row = measure(read_image(img_path), read_labels(mask_path))
    return {"image": img_path.stem, **row}


def summary(rows: list[dict]) -> str:
    """Table: per estimator and size group, median and 90th percentile |relative error|, within ±15 / ±25 %."""
    true = np.array([r["true"] for r in rows])
    groups = np.array([group_of(t) for t in true])
    lines = [f"{'estimator':17s} {'group':10s} {'n':>4s} {'med|err|':>9s} {'p90|err|':>9s} {'±15%':>6s} {'±25%':>6s}"]
    for est in ESTIMATORS:
        rel = np.array([r[est] for r in rows]) / true - 1.0
        err = np.where(np.isnan(rel), np.inf, np.abs(rel))  # no estimate counts as a miss
        for g in GROUPS:
            m = np.ones_like(err, bool) if g == "all" else groups == g
            e = err[m]
            lines.append(
                f"{est:17s} {g:10s} {m.sum():4d} {np.median(e):9.3f} {np.percentile(e, 90):9.3f} "
                f"{np.mean(e <= 0.15):6.2f} {np.mean(e <= 0.25):6.2f}"
            )
    return "\n".join(lines)


def scatter(rows: list[dict], path: Path) -> None:
    """True vs estimated median diameter, log axes, one panel per foreground."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    true = np.array([r["true"] for r in rows])
    fig, axes = plt.subplots(1, 2, figsize=(11, 5), sharex=True, sharey=True)
    for ax, fg in zip(axes, ("true_fg", "intensity")):
        for est, style in (("naive", dict(c="tab:orange", marker="x", s=12)), ("edt", dict(c="tab:blue", s=8))):
            ax.scatter(true, [r[f"{fg}_{est}"] for r in rows], label=f"{fg}_{est}", alpha=0.6, **style)
        lim = (5, 150)
        ax.plot(lim, lim, "k-", lw=0.8)
        for f in (0.85, 1.15):
            ax.plot(lim, (lim[0] * f, lim[1] * f), "k:", lw=0.6)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlim(lim)
        ax.set_ylim(lim)
        ax.set_xlabel("true median diameter (px)")
        ax.set_title(f"{fg} foreground")
        ax.legend()
    axes[0].set_ylabel("estimated median diameter (px)")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=SHARED / "dsb2018", help="folder with images/ and masks/")
    parser.add_argument("--hela", type=Path, default=SHARED / "Fluo-N2DL-HeLa", help="HeLa CTC folder ('' skips)")
    parser.add_argument("--out", type=Path, default=Path("runs/bench_diameter"))
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()

    pairs = [(p, args.data / "masks" / p.name) for p in sorted((args.data / "images").glob("*.tif"))]
    if not pairs:
        raise SystemExit(f"no images in {args.data / 'images'}")
    with Pool(args.workers) as pool:
        rows = pool.map(_one, pairs, chunksize=8)
    for r in rows:
        r["group"] = group_of(r["true"])

    args.out.mkdir(parents=True, exist_ok=True)
    with open(args.out / "per_image.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    scatter(rows, args.out / "scatter.png")
    print(f"DSB 2018: {len(rows)} images from {args.data}\n")
    print(summary(rows))

    if str(args.hela) and (args.hela / "01").is_dir():
        print("\nHeLa 01 (true median diameter, estimates):")
        for frame in (13, 52):
            r = measure(
                read_image(args.hela / "01" / f"t{frame:03d}.tif"),
                read_labels(args.hela / "01_GT" / "SEG" / f"man_seg{frame:03d}.tif"),
            )
            print(f"  t{frame:03d}: true {r['true']:.2f}  " + "  ".join(f"{e} {r[e]:.2f}" for e in ESTIMATORS))
    print(f"\nwrote {args.out / 'per_image.csv'} and {args.out / 'scatter.png'}")


if __name__ == "__main__":
    main()
