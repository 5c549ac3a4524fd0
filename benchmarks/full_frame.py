"""One whole HeLa frame end to end: patches -> engine -> affinities -> mutex watershed -> SEG.

    .venv/bin/python benchmarks/full_frame.py [--frame 52] [--inpainters net gaussian] [-- hydra overrides]
    .venv/bin/python benchmarks/full_frame.py --crowded [--inpainters net] [-- hydra overrides]

For each inpainter, runs the user's command lines (``predict.py task=inpaintaff`` on the whole
frame, then ``predict.py -m task=segment`` over α with TRUEFG, and connected components) as
subprocesses and prints seconds per stage, patches per second, forward passes and images per
patch, peak memory and SEG against α. Then, on a seeded sample of the frame's foreground patches,
times the engine as it was before the speed work (``benchmarks/reference_engine.py``, frozen) against
today's, both with the same inpainter and settings, checks that their leaves agree, and projects
the old engine's whole-frame time (with its old defaults: every patch, max_depth 8) for the
speed-up. Extra arguments after ``--`` go to ``task=inpaintaff`` (e.g. ``trainer.accelerator=gpu
trainer.devices=1 task.batch_size=128``). Figures go to stdout and ``<out>/full_frame.json``.

``--crowded`` times a crowded frame instead, as a user's folder image (``data=folder``, every
patch split): the shared frames of sequence 01 hold at most about 140 nuclei, the paper's test
frames about 350, so the benchmark builds a 700×1100 mosaic of the 25 most crowded 140×220 tiles
of the shared frames 052-091 (about 350 nuclei, 19 % foreground; ``crowded_frame``). It has no
labels: timing only, and the whole-frame time at another stride is projected from the measured
seconds per patch (its patches are a sample of that frame's). ``--crowded --fgnet-foreground``
first runs ``task=foreground`` with the shipped FGNET on the mosaic (timed as a stage of its own:
the user runs it too) and gives ``task=inpaintaff`` its probabilities above ``--fg-threshold``
(``task.foreground.source=dir``: patches without foreground skipped, and what the engine's region
rules read, e.g. ``-- task.engine.region_min_fg=1 task.engine.one_object_px=500``).

``--chunks none 16 ...`` first times the engine on a seeded sample of the frame's patches with
each ``engine.chunk`` (images per inpainter call; ``fixed16``: 16 with every call padded to 16 and
the net compiled for that one shape), the settings taking turns, and checks that the leaves agree.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench_cli import run_cli  # noqa: E402  (benchmarks/ is the script's folder, first on sys.path)

from inpaintaff.data.normalize import percentile_normalize  # noqa: E402
from inpaintaff.igm.inpainters import GaussianInpainter  # noqa: E402
from inpaintaff.igm.split import SplitEngine, mix_seed  # noqa: E402
from inpaintaff.io.ctc import raw_path, read_image, read_labels  # noqa: E402
from inpaintaff.modules.net_inpainter import load_net_inpainter  # noqa: E402
from inpaintaff.segment.foreground import true_foreground  # noqa: E402
from inpaintaff.tasks.inpaintaff.patches import patch_counts, patch_grid  # noqa: E402
from inpaintaff.utils.resolvers import shared_data_dir  # noqa: E402

SHARED = shared_data_dir()
DATASET = "Fluo-N2DL-HeLa"
CKPT = ROOT / "checkpoints" / "hela_inpaint_cpu.ckpt"
FGNET = ROOT / "checkpoints" / "hela_fgnet_cpu.ckpt"


def child_peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024




def crowded_frame(tile: tuple[int, int] = (140, 220), grid: tuple[int, int] = (5, 5)) -> np.ndarray:
    """A crowded 700×1100 frame (uint16): the ``grid`` tiles of the shared frames 052-091 with the
    most intensity foreground (normalised image > 0.15, opened), row by row, most crowded first."""
    from scipy import ndimage

    ranked = []
    for path in sorted((SHARED / DATASET / "01").glob("t*.tif")):
        if int(path.stem[1:]) < 52:
            continue
        raw = read_image(path)
        fg = ndimage.binary_opening(percentile_normalize(raw, source=path) > 0.15)
        for i in range(raw.shape[0] // tile[0]):
            for j in range(raw.shape[1] // tile[1]):
                sl = (slice(i * tile[0], (i + 1) * tile[0]), slice(j * tile[1], (j + 1) * tile[1]))
                ranked.append((float(fg[sl].mean()), path.stem, i, j, raw[sl]))
    ranked.sort(key=lambda r: (-r[0], r[1], r[2], r[3]))
    rows = [np.concatenate([r[4] for r in ranked[k * grid[1] : (k + 1) * grid[1]]], axis=1) for k in range(grid[0])]
    return np.concatenate(rows, axis=0).astype(np.uint16)  # the shared frames' own type


def frame_data(args, out: Path) -> tuple[list[str], np.ndarray]:
    """The data overrides of the frame to time (a shared frame, or the crowded mosaic written once as
    a folder image) and its raw image."""
    if not args.crowded:
        path = raw_path(SHARED, DATASET, "01", args.frame)
        split = f"data.splits.predict=[{{seq:'01',frames:[{args.frame}]}}]"
        return ["data=shared_hela", f"data.root={SHARED}", split], read_image(path)
    import tifffile

    folder = out / "crowded"
    folder.mkdir(parents=True, exist_ok=True)
    raw = crowded_frame()
    tifffile.imwrite(folder / "crowded_hela.tif", raw)
    return ["data=folder", f"data.images={folder}", "data.diameter=25"], raw


def fgnet_stage(args, out: Path, data: list[str]) -> tuple[list[str], dict]:
    """``task=foreground`` with the shipped FGNET on the frame; the ``task.foreground`` overrides that
    make ``task=inpaintaff`` read its probabilities, and the stage's seconds."""
    fg_dir = out / "fgnet_foreground"
    cli = ["predict.py", "task=foreground", *data, f"ckpt={FGNET}", "task.split=predict",
           f"task.out_dir={fg_dir}", "task.overwrite=true", f"hydra.run.dir={out / 'fgnet_run'}"]
    wall = run_cli(cli, out / "fgnet.log")
    return (["task.foreground.source=dir", f"task.foreground.dir={fg_dir}",
             f"task.foreground.threshold={args.fg_threshold}"], {"process_seconds": wall, "dir": str(fg_dir)})


