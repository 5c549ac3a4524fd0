"""Engine settings side by side: the SEG-against-α curves of several ``engine_stride.py`` runs.

    .venv/bin/python benchmarks/engine_seg_compare.py "shipped=runs/engine_base" \\
        "small+rules=runs/engine_small_region500" [--stride 16] [--out docs/figures/engine_variants_seg.png]

Each argument is ``label=DIR``, DIR holding an ``engine_stride.py`` run's ``engine_stride.json``
(same frames and seeds). For each run's ``uniform`` weighting at ``--stride``, prints SEG at the α
and fragment size chosen on its seed mean, the seeds there and their spread, whether the mean stays
at or above the first run's lowest seed (the baseline's spread), and the engine's images and seconds
per patch; draws every run's mean curve (at its chosen fragment size) with its seeds' min-max band.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def load_run(text: str, stride: int) -> tuple[str, dict, dict, list[dict]]:
    """``label=DIR`` -> (label, report, summary row, per-seed rows) of the uniform weighting at ``stride``."""
    label, _, folder = text.partition("=")
    path = Path(folder) / "engine_stride.json"
    if not path.is_file():
        sys.exit(f"{label}: {path} not found (run benchmarks/engine_stride.py --out {folder})")
    report = json.loads(path.read_text())
    summary = [s for s in report["summary"] if s["stride"] == stride and s["weighting"] == "uniform"]
    if not summary:
        sys.exit(f"{label}: {path} holds no uniform run at stride {stride}")
    rows = [r for r in report["rows"] if r["stride"] == stride and r["weighting"] == "uniform"]
    return label, report, summary[0], rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("runs", nargs="+", help="label=DIR of an engine_stride.py run; the first is the baseline")
    ap.add_argument("--stride", type=int, default=16)
    ap.add_argument("--out", default="runs/engine_seg_compare.png")
    args = ap.parse_args()
    runs = [load_run(r, args.stride) for r in args.runs]
    base_seeds = runs[0][2]["seeds"]
    frames = {tuple(r[1]["frames"]) for r in runs}
    seeds = {tuple(x["seed"] for x in r[3]) for r in runs}
    if len(frames) > 1 or len(seeds) > 1:
        sys.exit(f"the runs differ in frames {frames} or seeds {seeds}: not comparable")
    print(f"frames {runs[0][1]['frames']}, seeds {runs[0][3][0]['seed']}.., stride {args.stride}; baseline "
          f"{runs[0][0]} (its lowest seed {min(base_seeds):.3f})")
    print("| setting | images / patch | s / patch (1 thread) | SEG (mean) | seeds | spread | α, fragment size |")
    print("|---|---|---|---|---|---|---|")
    for label, report, s, _ in runs:
        cost = report["cost"].values()
        images = np.mean([c["images_per_patch"] for c in cost])
        secs = np.mean([c["s_per_patch"] for c in cost])
        alpha, size = s["best"].split("/")
        kept = "" if s["mean_seg"] >= min(base_seeds) else " (below the baseline's lowest seed)"
        print(f"| {label} | {images:.0f} | {secs:.2f} | {s['mean_seg']:.3f}{kept} | "
              + " / ".join(f"{x:.3f}" for x in s["seeds"]) + f" | {s['spread']:.3f} | {alpha}, {size} |")
    plot(runs, Path(args.out))
    print(f"figure: {args.out}")


def plot(runs: list, path: Path) -> None:
    """Each run's seed-mean SEG against α at its chosen fragment size, with the seeds' min-max band."""
    import matplotlib.pyplot as plt

    from inpaintaff.viz.figures import save_figure

    fig, ax = plt.subplots(figsize=(6.5, 4))
    for label, report, s, rows in runs:
        alphas, size = report["alphas"], s["best"].split("/")[1]
        curves = np.array([[r["seg"][f"{a:g}/{size}"] for a in alphas] for r in rows])
        line, = ax.plot(alphas, curves.mean(0), marker="o", label=f"{label} (fragments < {size} px merged)")
        ax.fill_between(alphas, curves.min(0), curves.max(0), color=line.get_color(), alpha=0.12)
    ax.axhline(runs[0][1]["cc_seg"], color="k", ls="--", label="CC on TRUEFG")
    ax.set_xlabel("α")
    ax.set_ylabel(f"SEG, frames {runs[0][1]['frames']} pooled")
    ax.set_title("engine settings; band: min-max over 3 seeds", fontsize=9)
    ax.legend(fontsize=7)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_figure(fig, path)


if __name__ == "__main__":
    main()
