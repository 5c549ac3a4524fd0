"""What a crowded frame costs the engine with each net and region rule, measured side by side.

    .venv/bin/python benchmarks/engine_variants.py \\
        --variant shipped=checkpoints/hela_inpaint_cpu.ckpt \\
        --variant "shipped+rules=checkpoints/hela_inpaint_cpu.ckpt region_min_fg=1 one_object_px=500" \\
        --variant small=checkpoints/hela_inpaint_cpu_small.ckpt [--sample 24] [--reps 2] [--stride 16]

Each ``--variant`` is ``name=checkpoint [engine key=value ...] [compile=fixed|dynamic]`` (``fixed``
needs ``chunk=N pad_chunks=true``; compiling happens before the timed turns). On a seeded sample of the patches
of the crowded 700×1100 mosaic (``full_frame.crowded_frame``: about 350 nuclei), every variant
splits the same patches, the variants taking turns (``--reps`` rounds; the fastest counts), in one
process with ``--threads`` torch threads. The region rules read the shipped FGNET's foreground of
the mosaic (probability above ``--fg-threshold``), which also decides the patches the task would
skip (``task.foreground.source=dir``). Prints seconds and images per patch, ms per image, the
speed-up against the first variant, how far each variant's leaves agree with the first's (on the
FGNET foreground), and the engine's projected time for the whole mosaic at ``--stride``. SEG is
measured elsewhere (``engine_stride.py`` on the validation frames); this is the cost side.
Figures: ``<out>/engine_variants.json``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from engine_stride import engine_overrides, fgnet_foreground  # noqa: E402  (benchmarks/ is first on sys.path)
from full_frame import FGNET, crowded_frame  # noqa: E402

from inpaintaff.data.normalize import percentile_normalize  # noqa: E402
from inpaintaff.igm.split import EngineConfig, SplitEngine, mix_seed  # noqa: E402
from inpaintaff.modules.net_inpainter import load_net_inpainter  # noqa: E402
from inpaintaff.tasks.inpaintaff.patches import patch_counts, patch_grid  # noqa: E402


def parse_variant(text: str) -> tuple[str, Path, dict]:
    """``name=ckpt [key=value ...]`` -> (name, checkpoint, engine overrides and ``compile``)."""
    name, _, rest = text.partition("=")
    ckpt, *pairs = rest.split()
    compiled = [p.partition("=")[2] for p in pairs if p.startswith("compile=")]
    overrides = engine_overrides([p for p in pairs if not p.startswith("compile=")], f"--variant {name}")
    if compiled:
        overrides["compile"] = compiled[-1]
    path = Path(ckpt) if Path(ckpt).is_absolute() else ROOT / ckpt
    if not path.is_file():
        sys.exit(f"--variant {name}: checkpoint {path} not found")
    return name, path, overrides


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--variant", action="append", required=True, help="name=checkpoint [engine key=value ...]")
    ap.add_argument("--sample", type=int, default=24, help="patches of the mosaic that every variant splits")
    ap.add_argument("--reps", type=int, default=2)
    ap.add_argument("--stride", type=int, default=16, help="for the whole-mosaic projection")
    ap.add_argument("--fg-threshold", type=float, default=0.3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", default="runs/engine_variants")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    variants = [parse_variant(v) for v in args.variant]
    image = percentile_normalize(crowded_frame().astype(np.float32))
    fg = fgnet_foreground(FGNET, image, args.fg_threshold)
    grid = patch_grid(image.shape, 64, args.stride)
    counts = patch_counts(fg, grid, 64)
    kept = [p for p, c in zip(grid, counts) if c > 0]
    rng = np.random.default_rng(0)
    pos = [kept[i] for i in sorted(rng.choice(len(kept), min(args.sample, len(kept)), replace=False))]
    patches = torch.from_numpy(np.stack([image[y : y + 64, x : x + 64] for y, x in pos]))[:, None].float()
    fg_patches = np.stack([fg[y : y + 64, x : x + 64] for y, x in pos])
    seeds = [mix_seed(12345, y, x) for y, x in pos]
    engines = {}
    for name, ckpt, over in variants:
        settings = {k: v for k, v in over.items() if k != "compile"}
        engines[name] = SplitEngine(load_net_inpainter(str(ckpt), compile=over.get("compile", False)),
                                    EngineConfig(**settings))
        if over.get("compile"):
            with torch.inference_mode():
                engines[name].run(patches[:2], seeds[:2], foreground=fg_patches[:2])  # compiles
    times: dict[str, list[float]] = {name: [] for name in engines}
    results = {}
    with torch.inference_mode():
        for _ in range(args.reps):
            for name, engine in engines.items():
                t0 = time.perf_counter()
                results[name] = engine.run(patches, seeds, foreground=fg_patches)
                times[name].append(time.perf_counter() - t0)
    first = variants[0][0]
    on_fg = torch.from_numpy(fg_patches)
    print(f"crowded mosaic: {len(grid)} patches at stride {args.stride}, {len(kept)} hold FGNET foreground "
          f"(> {args.fg_threshold:g}); {len(pos)} of them split by every variant, {args.threads} threads, "
          f"fastest of {args.reps} turns:")
    rows = {}
    for name, ckpt, over in variants:
        res, t = results[name], min(times[name])
        same = (res.leaf_ids == results[first].leaf_ids)[on_fg].float().mean()
        rows[name] = {"ckpt": str(ckpt.relative_to(ROOT) if ckpt.is_relative_to(ROOT) else ckpt), "engine": over,
                      "s_per_patch": t / len(pos), "images_per_patch": res.conditionals / len(pos),
                      "ms_per_image": 1000 * t / max(res.conditionals, 1), "speedup": min(times[first]) / t,
                      "leaf_agreement_on_fg": float(same),
                      "mosaic_minutes_all_patches": t / len(pos) * len(grid) / 60,
                      "mosaic_minutes_fg_patches": t / len(pos) * len(kept) / 60,
                      "ends": {k: int(v.sum()) for k, v in res.stats.items()}}
        r = rows[name]
        print(f"  {name:22s} {r['s_per_patch']:5.2f} s/patch {r['images_per_patch']:5.0f} images/patch "
              f"{r['ms_per_image']:5.2f} ms/image {r['speedup']:5.2f}x; leaves as {first}'s on "
              f"{r['leaf_agreement_on_fg']:.1%} of foreground pixels; engine on the mosaic "
              f"{r['mosaic_minutes_fg_patches']:.1f} min (FGNET-skipped patches; all: "
              f"{r['mosaic_minutes_all_patches']:.1f})", flush=True)
    out = ROOT / args.out
    out.mkdir(parents=True, exist_ok=True)
    report = {"stride": args.stride, "patches": len(grid), "fg_patches": len(kept), "sample": len(pos),
              "threads": args.threads, "fg_threshold": args.fg_threshold, "rows": rows}
    (out / "engine_variants.json").write_text(json.dumps(report, indent=2))
    print(f"figures in {out / 'engine_variants.json'}")


if __name__ == "__main__":
    main()
