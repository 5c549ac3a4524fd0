"""Speed of the IGM split engine: batched against faithful (the paper's one region at a time).

    .venv/bin/python benchmarks/igm_engine.py [--ckpt checkpoints/hela_inpaint_cpu.ckpt] [--crop 448 64 128 128]

On a crop of a shared HeLa frame, with the trained inpainting checkpoint (or, if absent, a freshly
initialised net of the same size, said so), prints for each mode: forward passes and inpainted
images per patch, patches/s, s per megapixel of image, peak memory, and the batched/faithful
ratio measured in the same run; then a projection for a full 700 x 1100 frame with the paper-size
net on one GPU from the measured per-patch counts and a FLOP count of that net (assumptions
printed). Figures go to stdout (and --json).
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from inpaintaff.data.normalize import percentile_normalize  # noqa: E402
from inpaintaff.igm.inpainters import GaussianInpainter, NetInpainter  # noqa: E402
from inpaintaff.igm.split import SplitEngine, mix_seed  # noqa: E402
from inpaintaff.io.ctc import raw_path, read_image  # noqa: E402
from inpaintaff.modules.net_inpainter import load_net_inpainter  # noqa: E402
from inpaintaff.tasks.inpaintaff.patches import patch_grid  # noqa: E402
from inpaintaff.utils.resolvers import shared_data_dir  # noqa: E402

SHARED = shared_data_dir()


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def load_patches(args) -> tuple[torch.Tensor, list[int], float]:
    path = raw_path(SHARED, "Fluo-N2DL-HeLa", "01", args.frame)
    img = percentile_normalize(read_image(path), source=path)
    y0, x0, h, w = args.crop
    crop = img[y0 : y0 + h, x0 : x0 + w]
    pos = patch_grid((h, w), args.patch, args.stride)
    patches = np.stack([crop[y : y + args.patch, x : x + args.patch] for y, x in pos])
    seeds = [mix_seed(0, 1, args.frame, y, x) for y, x in pos]
    return torch.from_numpy(patches)[:, None].contiguous(), seeds, h * w / 1e6


def build_inpainter(args):
    if args.inpainter == "gaussian":
        return GaussianInpainter(4.0), "analytic Gaussian inpainter (sigma 4)"
    ckpt = Path(args.ckpt)
    if ckpt.is_file():
        return load_net_inpainter(ckpt), f"trained checkpoint {ckpt}"
    from inpaintaff.modules.inpainting import InpaintingModule

    m = InpaintingModule(widths=[32, 64, 128, 128], kernel_sizes=[7, 5, 5, 3], feature_extractor="none")
    return NetInpainter(m), f"NO CHECKPOINT at {ckpt}: a freshly initialised net of the CPU size (widths 32-128)"


def run_mode(engine: SplitEngine, images: torch.Tensor, seeds: list[int]) -> dict:
    t0, c0 = time.perf_counter(), time.process_time()
    res = engine.run(images, seeds)
    dt, cpu = time.perf_counter() - t0, time.process_time() - c0
    n = images.shape[0]
    s = {k: float(v.sum()) / n for k, v in res.stats.items()}
    return {"seconds": dt, "cpu_seconds": cpu, "patches": n, "patches_per_s": n / dt, "cpu_s_per_patch": cpu / n,
            "forward_passes_per_patch": res.forward_passes / n, "images_per_patch": res.conditionals / n,
            "images_per_pass": res.conditionals / max(res.forward_passes, 1),
            **{f"{k}_per_patch": v for k, v in s.items()},
            "leaf_ids": res.leaf_ids, "peak_rss_mb": peak_rss_mb()}


def paper_net_flops(patch: int) -> float:
    """FLOPs of one forward pass of the paper-size partial-conv U-Net on one patch."""
    from torch.utils.flop_counter import FlopCounterMode

    from inpaintaff.nets.pconv_unet import PConvUNet

    net = PConvUNet(1, [64, 128, 256, 512, 512], None, True).eval()
    x = torch.rand(1, 1, patch, patch)
    with torch.inference_mode(), FlopCounterMode(display=False) as fc:
        net(x, (x > 0.5).float())
    return float(fc.get_total_flops())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ckpt", default=str(ROOT / "checkpoints" / "hela_inpaint_cpu.ckpt"))
    ap.add_argument("--inpainter", choices=["net", "gaussian"], default="net")
    ap.add_argument("--frame", type=int, default=13)
    ap.add_argument("--crop", type=int, nargs=4, default=[448, 64, 128, 128], metavar=("Y0", "X0", "H", "W"))
    ap.add_argument("--patch", type=int, default=64)
    ap.add_argument("--stride", type=int, default=32)
    ap.add_argument("--iterations", type=int, default=20)
    ap.add_argument("--d0", type=int, default=8)
    ap.add_argument("--min-region", type=int, default=40)
    ap.add_argument("--max-depth", type=int, default=8)
    ap.add_argument("--max-regions", type=int, default=256)
    ap.add_argument("--chunk", type=int, default=None, help="images per inpainter call within a pass")
    ap.add_argument("--faithful-patches", type=int, default=2, help="patches run in faithful mode (slow)")
    ap.add_argument("--threads", type=int, default=1,
                    help="torch CPU threads (on a shared CPU, more threads spin-wait on small tensors)")
    ap.add_argument("--stop-rule", choices=["contrast", "random_split"], default=None,
                    help="also run the batched engine with this evidence rule (an extra row)")
    ap.add_argument("--stop-threshold", type=float, default=0.3)
    ap.add_argument("--json", default=None)
    # Projection assumptions (one GPU).
    ap.add_argument("--gpu-tflops", type=float, default=200.0, help="sustained conv throughput, TFLOP/s")
    ap.add_argument("--gpu-pass-latency-ms", type=float, default=3.0, help="least time of one forward pass")
    ap.add_argument("--gpu-images-per-pass", type=int, default=512, help="images that fill the GPU in one pass")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    if not (SHARED / "Fluo-N2DL-HeLa").is_dir():
        sys.exit(f"shared HeLa data not found at {SHARED}")

    images, seeds, crop_mpx = load_patches(args)
    inpainter, desc = build_inpainter(args)
    common = dict(iterations=args.iterations, d0=args.d0, min_region=args.min_region, max_depth=args.max_depth,
                  max_regions=args.max_regions, chunk=args.chunk)
    n_f = min(args.faithful_patches, len(seeds))
    print(f"inpainter: {desc}")
    print(f"crop {args.crop} of t{args.frame:03d}: {len(seeds)} patches of {args.patch}^2, stride {args.stride}; "
          f"T={args.iterations} d0={args.d0} min_region={args.min_region} max_depth={args.max_depth}; "
          f"{torch.get_num_threads()} CPU threads")

    out = {}
    out["batched"] = run_mode(SplitEngine(inpainter, mode="batched", early_stop=True, **common), images, seeds)
    out["batched_no_early_stop"] = run_mode(SplitEngine(inpainter, mode="batched", early_stop=False, **common),
                                            images, seeds)
    if args.stop_rule:
        out[f"batched_{args.stop_rule}"] = run_mode(
            SplitEngine(inpainter, mode="batched", stop_rule=args.stop_rule, stop_threshold=args.stop_threshold,
                        **common), images, seeds)
    sub = images[:n_f], seeds[:n_f]
    out["batched_subset"] = run_mode(SplitEngine(inpainter, mode="batched", early_stop=True, **common), *sub)
    out["batched_no_early_stop_subset"] = run_mode(
        SplitEngine(inpainter, mode="batched", early_stop=False, **common), *sub)
    out["faithful_subset"] = run_mode(SplitEngine(inpainter, mode="faithful", **common), *sub)
    same = torch.equal(out["faithful_subset"]["leaf_ids"], out["batched_no_early_stop_subset"]["leaf_ids"])

    cols = ["patches", "seconds", "cpu_s_per_patch", "patches_per_s", "forward_passes_per_patch", "images_per_patch",
            "images_per_pass", "splits_per_patch", "leaves_per_patch", "emptied_per_patch", "min_size_per_patch",
            "max_depth_per_patch", "peak_rss_mb"]
    print("\n" + "mode".ljust(30) + "".join(c.replace("_per_patch", "/p").replace("_per_", "/")[:14].rjust(15)
                                          for c in cols))
    for name, r in out.items():
        print(name.ljust(30) + "".join(f"{r[c]:15.3f}" if isinstance(r[c], float) else f"{r[c]:15d}" for c in cols))
    b_all = out["batched"]
    mpx_s = b_all["seconds"] / crop_mpx
    print(f"\nbatched, whole crop: {b_all['patches_per_s']:.3f} patches/s, {mpx_s:.1f} s per megapixel "
          f"(stride {args.stride})")
    fa, bs, bn = out["faithful_subset"], out["batched_subset"], out["batched_no_early_stop_subset"]
    cpu_ratio_b = fa["cpu_s_per_patch"] / bs["cpu_s_per_patch"]
    cpu_ratio_n = fa["cpu_s_per_patch"] / bn["cpu_s_per_patch"]
    print(f"same {n_f} patches: batched (early stop) {bs['patches_per_s'] / fa['patches_per_s']:.2f}x the patches/s "
          f"of faithful ({cpu_ratio_b:.2f}x in CPU time); batched without early "
          f"stop {bn['patches_per_s'] / fa['patches_per_s']:.2f}x ({cpu_ratio_n:.2f}x); "
          f"forward passes per patch {fa['forward_passes_per_patch']:.0f} (faithful) vs "
          f"{bs['forward_passes_per_patch']:.1f} (batched)")
    print(f"batched without early stop gives the faithful leaves: {same}")
    print(f"all {len(seeds)} patches in one batch: {b_all['forward_passes_per_patch']:.1f} forward passes per patch, "
          f"{b_all['images_per_pass']:.1f} images per pass (passes per patch fall as the batch grows; on CPU the "
          f"cost follows images, on a GPU it follows passes until a pass is full)")

    # Projection: full frame, paper-size net, one GPU.
    flops = paper_net_flops(args.patch)
    n_frame = len(patch_grid((700, 1100), args.patch, 16))
    img_pp = b_all["images_per_patch"]
    imgs = img_pp * n_frame
    t_compute = imgs * flops / (args.gpu_tflops * 1e12)
    passes_batched = imgs / args.gpu_images_per_pass
    t_batched = max(t_compute, passes_batched * args.gpu_pass_latency_ms / 1e3)
    f_pp = fa["forward_passes_per_patch"]
    t_faithful = n_frame * f_pp * max(args.gpu_pass_latency_ms / 1e3, 2 * flops / (args.gpu_tflops * 1e12))
    print(f"\nprojection, 700x1100 frame, {args.patch}^2 patches at stride 16 ({n_frame} patches), paper-size net "
          f"({flops / 1e9:.2f} GFLOP per {args.patch}^2 image), one GPU at {args.gpu_tflops:.0f} TFLOP/s sustained, "
          f"{args.gpu_pass_latency_ms:.1f} ms least per pass, {args.gpu_images_per_pass} images fill a pass:")
    print(f"  batched: {img_pp:.0f} images/patch (measured) -> {imgs / 1e6:.2f} M images, "
          f"{imgs * flops / 1e15:.2f} PFLOP -> about {t_batched / 60:.1f} min")
    print(f"  faithful: {f_pp:.0f} passes of 2 images per patch (measured) -> about {t_faithful / 3600:.1f} h "
          f"(latency-bound); the paper reports 48 h")
    if args.json:
        Path(args.json).write_text(json.dumps({k: {c: v for c, v in r.items() if c != "leaf_ids"}
                                               for k, r in out.items()}, indent=2))


if __name__ == "__main__":
    main()