def affinity_stage(args, kind: str, out: Path, data: list[str], extra: list[str],
                   fg_overrides: list[str] | None = None) -> dict:
    run_dir = out / f"aff_{kind}"
    foreground = fg_overrides or [f"task.foreground.source={args.foreground}"]
    cli = ["predict.py", "task=inpaintaff", *data, f"task.inpainter={kind}", f"task.stride={args.stride}", *foreground,
           f"task.torch_threads={args.threads}", "task.overwrite=true", f"hydra.run.dir={run_dir}"]
    if kind == "net":
        cli.append(f"ckpt={args.ckpt}")
    wall = run_cli([*cli, *extra], out / f"aff_{kind}.log")
    res = json.loads((run_dir / "inpaintaff_result.json").read_text())
    tot = res["totals"]
    return {"stride": res["task"]["stride"], "patch_size": res["task"]["patch_size"],
        "process_seconds": wall, "predict_seconds": res["wall_seconds"], "engine_seconds": tot.get("seconds"),
        "patches": tot.get("patches"), "patches_per_second": res["patches_per_second"],
        "forward_passes_per_patch": res["forward_passes_per_patch"],
        "images_per_patch": res["conditionals_per_patch"], "splits_per_patch": res["splits_per_patch"],
        "peak_rss_mb": child_peak_mb(), "affinities": str(run_dir / "affinities"),
    }


def segment_stage(args, kind: str, aff_dir: str, out: Path) -> dict:
    sweep = out / f"seg_{kind}"
    alphas = ",".join(f"{a:g}" for a in args.alphas)
    cli = ["predict.py", "-m", "task=segment", "data=shared_hela", f"data.root={SHARED}", "task.split=predict",
           f"data.splits.predict=[{{seq:'01',frames:[{args.frame}]}}]", "task.affinities.source=dir",
           f"task.affinities.dir={aff_dir}", f"task.alpha={alphas}", "task.overlays=false",
           f"hydra.sweep.dir={sweep}"]
    wall = run_cli(cli, out / f"seg_{kind}.log")
    rows = []
    for job in sorted(p for p in sweep.iterdir() if p.is_dir() and (p / "segment_result.json").is_file()):
        r = json.loads((job / "segment_result.json").read_text())
        rows.append({"alpha": r["alpha"], "seg": r["seg"], "mws_seconds": r["frames"][0]["seconds"]})
    rows.sort(key=lambda r: r["alpha"])
    if len(rows) != len(args.alphas):
        sys.exit(f"the α sweep returned {len(rows)} of {len(args.alphas)} jobs: see {sweep}")
    return {"sweep_seconds": wall, "by_alpha": rows, "best": max(rows, key=lambda r: r["seg"])}


