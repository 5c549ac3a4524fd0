"""Fewer patches per frame: SEG against α of whole frames for the engine's stride, over seeds.

    .venv/bin/python benchmarks/engine_stride.py [--frames 25 44 54] [--seeds 12345 1 2]
        [--strides 16 32 48] [--weights uniform tent] [--patch 64]
        [--engine region_min_fg=1 one_object_px=500 --region-fg fgnet]

The shipped net splits every patch (at each base stride: a stride that no smaller listed stride
divides) of the shared HeLa frames that holds a labeled nucleus (TRUEFG), with the task's default
engine settings, once per seed: the patch's seed comes from (seed, sequence, frame, y, x) as in
``task=inpaintaff``, so a multiple of a base stride, whose positions are a subset of the base's,
sees exactly the patches and hierarchies that ``task=inpaintaff task.stride=S`` would compute.
Every pair inside a labeled nucleus lies only in patches that hold labeled foreground, so the
mutex watershed with TRUEFG scores the whole frame's affinities, as ``task=segment`` would (SEG
pooled over the frames; α and the fragment size chosen on the curve).
For each stride and patch weighting (``uniform``: every patch counts the
same; ``tent``: a pair's vote falls linearly towards the patch's edge, where the inpainter sees
less context), prints SEG by α per seed, the best (α, fragment size) and the seed-to-seed spread,
with the engine's seconds and images per patch and the patches a whole 700×1100 frame needs.

``--engine`` changes engine settings (e.g. ``max_depth=2``). The region rules (``region_min_fg``,
``one_object_px``) read a foreground that a user would have, never the sparse TRUEFG (which leaves
unlabeled neighbours out and would make every labeled nucleus look alone): ``--region-fg fgnet``
(the shipped FGNET's probability above ``--region-fg-threshold``) or ``intensity`` (the normalised
image above it).

The leaves of each (frame, seed) are kept in ``<out>/leaves`` (written when complete, keyed by
the engine settings and checkpoint), so a rerun with other strides, weightings or α only
re-scores. Figures: ``<out>/engine_stride.json`` and ``<out>/engine_stride.png``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
from omegaconf import OmegaConf

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from inpaintaff.data.normalize import percentile_normalize  # noqa: E402
from inpaintaff.igm.affinities import AffinityAccumulator, patch_affinities, patch_weights  # noqa: E402
from inpaintaff.igm.split import EngineConfig, SplitEngine, mix_seed  # noqa: E402
from inpaintaff.io.ctc import raw_path, read_image, read_labels  # noqa: E402
from inpaintaff.io.files import atomic_path  # noqa: E402
from inpaintaff.metrics.ctc import pool_seg, seg_frame  # noqa: E402
from inpaintaff.modules.net_inpainter import load_net_inpainter  # noqa: E402
from inpaintaff.segment.baselines import connected_components  # noqa: E402
from inpaintaff.segment.foreground import true_foreground  # noqa: E402
from inpaintaff.segment.mws import mutex_watershed  # noqa: E402
from inpaintaff.segment.postprocess import merge_small_segments  # noqa: E402
from inpaintaff.tasks.inpaintaff.patches import patch_counts, patch_grid  # noqa: E402
from inpaintaff.utils.resolvers import shared_data_dir  # noqa: E402

SHARED = shared_data_dir()
DATASET = "Fluo-N2DL-HeLa"
FULL_FRAME = (700, 1100)


def load_frame(frame: int) -> tuple[np.ndarray, np.ndarray]:
    path = raw_path(SHARED, DATASET, "01", frame)
    image = percentile_normalize(read_image(path), source=path)
    return image, read_labels(SHARED / DATASET / "01_GT" / "SEG" / f"man_seg{frame:03d}.tif")


def base_of(stride: int, strides: list[int]) -> int:
    """The smallest listed stride that divides ``stride`` (whose patches hold ``stride``'s)."""
    return min(s for s in strides if stride % s == 0)


def engine_overrides(pairs: list[str], what: str = "--engine") -> dict:
    """``key=value`` engine settings -> overrides typed as ``EngineConfig``'s fields (an unknown key ends
    the benchmark, naming ``what``)."""
    base = EngineConfig()
    out: dict = {}
    for pair in pairs:
        key, _, value = pair.partition("=")
        if key not in EngineConfig.__dataclass_fields__:
            sys.exit(f"{what}: unknown engine setting {key!r}")
        default = getattr(base, key)
        if isinstance(default, bool):
            out[key] = value.lower() == "true"
        elif value.isdigit() or default is None or isinstance(default, str):
            out[key] = int(value) if value.isdigit() else value
        else:
            out[key] = type(default)(value)
    return out


def fgnet_foreground(ckpt: str | Path, image: np.ndarray, threshold: float) -> np.ndarray:
    """An FGNET checkpoint's probability on a whole normalised image, above ``threshold``."""
    from inpaintaff.modules.fgnet import FGNetModule
    from inpaintaff.tasks.checkpoints import load_module
    from inpaintaff.utils.tiling import predict_at_least

    return predict_at_least(load_module(FGNetModule, ckpt).predict_proba, image, 256, 32)[0] > threshold


def region_foreground(args, image: np.ndarray) -> np.ndarray | None:
    """The foreground the engine's region rules read (``--region-fg``), or None."""
    if args.region_fg == "none":
        return None
    if args.region_fg == "intensity":
        return image > args.region_fg_threshold
    return fgnet_foreground(args.fgnet, image, args.region_fg_threshold)


def leaves_of(args, engine: SplitEngine, key: str, base: int, frame: int, seed: int, image: np.ndarray,
              fg: np.ndarray, rfg: np.ndarray | None = None) -> dict:
    """Leaf ids of every patch at stride ``base`` holding ``fg``, from the cache or computed."""
    path = Path(args.out) / "leaves" / f"t{frame:03d}_seed{seed}_{key}.npz"
    if path.is_file():
        with np.load(path) as z:
            return {k: z[k] for k in z.files}
    pos = patch_grid(image.shape, args.patch, base)
    pos = [p for p, c in zip(pos, patch_counts(fg, pos, args.patch)) if c > 0]
    leaves, images, seconds = [], 0, 0.0
    for i in range(0, len(pos), args.batch):
        chunk = pos[i : i + args.batch]
        patches = torch.from_numpy(np.stack([image[y : y + args.patch, x : x + args.patch] for y, x in chunk]))
        seeds = [mix_seed(seed, 1, frame, y, x) for y, x in chunk]  # as PatchDataset: (seed, seq 01, frame, y, x)
        t0 = time.perf_counter()
        region_fg = None if rfg is None else np.stack([rfg[y : y + args.patch, x : x + args.patch] for y, x in chunk])
        res = engine.run(patches[:, None].float(), seeds, foreground=region_fg)
        seconds += time.perf_counter() - t0
        images += res.conditionals
        leaves.append(res.leaf_ids.numpy().astype(np.int32))
    out = {"positions": np.array(pos, dtype=np.int32), "leaves": np.concatenate(leaves),
           "images": np.array(images), "seconds": np.array(seconds)}
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        np.savez_compressed(tmp, **out)
    print(f"  t{frame:03d} seed {seed} stride {base}: {len(pos)} patches, {seconds / len(pos):.2f} s and "
          f"{images / len(pos):.0f} images per patch", flush=True)
    return out


def frame_affinities(leaves: dict, shape: tuple[int, int], patch: int, stride: int,
                     weighting: str) -> tuple[np.ndarray, np.ndarray]:
    """The frame's affinities from the patches at ``stride`` (a subset of the computed ones)."""
    keep = set(patch_grid(shape, patch, stride))
    weights = patch_weights(patch, weighting)
    acc = AffinityAccumulator(shape)
    for (y, x), ids in zip(map(tuple, leaves["positions"].tolist()), leaves["leaves"]):
        if (y, x) in keep:
            aff, valid = patch_affinities(torch.from_numpy(ids)[None])
            acc.add(aff[0].numpy(), valid.numpy(), y, x, weights)
    return acc.result()


def score(frames: list[dict], affs: list, alphas: list[float], min_sizes: list[int]) -> dict:
    """SEG pooled over frames for every (α, fragment size)."""
    table = {}
    for alpha in alphas:
        segs = {m: [] for m in min_sizes}
        for f, (aff, valid) in zip(frames, affs):
            labels = mutex_watershed(aff, alpha, valid=valid, foreground=f["fg"])
            for m in min_sizes:
                segs[m].append(seg_frame(f["gt"], merge_small_segments(labels, m)))
        for m in min_sizes:
            table[f"{alpha:g}/{m}"] = pool_seg(segs[m]).seg
    return table


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--frames", type=int, nargs="+", default=[25, 44, 54], help="the val frames of Table 1")
    ap.add_argument("--seeds", type=int, nargs="+", default=[12345, 1, 2])
    ap.add_argument("--strides", type=int, nargs="+", default=[16, 24, 32, 48])
    ap.add_argument("--weights", nargs="+", default=["uniform", "tent"], choices=["uniform", "tent"])
    ap.add_argument("--patch", type=int, default=64)
    ap.add_argument("--ckpt", default=str(ROOT / "checkpoints" / "hela_inpaint_cpu.ckpt"))
    ap.add_argument("--alphas", type=float, nargs="+", default=[0.5, 1.0, 1.5, 2.0, 3.0])
    ap.add_argument("--min-sizes", type=int, nargs="+", default=[0, 50, 100])
    ap.add_argument("--engine", nargs="*", default=[], help="engine overrides key=value (e.g. max_depth=2)")
    ap.add_argument("--region-fg", default="none", choices=["none", "fgnet", "intensity"],
                    help="the foreground the engine's region rules read (region_min_fg, one_object_px)")
    ap.add_argument("--region-fg-threshold", type=float, default=0.5)
    ap.add_argument("--fgnet", default=str(ROOT / "checkpoints" / "hela_fgnet_cpu.ckpt"))
    ap.add_argument("--batch", type=int, default=16, help="patches per engine call (task.batch_size)")
    ap.add_argument("--chunk", type=int, default=16, help="engine.chunk (speed only)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", default="runs/engine_stride")
    args = ap.parse_args()
    if not (SHARED / DATASET).is_dir():
        sys.exit(f"shared HeLa data not found at {SHARED}")
    torch.set_num_threads(args.threads)
    args.out = str((ROOT / args.out).resolve())
    defaults = OmegaConf.to_container(OmegaConf.load(ROOT / "conf" / "task" / "inpaintaff.yaml").engine)
    changes = engine_overrides(args.engine)
    cfg = EngineConfig(**{**defaults, **changes})
    if cfg.uses_foreground and args.region_fg == "none":
        sys.exit("the region rules need --region-fg fgnet or intensity")
    ckpt_hash = hashlib.sha256(Path(args.ckpt).read_bytes()).hexdigest()[:12]
    region = [] if not cfg.uses_foreground else [args.region_fg, args.region_fg_threshold,
                                                 hashlib.sha256(Path(args.fgnet).read_bytes()).hexdigest()[:12]]

    def key(base: int) -> str:
        text = json.dumps([cfg.result_settings(), ckpt_hash, args.patch, base, *region])
        return hashlib.sha256(text.encode()).hexdigest()[:10]

    engine = SplitEngine(load_net_inpainter(args.ckpt), cfg, chunk=args.chunk)

    frames = []
    for t in args.frames:
        image, gt = load_frame(t)
        rfg = region_foreground(args, image) if cfg.uses_foreground else None
        frames.append({"t": t, "image": image, "gt": gt, "fg": true_foreground(gt), "rfg": rfg})
    cc = pool_seg(seg_frame(f["gt"], connected_components(f["fg"])) for f in frames).seg
    n_gt = sum(len(np.unique(f["gt"])) - 1 for f in frames)
    print(f"frames {args.frames} ({n_gt} labeled nuclei; CC on TRUEFG: SEG {cc:.3f}), {args.patch}^2 patches, "
          f"engine {changes or 'defaults'}, region foreground {args.region_fg}, seeds {args.seeds}, "
          f"{args.threads} threads", flush=True)

    rows, cost = [], {}
    bases = sorted({base_of(s, args.strides) for s in args.strides})
    for seed in args.seeds:
        by_base = {b: [leaves_of(args, engine, key(b), b, f["t"], seed, f["image"], f["fg"], f["rfg"]) for f in frames]
                   for b in bases}
        all_leaves = [lv for b in bases for lv in by_base[b]]
        n = sum(len(lv["positions"]) for lv in all_leaves)
        cost[seed] = {"s_per_patch": sum(float(lv["seconds"]) for lv in all_leaves) / n,
                      "images_per_patch": sum(int(lv["images"]) for lv in all_leaves) / n}
        for stride in args.strides:
            leaves = by_base[base_of(stride, args.strides)]
            for weighting in args.weights:
                affs = [frame_affinities(lv, f["image"].shape, args.patch, stride, weighting)
                        for lv, f in zip(leaves, frames)]
                table = score(frames, affs, args.alphas, args.min_sizes)
                best = max(table, key=table.get)
                rows.append({"seed": seed, "stride": stride, "weighting": weighting, "seg": table, "best": best})
                curve = " ".join(f"{max(table[f'{a:g}/{m}'] for m in args.min_sizes):.3f}" for a in args.alphas)
                print(f"seed {seed:6d} stride {stride:3d} {weighting:8s} | best SEG over fragment sizes by α "
                      f"{curve} | best {table[best]:.3f} at α/size {best}", flush=True)

    print("\nsummary (SEG at each setting's best α/size of the seed mean; spread = max - min over seeds):")
    summary = []
    for stride in args.strides:
        for weighting in args.weights:
            mine = [r for r in rows if r["stride"] == stride and r["weighting"] == weighting]
            mean = {k: float(np.mean([r["seg"][k] for r in mine])) for k in mine[0]["seg"]}
            best = max(mean, key=mean.get)
            at_best = [r["seg"][best] for r in mine]
            n_full = len(patch_grid(FULL_FRAME, args.patch, stride))
            summary.append({"stride": stride, "weighting": weighting, "best": best, "mean_seg": mean[best],
                            "seeds": at_best, "spread": max(at_best) - min(at_best),
                            "patches_700x1100": n_full, "mean_by_setting": mean})
            print(f"  stride {stride:3d} {weighting:8s}: SEG {mean[best]:.3f} at α/size {best} (seeds "
                  + " ".join(f"{s:.3f}" for s in at_best) + f", spread {max(at_best) - min(at_best):.3f}); "
                  f"{n_full} patches per 700x1100 frame", flush=True)
    mean_cost = {k: float(np.mean([c[k] for c in cost.values()])) for k in ("s_per_patch", "images_per_patch")}
    print(f"engine on these frames: {mean_cost['s_per_patch']:.2f} s and {mean_cost['images_per_patch']:.0f} images "
          f"per patch ({args.threads} threads)")
    out = Path(args.out)
    report = {"frames": args.frames, "n_gt": n_gt, "cc_seg": cc, "engine": changes, "patch": args.patch,
              "region_fg": None if not cfg.uses_foreground else [args.region_fg, args.region_fg_threshold],
              "alphas": args.alphas, "min_sizes": args.min_sizes, "rows": rows, "summary": summary, "cost": cost}
    (out / "engine_stride.json").write_text(json.dumps(report, indent=2))
    plot(report, out / "engine_stride.png")
    print(f"figures in {out}")


def plot(report: dict, path: Path) -> None:
    """SEG against α (best fragment size) per stride and weighting: seed mean with min-max band."""
    import matplotlib.pyplot as plt

    from inpaintaff.viz.figures import save_figure

    fig, ax = plt.subplots(figsize=(6.5, 4))
    alphas, sizes = report["alphas"], report["min_sizes"]
    for s in report["summary"]:
        mine = [r for r in report["rows"] if r["stride"] == s["stride"] and r["weighting"] == s["weighting"]]
        m = s["best"].split("/")[1]
        curves = np.array([[r["seg"][f"{a:g}/{m}"] for a in alphas] for r in mine])
        line, = ax.plot(alphas, curves.mean(0), marker="o",
                        label=f"stride {s['stride']}, {s['weighting']} ({s['patches_700x1100']} patches/frame)")
        ax.fill_between(alphas, curves.min(0), curves.max(0), color=line.get_color(), alpha=0.15)
    ax.axhline(report["cc_seg"], color="k", ls="--", label="CC on TRUEFG")
    ax.set_xlabel("α")
    ax.set_ylabel(f"SEG, frames {report['frames']} pooled")
    ax.set_title(f"fragment size {sizes} chosen per setting; band: seeds min-max", fontsize=9)
    ax.legend(fontsize=7)
    save_figure(fig, path)


if __name__ == "__main__":
    main()
