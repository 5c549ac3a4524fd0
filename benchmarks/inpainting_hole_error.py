"""Hole error of the trained inpainting net on held-out HeLa crops, against simple inpainters.

IGM-shaped masks (what the split engine asks: a region cut in two, one side known minus a band
of half-width d, everything else hidden). Errors on the whole hole and on the band N alone (the
pixels whose error the engine compares). Inpainters, side by side:
- net: the checkpoint's ``inpaint``;
- mean: the mean of the known pixels of the crop (per-image-mean baseline);
- gauss(σ): normalised Gaussian averaging of the known pixels (the analytic inpainter).

    .venv/bin/python benchmarks/inpainting_hole_error.py \
        --checkpoint checkpoints/hela_inpaint_cpu.ckpt --out runs/bench_inpainting

Frames default to the HeLa frames held out of training by conf/data/shared_hela.yaml.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch
from scipy import ndimage as ndi

from inpaintaff.data.masks import igm_mask
from inpaintaff.data.normalize import percentile_normalize
from inpaintaff.io import ctc
from inpaintaff.io.files import write_json
from inpaintaff.modules.inpainting import InpaintingModule
from inpaintaff.utils.resolvers import shared_data_dir
from inpaintaff.viz.inpainting import save_inpainting_png

HELD_OUT = [14, 21, 25, 39, 44, 54, 77]


def gaussian_inpaint(img: np.ndarray, known: np.ndarray, sigma: float) -> np.ndarray:
    """Normalised convolution: G*(x·k) / G*k; the known mean where no known pixel is near."""
    num = ndi.gaussian_filter(img * known, sigma, mode="constant")
    den = ndi.gaussian_filter(known.astype(np.float64), sigma, mode="constant")
    fallback = img[known > 0].mean() if known.any() else 0.0
    return np.where(den > 1e-6, num / np.maximum(den, 1e-6), fallback)


def crops(root: Path, dataset: str, seq: str, frames: list[int], size: int, n: int, rng: np.random.Generator):
    """``n`` random crops (percentile-normalised) spread evenly over ``frames``."""
    images = [percentile_normalize(ctc.read_image(ctc.raw_path(root, dataset, seq, f))) for f in frames]
    out = []
    for i in range(n):
        im = images[i % len(images)]
        y = int(rng.integers(0, im.shape[0] - size + 1))
        x = int(rng.integers(0, im.shape[1] - size + 1))
        out.append(im[y:y + size, x:x + size])
    return out


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--checkpoint", default="checkpoints/hela_inpaint_cpu.ckpt")
    p.add_argument("--root", default=str(shared_data_dir()))
    p.add_argument("--dataset", default="Fluo-N2DL-HeLa")
    p.add_argument("--seq", default="01")
    p.add_argument("--frames", type=int, nargs="+", default=HELD_OUT)
    p.add_argument("--crop", type=int, default=128)
    p.add_argument("--n-crops", type=int, default=256)
    p.add_argument("--d-range", type=int, nargs=2, default=(1, 6))
    p.add_argument("--sigmas", type=float, nargs="+", default=(2.0, 4.0, 8.0))
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="runs/bench_inpainting")
    p.add_argument("--threads", type=int, default=1)
    a = p.parse_args(argv)
    torch.set_num_threads(a.threads)
    rng = np.random.default_rng(a.seed)
    if not (Path(a.root) / a.dataset / a.seq).is_dir():
        sys.exit(f"{Path(a.root) / a.dataset / a.seq}: data not found")
    images = crops(Path(a.root), a.dataset, a.seq, list(a.frames), a.crop, a.n_crops, rng)
    masks = [igm_mask((a.crop, a.crop), rng, tuple(a.d_range)) for _ in images]
    model = InpaintingModule.load_from_checkpoint(a.checkpoint, map_location="cpu").eval()
    x = torch.from_numpy(np.stack(images)[:, None])
    k = torch.from_numpy(np.stack([m.known for m in masks])[:, None])
    t0 = time.perf_counter()
    with torch.no_grad():
        net = torch.cat([model(x[i:i + 16], k[i:i + 16]) for i in range(0, len(x), 16)]).numpy()[:, 0]
    t_net = time.perf_counter() - t0
    preds: dict[str, list[np.ndarray]] = {"net": list(net)}
    preds["mean"] = [np.full_like(im, im[m.known > 0].mean() if m.known.any() else 0.0)
                     for im, m in zip(images, masks)]
    for s in a.sigmas:
        preds[f"gauss({s:g})"] = [gaussian_inpaint(im, m.known, s) for im, m in zip(images, masks)]

    # crops with foreground in the band: what the engine works on (it skips background patches)
    fg = np.array([(im[m.band] > 0.3).mean() > 0.05 if m.band.any() else False for im, m in zip(images, masks)])
    results: dict = {"n_crops": len(images), "n_fg_crops": int(fg.sum()), "crop": a.crop,
                     "d_range": list(a.d_range), "frames": list(a.frames), "checkpoint": str(a.checkpoint),
                     "net_seconds_per_crop": t_net / len(images), "methods": {}}
    for name, pr in preds.items():
        row = {}
        for where in ("hole", "band"):
            for subset, sel in (("all", np.ones(len(images), bool)), ("fg", fg)):
                err = [(pr[i] - images[i])[(m.known == 0) if where == "hole" else m.band]
                       for i, m in enumerate(masks) if sel[i]]
                err = np.concatenate(err) if err else np.zeros(0)
                row[f"{where}_l1_{subset}"] = float(np.abs(err).mean()) if err.size else float("nan")
                row[f"{where}_mse_{subset}"] = float((err**2).mean()) if err.size else float("nan")
        results["methods"][name] = row

    keys = ["hole_l1_all", "hole_mse_all", "band_l1_all", "band_mse_all", "band_l1_fg", "band_mse_fg"]
    print(f"{len(images)} crops of {a.crop}px from frames {a.frames} ({int(fg.sum())} with foreground in the "
          f"band), IGM masks d in {tuple(a.d_range)}; net {1e3 * t_net / len(images):.1f} ms/crop")
    print(f"{'method':12s}" + "".join(f"{k:>14s}" for k in keys))
    for name, row in results["methods"].items():
        print(f"{name:12s}" + "".join(f"{row[k]:14.5f}" for k in keys))
    base = results["methods"]["mean"]
    net_row = results["methods"]["net"]
    ratios = {k: net_row[k] / base[k] for k in keys if base[k] > 0}
    results["net_over_mean"] = ratios
    print("net / mean: " + ", ".join(f"{k} {v:.3f}" for k, v in ratios.items()))
    best_gauss = min((n for n in preds if n.startswith("gauss")), key=lambda n: results["methods"][n]["band_mse_fg"])
    results["net_over_best_gauss_band_mse_fg"] = net_row["band_mse_fg"] / results["methods"][best_gauss]["band_mse_fg"]
    print(f"net / {best_gauss} (band_mse_fg): {results['net_over_best_gauss_band_mse_fg']:.3f}")

    out = Path(a.out)
    write_json(out / "inpainting_hole_error.json", results)
    show = [i for i in np.flatnonzero(fg)[:6]] or list(range(min(6, len(images))))
    save_inpainting_png(out / "inpainting_examples.png", [images[i] for i in show], [masks[i].known for i in show],
                        {n: [preds[n][i] for i in show] for n in ("net", "mean", best_gauss)},
                        bands=[masks[i].band for i in show])
    print(f"wrote {out / 'inpainting_hole_error.json'} and {out / 'inpainting_examples.png'}")
    return results


if __name__ == "__main__":
    main()