def cc_stage(args, out: Path) -> dict:
    run_dir = out / "seg_cc"
    run_cli(["predict.py", "task=segment", "task.method=cc", "data=shared_hela", f"data.root={SHARED}",
             "task.split=predict", f"data.splits.predict=[{{seq:'01',frames:[{args.frame}]}}]",
             "task.overlays=false", f"hydra.run.dir={run_dir}"], out / "seg_cc.log")
    return {"seg": json.loads((run_dir / "segment_result.json").read_text())["seg"]}


def sample_patches(args) -> tuple[tuple[torch.Tensor, list[int]], tuple[torch.Tensor, list[int]], int, int]:
    """Seeded samples of the frame's foreground patches and of all its patches (each as (patches,
    seeds)), and the frame's patch counts (all, foreground)."""
    path = raw_path(SHARED, DATASET, "01", args.frame)
    image = percentile_normalize(read_image(path), source=path)
    labels = read_labels(SHARED / DATASET / "01_GT" / "SEG" / f"man_seg{args.frame:03d}.tif")
    pos = patch_grid(image.shape, 64, args.stride)
    counts = patch_counts(true_foreground(labels), pos, 64)
    fg = [p for p, c in zip(pos, counts) if c > 0]
    rng = np.random.default_rng(0)

    def take(where: list[tuple[int, int]]) -> tuple[torch.Tensor, list[int]]:
        sel = [where[i] for i in sorted(rng.choice(len(where), min(args.old_sample, len(where)), replace=False))]
        patches = torch.from_numpy(np.stack([image[y : y + 64, x : x + 64] for y, x in sel]))[:, None].float()
        return patches.contiguous(), [mix_seed(12345, 1, args.frame, y, x) for y, x in sel]

    return take(fg), take(pos), len(pos), len(fg)


def old_vs_new(args, kind: str, fg_sample, all_sample, n_all: int) -> dict:
    """The frozen engine against today's on the same foreground patches and settings, and the old
    engine with its old defaults on a sample of all patches (for the whole-frame projection)."""
    from omegaconf import OmegaConf

    from benchmarks import reference_engine

    inpainter = load_net_inpainter(args.ckpt) if kind == "net" else GaussianInpainter(4.0)
    timing = {"inpainter": 0.0}

    def timed(image, known):
        t = time.perf_counter()
        out = inpainter(image, known)
        timing["inpainter"] += time.perf_counter() - t
        return out

    today = OmegaConf.load(ROOT / "conf" / "task" / "inpaintaff.yaml").engine
    same = {k: today[k] for k in ("iterations", "d0", "min_region", "max_depth", "patience")}
    rows = {}
    for name, cls, settings, (patches, seeds) in (
        ("old engine, today's settings", reference_engine.SplitEngine, same, fg_sample),
        ("new engine, today's settings", SplitEngine, same, fg_sample),
        ("old engine, old defaults, any patch", reference_engine.SplitEngine, {**same, "max_depth": 8}, all_sample),
    ):
        engine = cls(timed, **settings)
        timing["inpainter"] = 0.0
        t0 = time.perf_counter()
        res = engine.run(patches, seeds)
        dt = time.perf_counter() - t0
        n = patches.shape[0]
        rows[name] = {"s_per_patch": dt / n, "inpainter_s_per_patch": timing["inpainter"] / n,
                      "engine_arithmetic_s_per_patch": (dt - timing["inpainter"]) / n,
                      "images_per_patch": res.conditionals / n, "passes": res.forward_passes,
                      "leaf_ids": res.leaf_ids}
    a, b = rows["old engine, today's settings"], rows["new engine, today's settings"]
    agree = float((a["leaf_ids"] == b["leaf_ids"]).float().mean())
    for r in rows.values():
        r.pop("leaf_ids")
    old_frame = rows["old engine, old defaults, any patch"]["s_per_patch"] * n_all
    return {"rows": rows, "leaf_pixel_agreement": agree, "old_frame_seconds_projected": old_frame,
            "arithmetic_speedup": a["engine_arithmetic_s_per_patch"] / max(b["engine_arithmetic_s_per_patch"], 1e-9),
            "engine_speedup": a["s_per_patch"] / b["s_per_patch"]}


