"""Engine settings against SEG: forward passes per patch and SEG on windows of touching nuclei.

    .venv/bin/python benchmarks/engine_settings.py [--frames 25 44 52 54 77] [--settings base d3 ...]

Windows of ``--size`` pixels are centred on every group of GT nuclei that connected components
of TRUEFG merge, in the shared HeLa frames (where the method must do better than CC). For each
named setting of the engine (changes against ``conf/task/inpaintaff.yaml``'s defaults), the
shipped net splits every foreground patch of every window (stride 16), the patch affinities are
averaged per window, and the mutex watershed with TRUEFG is scored (SEG pooled over windows) for
each α. Prints, per setting: images inpainted and forward passes per patch, seconds per patch,
SEG at every α, the best SEG and its α, and CC's SEG on the same windows. The curve is also
written to ``<out>/engine_settings.json`` and ``<out>/engine_settings.png``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
from omegaconf import OmegaConf
from scipy import ndimage

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from inpaintaff.data.normalize import percentile_normalize  # noqa: E402
from inpaintaff.igm.affinities import AffinityAccumulator, patch_affinities  # noqa: E402
from inpaintaff.igm.inpainters import GaussianInpainter  # noqa: E402
from inpaintaff.igm.split import SplitEngine, mix_seed  # noqa: E402
from inpaintaff.io.ctc import raw_path, read_image, read_labels  # noqa: E402
from inpaintaff.metrics.ctc import pool_seg, seg_frame  # noqa: E402
from inpaintaff.modules.net_inpainter import load_net_inpainter  # noqa: E402
from inpaintaff.segment.baselines import connected_components  # noqa: E402
from inpaintaff.segment.foreground import true_foreground  # noqa: E402
from inpaintaff.segment.mws import mutex_watershed  # noqa: E402
from inpaintaff.tasks.inpaintaff.patches import patch_counts, patch_grid  # noqa: E402
from inpaintaff.utils.resolvers import shared_data_dir  # noqa: E402

SHARED = shared_data_dir() / "Fluo-N2DL-HeLa"
PATCH = 64
# Named changes against the task's default engine settings.
SETTINGS = {
    "base": {},
    "d8": {"max_depth": 8},
    "d2": {"max_depth": 2},
    "d3": {"max_depth": 3},
    "d4": {"max_depth": 4},
    "d3_p1": {"max_depth": 3, "patience": 1},
    "d3_p3": {"max_depth": 3, "patience": 3},
    "d3_T12": {"max_depth": 3, "iterations": 12},
    "d3_min100": {"max_depth": 3, "min_region": 100},
    "min20": {"min_region": 20},
    "min100": {"min_region": 100},
    "d3_bf16": {"max_depth": 3, "precision": "bf16"},
}


def merged_windows(frame: int, size: int) -> list[tuple[int, int]]:
    """Top-left corners of windows centred on the groups of nuclei that CC of TRUEFG merges."""
    labels = read_labels(SHARED / "01_GT" / "SEG" / f"man_seg{frame:03d}.tif")
    cc, _ = ndimage.label(true_foreground(labels))
    corners: list[tuple[int, int]] = []
    for i, sl in enumerate(ndimage.find_objects(cc), 1):
        ids = np.unique(labels[sl][cc[sl] == i])
        if (ids > 0).sum() < 2:
            continue
        cy, cx = (sl[0].start + sl[0].stop) // 2, (sl[1].start + sl[1].stop) // 2
        y = int(np.clip(cy - size // 2, 0, labels.shape[0] - size))
        x = int(np.clip(cx - size // 2, 0, labels.shape[1] - size))
        if all(abs(y - a) >= size // 2 or abs(x - b) >= size // 2 for a, b in corners):
            corners.append((y, x))
    return corners


def load_windows(frames: list[int], size: int) -> list[dict]:
    out = []
    for f in frames:
        path = raw_path(SHARED.parent, SHARED.name, "01", f)
        image = percentile_normalize(read_image(path), source=path)
        labels = read_labels(SHARED / "01_GT" / "SEG" / f"man_seg{f:03d}.tif")
        for y, x in merged_windows(f, size):
            win = (slice(y, y + size), slice(x, x + size))
            gt = labels[win]
            fg = true_foreground(gt)
            pos = patch_grid((size, size), PATCH, 16)
            pos = [p for p, c in zip(pos, patch_counts(fg, pos, PATCH)) if c > 0]
            out.append({"frame": f, "y": y, "x": x, "image": image[win], "gt": gt, "fg": fg, "pos": pos})
    return out


def affinities_of(engine: SplitEngine, windows: list[dict], batch: int) -> tuple[list, float, int, int]:
    """Per-window (aff, valid), engine seconds, images inpainted and forward passes."""
    items = [(w, y, x) for w in windows for y, x in w["pos"]]
    acc = {id(w): AffinityAccumulator(w["image"].shape) for w in windows}
    images = passes = 0
    t0 = time.perf_counter()
    for i in range(0, len(items), batch):
        chunk = items[i : i + batch]
        patches = torch.from_numpy(np.stack([w["image"][y : y + PATCH, x : x + PATCH] for w, y, x in chunk]))
        seeds = [mix_seed(12345, w["frame"], w["y"] + y, w["x"] + x) for w, y, x in chunk]
        res = engine.run(patches[:, None].float(), seeds)
        aff, valid = patch_affinities(res.leaf_ids)
        images += res.conditionals
        passes += res.forward_passes
        for k, (w, y, x) in enumerate(chunk):
            acc[id(w)].add(aff[k].numpy(), valid.numpy(), y, x)
    return [acc[id(w)].result() for w in windows], time.perf_counter() - t0, images, passes


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--frames", type=int, nargs="+", default=[25, 44, 52, 54, 77])
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--settings", nargs="+", default=["base", "d8", "d2", "d4", "d3_p1", "d3_T12", "d3_bf16"],
                    choices=sorted(SETTINGS))
    ap.add_argument("--inpainter", choices=["net", "gaussian"], default="net")
    ap.add_argument("--ckpt", default=str(ROOT / "checkpoints" / "hela_inpaint_cpu.ckpt"))
    ap.add_argument("--alphas", type=float, nargs="+", default=[0.3, 0.5, 0.7, 1.0, 1.5, 2.0, 3.0])
    ap.add_argument("--batch", type=int, default=32, help="patches per engine call")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", default="runs/engine_settings")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    windows = load_windows(args.frames, args.size)
    n_patches = sum(len(w["pos"]) for w in windows)
    gt_objects = sum(len(np.unique(w["gt"])) - 1 for w in windows)
    cc_seg = pool_seg(seg_frame(w["gt"], connected_components(w["fg"])) for w in windows).seg
    print(f"{len(windows)} windows of {args.size}^2 around merged nuclei in frames {args.frames}: {gt_objects} GT "
          f"objects, {n_patches} foreground patches; CC on TRUEFG: SEG {cc_seg:.3f}", flush=True)
    inpainter = load_net_inpainter(args.ckpt) if args.inpainter == "net" else GaussianInpainter(4.0)
    defaults = dict(OmegaConf.to_container(OmegaConf.load(ROOT / "conf" / "task" / "inpaintaff.yaml").engine))
    rows = []
    for name in args.settings:
        engine = SplitEngine(inpainter, **{**defaults, **SETTINGS[name]})
        affs, seconds, images, passes = affinities_of(engine, windows, args.batch)
        curve = []
        for alpha in args.alphas:
            segs = [seg_frame(w["gt"], mutex_watershed(a, alpha, valid=v, foreground=w["fg"]))
                    for w, (a, v) in zip(windows, affs)]
            curve.append(pool_seg(segs).seg)
        best = int(np.argmax(curve))
        rows.append({"setting": name, "changes": SETTINGS[name], "images_per_patch": images / n_patches,
                     "passes_per_patch": passes / n_patches, "s_per_patch": seconds / n_patches,
                     "seg_by_alpha": dict(zip(args.alphas, curve)), "best_seg": curve[best],
                     "best_alpha": args.alphas[best]})
        r = rows[-1]
        print(f"{name:10s} {r['images_per_patch']:6.0f} images/patch {r['passes_per_patch']:6.1f} passes/patch "
              f"{r['s_per_patch']:6.2f} s/patch | SEG by α " + " ".join(f"{s:.3f}" for s in curve)
              + f" | best {r['best_seg']:.3f} at α {r['best_alpha']:g}", flush=True)
    out = (ROOT / args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    (out / "engine_settings.json").write_text(json.dumps(
        {"windows": [(w["frame"], w["y"], w["x"]) for w in windows], "size": args.size, "cc_seg": cc_seg,
         "alphas": args.alphas, "rows": rows}, indent=2))
    import matplotlib.pyplot as plt

    from inpaintaff.viz.figures import save_figure

    fig, ax = plt.subplots(figsize=(6, 4))
    for r in rows:
        ax.plot(args.alphas, list(r["seg_by_alpha"].values()), marker="o",
                label=f"{r['setting']} ({r['images_per_patch']:.0f} img/patch)")
    ax.axhline(cc_seg, color="k", ls="--", label="CC on TRUEFG")
    ax.set_xlabel("α")
    ax.set_ylabel("SEG (windows pooled)")
    ax.legend(fontsize=7)
    save_figure(fig, out / "engine_settings.png")
    print(f"figures in {out}")


if __name__ == "__main__":
    main()
