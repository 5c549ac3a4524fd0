"""Which shipped model the folder command should take by default: each ``--models`` name as
``inpaintaff segment --model NAME`` uses it (``Segmenter.pretrained``: its student, its own FGNET,
the α, fragment size and FGNET threshold stored beside them, the nucleus size estimated per image),
on two kinds of images none of them chose anything on:

- ``dsb_test``: the 108 DSB 2018 test images (``conf/data/dsb2018.yaml``), every nucleus labeled;
- ``dsb_val``: its 54 validation images, where the default ``min_area_fraction`` was chosen (not in the
  default sets);
- ``hela_test``: the shared HeLa test frames 014, 021, 039, 077 (sparse GT: predictions touching no
  GT nucleus are not counted as false);
- ``hela_full``: the fully labeled HeLa frames 013 and 052 (HeLa's FGNET and tuned student trained on
  a crop of 052, so it flatters ``hela`` and ``hela_tuned``; the DSB models saw neither).

Per model, ``--min-area-fractions`` value (objects under that fraction of a nucleus's area dropped; by
default none and the folder command's default, side by side) and image set: pooled SEG, detection
accuracy at IoU 0.5, objects per GT nucleus (fully labeled sets only) and seconds per image. Writes
``results.json`` (per image too) and ``table.md`` into --out and prints the table. ``--figure STEM ...``
also draws those DSB images segmented by the default model with each fraction side by side
(``specks_<stem>.png``).

    PYTHONPATH=. .venv/bin/python benchmarks/folder_default.py [--models hela hela_tuned dsb] \
        [--sets dsb_test hela_test hela_full] [--min-area-fractions 0 0.075] [--limit N] \
        [--figure df5cdd0ebe1bdf8d] [--out runs/bench_folder_default]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
from omegaconf import OmegaConf

from inpaintaff.utils.resolvers import shared_data_dir

ROOT = Path(__file__).resolve().parents[1]
SHARED = shared_data_dir()
HELA = SHARED / "Fluo-N2DL-HeLa" / "01"
SETS = {"dsb_test": False, "dsb_val": False, "hela_test": True, "hela_full": False}  # name -> sparse GT
DEFAULT_SETS = ("dsb_test", "hela_test", "hela_full")
HELA_FRAMES = {"hela_test": (14, 21, 39, 77), "hela_full": (13, 52)}


def image_pairs(name: str, limit: int) -> list[tuple[str, Path, Path]]:
    """(name, image, mask) of one image set."""
    if name in ("dsb_test", "dsb_val"):
        conf = OmegaConf.load(ROOT / "inpaintaff" / "conf" / "data" / "dsb2018.yaml")
        stems = sorted(conf.splits[name.removeprefix("dsb_")])
        pairs = [(s, SHARED / "dsb2018" / "images" / f"{s}.tif", SHARED / "dsb2018" / "masks" / f"{s}.tif")
                 for s in stems]
    else:
        pairs = [(f"t{f:03d}", HELA / f"t{f:03d}.tif", HELA.parent / "01_GT" / "SEG" / f"man_seg{f:03d}.tif")
                 for f in HELA_FRAMES[name]]
    for _, image, mask in pairs:
        for path in (image, mask):
            if not path.is_file():
                raise FileNotFoundError(f"{path}: not found (set INPAINTAFF_SHARED_DATA to the shared data)")
    return pairs[:limit] if limit else pairs


def measure(model: str, set_name: str, pairs: list[tuple[str, Path, Path]], min_area_fraction: float) -> dict:
    """One model on one image set: pooled scores and per-image rows."""
    from inpaintaff import Segmenter
    from inpaintaff.io.folder import read_channel, read_mask
    from inpaintaff.metrics.ctc import pool_seg, seg_from_overlap
    from inpaintaff.metrics.detection import detection_from_overlap, pool_detection
    from inpaintaff.metrics.overlap import overlap

    sparse = SETS[set_name]
    seg = Segmenter.pretrained(model, min_area_fraction=min_area_fraction)
    segs, dets, rows = [], [], []
    for name, image_path, mask_path in pairs:
        image = read_channel(image_path)
        gt = read_mask(mask_path, image.shape)
        t0 = time.perf_counter()
        pred = seg(image)
        seconds = time.perf_counter() - t0
        ov = overlap(gt, pred)
        s, d = seg_from_overlap(ov), detection_from_overlap(ov, (0.5,), sparse_gt=sparse)
        segs.append(s)
        dets.append(d)
        rows.append({"image": name, "seg": s.seg, "n_gt": s.n_gt, "n_pred": int(ov.pred_ids.size),
                     "accuracy_50": float(d.accuracy[0]), "seconds": seconds})
    s, d = pool_seg(segs), pool_detection(dets)
    n_pred = sum(r["n_pred"] for r in rows)
    return {"model": model, "min_area_fraction": min_area_fraction, "set": set_name, "seg": s.seg,
            "accuracy_50": float(d.accuracy[0]), "n_gt": s.n_gt,
            "objects_per_gt": None if sparse else n_pred / max(1, s.n_gt),
            "seconds_per_image": float(np.mean([r["seconds"] for r in rows])), "images": rows}


def figure(stem: str, fractions: list[float], out: Path) -> Path:
    """One DSB image segmented by the default model with each fraction, side by side against its GT."""
    from inpaintaff import Segmenter
    from inpaintaff.data.normalize import percentile_normalize
    from inpaintaff.io.folder import read_channel, read_mask
    from inpaintaff.segmenter import DEFAULT_MODEL
    from inpaintaff.viz.overlays import side_by_side

    image = read_channel(SHARED / "dsb2018" / "images" / f"{stem}.tif")
    gt = read_mask(SHARED / "dsb2018" / "masks" / f"{stem}.tif", image.shape)
    panels = []
    for fraction in fractions:
        labels = Segmenter.pretrained(DEFAULT_MODEL, min_area_fraction=fraction)(image)
        panels.append((f"min_area_fraction {fraction:g}: {labels.max()} objects", labels))
    return side_by_side(out / f"specks_{stem}.png", percentile_normalize(image, 1.0, 99.8), gt, panels,
                        f"DSB {stem}: {int(gt.max())} nuclei, --model {DEFAULT_MODEL}")


def table(results: list[dict]) -> str:
    lines = ["| model | min_area_fraction | images | GT nuclei | SEG | accuracy at IoU 0.5 | objects per GT nucleus "
             "| s / image |", "|---|---|---|---|---|---|---|---|"]
    for r in results:
        ratio = "—" if r["objects_per_gt"] is None else f"{r['objects_per_gt']:.2f}"
        lines.append(f"| {r['model']} | {r['min_area_fraction']:g} | {r['set']} ({len(r['images'])}) | {r['n_gt']} | "
                     f"{r['seg']:.3f} | {r['accuracy_50']:.3f} | {ratio} | {r['seconds_per_image']:.2f} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", nargs="+", default=["hela", "hela_tuned", "dsb"])
    parser.add_argument("--sets", nargs="+", choices=list(SETS), default=list(DEFAULT_SETS))
    parser.add_argument("--min-area-fractions", nargs="+", type=float, default=None,
                        help="objects under this fraction of a nucleus's area dropped (default: 0 and the "
                             "folder command's default)")
    parser.add_argument("--limit", type=int, default=0, help="only the first N images of each set")
    parser.add_argument("--figure", nargs="*", default=[], help="DSB image stems drawn with each fraction")
    parser.add_argument("--out", type=Path, default=ROOT / "runs" / "bench_folder_default")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    from inpaintaff.segmenter import DEFAULT_MIN_AREA_FRACTION

    fractions = args.min_area_fractions or [0.0, DEFAULT_MIN_AREA_FRACTION]
    for stem in args.figure:
        print(figure(stem, fractions, args.out), flush=True)
    results = []
    for set_name in args.sets:
        pairs = image_pairs(set_name, args.limit)
        for model in args.models:
            for fraction in fractions:
                results.append(measure(model, set_name, pairs, fraction))
                r = results[-1]
                print(f"{model} (min_area_fraction {fraction:g}) on {set_name}: SEG {r['seg']:.3f}, "
                      f"accuracy {r['accuracy_50']:.3f}", flush=True)
    tmp = args.out / "results.json.tmp"
    tmp.write_text(json.dumps(results, indent=1))
    tmp.replace(args.out / "results.json")
    (args.out / "table.md").write_text(table(results) + "\n")
    print(table(results))


if __name__ == "__main__":
    main()