def chunk_comparison(args, image: np.ndarray) -> dict:
    """Seconds per patch and per inpainted image for each ``--chunks`` setting on the same seeded
    sample of ``image``'s patches, in turns (``--chunk-reps`` rounds; the fastest round counts)."""
    rng = np.random.default_rng(0)
    pos = [(int(rng.integers(0, image.shape[0] - 63)), int(rng.integers(0, image.shape[1] - 63)))
           for _ in range(args.chunk_sample)]
    patches = torch.from_numpy(np.stack([image[y : y + 64, x : x + 64] for y, x in pos]))[:, None].float()
    seeds = [mix_seed(12345, y, x) for y, x in pos]
    eager = load_net_inpainter(args.ckpt)
    engines, compile_s = {}, {}
    for name in args.chunks:
        if name.startswith("fixed"):
            t0 = time.perf_counter()
            engine = SplitEngine(load_net_inpainter(args.ckpt, compile="fixed"), chunk=int(name[5:]),
                                 pad_chunks=True)
            with torch.inference_mode():
                engine.run(patches[:2], seeds[:2])  # compiles
            compile_s[name] = time.perf_counter() - t0
        else:
            engine = SplitEngine(eager, chunk=None if name == "none" else int(name))
        engines[name] = engine
    times = {name: [] for name in engines}
    leaves, images = {}, 0
    with torch.inference_mode():
        for _ in range(args.chunk_reps):
            for name, engine in engines.items():
                t0 = time.perf_counter()
                res = engine.run(patches, seeds)
                times[name].append(time.perf_counter() - t0)
                leaves[name], images = res.leaf_ids, res.conditionals
    first = args.chunks[0]
    rows = {name: {"s_per_patch": min(t) / len(pos), "ms_per_image": 1000 * min(t) / images,
                   "speedup": min(times[first]) / min(t), "compile_seconds": compile_s.get(name),
                   "leaf_pixel_agreement": float((leaves[name] == leaves[first]).float().mean())}
            for name, t in times.items()}
    print(f"engine.chunk on {len(pos)} patches of the frame ({images / len(pos):.0f} images per patch), "
          f"{args.threads} threads, fastest of {args.chunk_reps} turns:")
    for name, r in rows.items():
        extra = f", compiled in {r['compile_seconds']:.0f} s" if r["compile_seconds"] else ""
        print(f"  chunk {name:8s} {r['s_per_patch']:6.2f} s/patch {r['ms_per_image']:6.2f} ms/image, "
              f"{r['speedup']:.2f}x against {first}, leaves agree on {r['leaf_pixel_agreement']:.2%}{extra}",
              flush=True)
    return rows


def plot_curves(report: dict, path: Path) -> Path:
    """SEG against α of every inpainter, with CC on TRUEFG as a line, as PNG."""
    import matplotlib.pyplot as plt

    from inpaintaff.viz.figures import save_figure

    fig, ax = plt.subplots(figsize=(6, 4))
    for kind, r in report["inpainters"].items():
        rows = r["segment"]["by_alpha"]
        ax.plot([x["alpha"] for x in rows], [x["seg"] for x in rows], marker="o", label=f"INPAINTAFF ({kind}) + TRUEFG")
    ax.axhline(report["cc"]["seg"], color="k", ls="--", label="CC on TRUEFG")
    ax.set_xlabel("α")
    ax.set_ylabel("SEG")
    ax.set_title(f"whole frame t{report['frame']:03d}, stride {report['stride']}")
    ax.legend(fontsize=8)
    return save_figure(fig, path)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--frame", type=int, default=52)
    ap.add_argument("--inpainters", nargs="*", choices=["net", "gaussian"], default=["net", "gaussian"])
    ap.add_argument("--ckpt", default=str(CKPT))
    ap.add_argument("--crowded", action="store_true",
                    help="time the crowded mosaic (crowded_frame) as a folder image instead of a shared frame")
    ap.add_argument("--stride", type=int, default=None, help="task.stride (default: the task's)")
    ap.add_argument("--project-strides", type=int, nargs="*", default=[16, 32],
                    help="--crowded: strides whose whole-frame time is projected from the measured s/patch")
    ap.add_argument("--foreground", default="truefg", help="task.foreground.source for skipping patches")
    ap.add_argument("--fgnet-foreground", action="store_true",
                    help="--crowded: run task=foreground with the shipped FGNET first and read it (a stage of its own)")
    ap.add_argument("--fg-threshold", type=float, default=0.3, help="--fgnet-foreground: task.foreground.threshold")
    ap.add_argument("--threads", type=int, default=2, help="task.torch_threads")
    ap.add_argument("--alphas", type=float, nargs="+", default=[0.1, 0.3, 0.5, 0.7, 1.0, 1.5, 2.0, 3.0])
    ap.add_argument("--old-sample", type=int, default=12,
                    help="patches for the old/new engine comparison (0: no comparison)")
    ap.add_argument("--out", default="runs/full_frame")
    ap.add_argument("--chunks", nargs="*", default=[],
                    help="engine.chunk settings to compare first (none, a number, fixedN: padded and compiled)")
    ap.add_argument("--chunk-sample", type=int, default=16, help="patches for --chunks")
    ap.add_argument("--chunk-reps", type=int, default=2)
    ap.add_argument("overrides", nargs="*", help="after --: Hydra overrides for task=inpaintaff")
    args = ap.parse_args()
    if not (SHARED / DATASET).is_dir():
        sys.exit(f"shared HeLa data not found at {SHARED}")
    out = (ROOT / args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(args.threads)
    if args.stride is None:
        from omegaconf import OmegaConf

        args.stride = int(OmegaConf.load(ROOT / "conf" / "task" / "inpaintaff.yaml").stride)
    if args.fgnet_foreground and not args.crowded:
        sys.exit("--fgnet-foreground is for --crowded (a shared frame skips patches by --foreground)")
    if args.crowded:
        args.foreground = f"fgnet>{args.fg_threshold:g}" if args.fgnet_foreground else "null"
        args.old_sample = 0
    what = "the crowded mosaic (crowded_frame)" if args.crowded else f"frame t{args.frame:03d} of {DATASET}/01"
    print(f"{what} (700x1100), stride {args.stride}, patches without {args.foreground} foreground "
          f"skipped; {args.threads} torch threads; overrides: {' '.join(args.overrides) or 'none'}", flush=True)
    report: dict = {"frame": "crowded" if args.crowded else args.frame, "stride": args.stride,
                    "overrides": args.overrides, "inpainters": {}}
    data, raw = frame_data(args, out)
    fg_overrides: list[str] = []
    if args.fgnet_foreground:
        fg_overrides, report["fgnet"] = fgnet_stage(args, out, data)
        print(f"FGNET foreground (task=foreground, whole process): {report['fgnet']['process_seconds']:.0f} s",
              flush=True)
    if args.chunks:
        report["chunks"] = chunk_comparison(args, percentile_normalize(raw.astype(np.float32)))
    if not args.inpainters:  # --inpainters with none: the chunk comparison only
        (out / "full_frame.json").write_text(json.dumps(report, indent=2))
        return
    for kind in args.inpainters:
        aff = affinity_stage(args, kind, out, data, args.overrides, fg_overrides)
        report["inpainters"][kind] = {"affinities": aff}
        print(f"\n[{kind}] affinities at stride {aff['stride']}: {aff['process_seconds']:.0f} s "
              f"({aff['process_seconds'] / 60:.1f} min) for the whole process ({aff['predict_seconds']:.0f} s "
              f"predicting, {aff['engine_seconds']:.0f} s in the engine), {aff['patches']:.0f} patches, "
              f"{aff['patches_per_second']:.2f} patches/s, {aff['forward_passes_per_patch']:.1f} forward passes, "
              f"{aff['images_per_patch']:.0f} images and {aff['splits_per_patch']:.1f} splits per patch, peak RSS "
              f"{aff['peak_rss_mb']:.0f} MB", flush=True)
        if not args.crowded:  # patches skipped by foreground: no projection to other strides
            continue
        per_patch = aff["engine_seconds"] / aff["patches"]
        fixed = aff["process_seconds"] - aff["engine_seconds"]
        for stride in args.project_strides:
            n = len(patch_grid(raw.shape, aff["patch_size"], stride))
            t = fixed + per_patch * n
            bound = " (an upper bound: some are skipped)" if args.fgnet_foreground else ""
            print(f"[{kind}]   every patch at stride {stride}{bound}: {n} patches, {t:.0f} s ({t / 60:.1f} min) "
                  "projected "
                  f"({per_patch:.2f} s per patch in the engine + {fixed:.0f} s outside it)", flush=True)
    if args.crowded:
        (out / "full_frame.json").write_text(json.dumps(report, indent=2))
        print(f"\nfigures in {out / 'full_frame.json'}")
        return
    report["cc"] = cc_stage(args, out)
    for kind in args.inpainters:
        aff = report["inpainters"][kind]["affinities"]
        seg = segment_stage(args, kind, aff["affinities"], out)
        report["inpainters"][kind]["segment"] = seg
        curve = ", ".join(f"{r['alpha']:g}: {r['seg']:.3f}" for r in seg["by_alpha"])
        mws = np.mean([r["mws_seconds"] for r in seg["by_alpha"]])
        print(f"[{kind}] mutex watershed + SEG: {mws:.1f} s per α; SEG by α {{{curve}}}; best "
              f"{seg['best']['seg']:.3f} at α {seg['best']['alpha']:g} (CC on TRUEFG: {report['cc']['seg']:.3f})",
              flush=True)
    plot_curves(report, out / "full_frame_seg_vs_alpha.png")
    if args.old_sample <= 0:
        (out / "full_frame.json").write_text(json.dumps(report, indent=2))
        print(f"\nno old/new comparison (--old-sample 0); figures in {out / 'full_frame.json'}")
        return
    fg_sample, all_sample, n_all, n_fg = sample_patches(args)
    print(f"\nold engine against new on {fg_sample[0].shape[0]} of the frame's {n_fg} foreground patches; the old "
          f"defaults on {all_sample[0].shape[0]} of all {n_all} patches:")
    for kind in args.inpainters:
        cmp = old_vs_new(args, kind, fg_sample, all_sample, n_all)
        report["inpainters"][kind]["old_vs_new"] = cmp
        print(f"  [{kind}]" + "".join(
            f"\n    {name:42s} {r['s_per_patch']:7.3f} s/patch (inpainter {r['inpainter_s_per_patch']:.3f}, engine "
            f"arithmetic {r['engine_arithmetic_s_per_patch']:.4f}), {r['images_per_patch']:.0f} images/patch"
            for name, r in cmp["rows"].items()))
        new = report["inpainters"][kind]["affinities"]["process_seconds"]
        nr = cmp["rows"]["new engine, today's settings"]
        share = nr["engine_arithmetic_s_per_patch"] / nr["s_per_patch"]
        aff = report["inpainters"][kind]["affinities"]
        outside = 1 - aff["engine_seconds"] / aff["process_seconds"]
        print(f"    same settings: engine arithmetic {cmp['arithmetic_speedup']:.1f}x cheaper, engine "
              f"{cmp['engine_speedup']:.2f}x faster, leaves agree on {cmp['leaf_pixel_agreement']:.2%} of pixels; "
              f"the engine's own arithmetic is {share:.1%} of its time (the rest: forward passes); "
              f"{outside:.1%} of the whole-frame process is spent outside the engine (start-up, loading, "
              f"accumulating, writing, pictures)")
        print(f"    whole frame: old engine with old defaults (all {n_all} patches, max_depth 8) projected "
              f"{cmp['old_frame_seconds_projected'] / 60:.0f} min at {args.threads} thread(s) in one process; "
              f"today {new / 60:.1f} min measured: {cmp['old_frame_seconds_projected'] / new:.1f}x", flush=True)
    report["cpu_count"] = os.cpu_count()
    (out / "full_frame.json").write_text(json.dumps(report, indent=2))
    print(f"\nfigures in {out / 'full_frame.json'}")


if __name__ == "__main__":
    main()
