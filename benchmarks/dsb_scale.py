"""SEG by nucleus size on the DSB 2018 folder: the HeLa DISTILL student with and without resizing
to the model's nucleus size, against connected components (CC) of the same foreground.

Images are grouped by their true median equivalent diameter relative to the model's (25 px):
small < 0.7x, hela-like 0.7-1.4x, large > 1.4x; "large, rarely touching" are the large images
where at most 10 % of the GT nuclei touch another (share a TRUEFG component). Per image, rows for:

- ``cc_truefg``: CC of TRUEFG at the image's own scale;
- ``distill_truefg_noscale``: ``Segmenter.pretrained("hela", foreground_source="truefg", scale=False)``;
- ``distill_truefg_auto``: the same with scaling, diameter estimated from TRUEFG;
- ``distill_truefg_given``: scaling with the true median diameter given;
- ``cc_fgnet_auto``: CC of the FGNET foreground that ``distill_fgnet_auto`` used (FGNET run at the
  model's scale, ``res.foreground``), resized back (nearest) to the image's shape: the same
  foreground as the student's;
- ``distill_fgnet_auto``: ``Segmenter.pretrained("hela", foreground_source="fgnet")`` (scaling,
  diameter estimated from FGNET at the image's scale);
- ``cc_fgnet_noscale`` / ``distill_fgnet_noscale``: FGNET at the image's own scale, without resizing.

SEG is pooled per group (sum of Jaccard scores / number of GT nuclei).

    PYTHONPATH=. .venv/bin/python benchmarks/dsb_scale.py [--data ../shared/data/dsb2018] \
        [--out runs/bench_dsb_scale] [--limit N] [--workers 1|2] [--split all|val|test] \
        [--set tolerance=0.2 --set min_size=50] [--methods cc_truefg distill_truefg_auto ...]

``--split val`` takes every 5th image sorted by name (from the first), ``test`` the rest: choose a
setting on val, report it on test. ``--set key=value`` goes to ``Segmenter.from_checkpoints`` for
every student run (``alpha``, ``min_size``, ``tolerance``, ``min_objects``, ...).

Writes ``per_image.csv`` (one row per image and method), ``table.md`` (pooled SEG by group),
``seg_by_group.png`` and ``run.json`` (settings, seconds) into --out, and prints the table.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import time
from multiprocessing import get_context
from pathlib import Path

import numpy as np

from inpaintaff.utils.resolvers import shared_data_dir

SHARED = shared_data_dir()
HELA_D = 25.0
TOUCH_MAX = 0.10  # "rarely touching": at most this fraction of GT nuclei touch another
GROUPS = ("small", "hela-like", "large", "large, rarely touching", "all")
METHODS = ("cc_truefg", "distill_truefg_noscale", "distill_truefg_auto", "distill_truefg_given",
           "cc_fgnet_noscale", "distill_fgnet_noscale", "cc_fgnet_auto", "distill_fgnet_auto")
LABELS = {
    "cc_truefg": "CC on TRUEFG",
    "distill_truefg_noscale": "DISTILL + TRUEFG, no scaling",
    "distill_truefg_auto": "DISTILL + TRUEFG, automatic scale",
    "distill_truefg_given": "DISTILL + TRUEFG, true diameter given",
    "cc_fgnet_noscale": "CC on FGNET (image scale)",
    "distill_fgnet_noscale": "DISTILL + FGNET, no scaling",
    "cc_fgnet_auto": "CC on FGNET (model scale, as the student's)",
    "distill_fgnet_auto": "DISTILL + FGNET, automatic scale",
}
# Student rows and the CC row on the same foreground.
PAIRS = (("distill_truefg_noscale", "cc_truefg"), ("distill_truefg_auto", "cc_truefg"),
         ("distill_truefg_given", "cc_truefg"), ("distill_fgnet_noscale", "cc_fgnet_noscale"),
         ("distill_fgnet_auto", "cc_fgnet_auto"))


def group_of(d: float) -> str:
    """Size group of a true median diameter relative to HeLa's 25 px."""
    return "small" if d < 0.7 * HELA_D else ("large" if d > 1.4 * HELA_D else "hela-like")


def touching_fraction(gt: np.ndarray) -> float:
    """Fraction of GT nuclei that share a TRUEFG connected component with another nucleus."""
    from inpaintaff.segment.baselines import connected_components
    from inpaintaff.segment.foreground import true_foreground

    cc = connected_components(true_foreground(gt))
    m = gt > 0
    pairs = np.unique(np.stack([gt[m], cc[m]]), axis=1)
    per_comp = np.bincount(pairs[1])
    n = pairs.shape[1]
    return float((per_comp[pairs[1]] > 1).sum() / n) if n else 0.0


# ---------------------------------------------------------------- worker side

_W: dict = {}


def _parse_value(v: str):
    for cast in (int, float):
        try:
            return cast(v)
        except ValueError:
            pass
    return {"true": True, "false": False}.get(v.lower(), v)


def _init(methods: tuple[str, ...], overrides: dict, threads: int, model: str = "hela") -> None:
    import torch

    from inpaintaff import Segmenter

    torch.set_num_threads(threads)
    need = {m.split("_", 1)[1].rsplit("_", 1)[0] if m.startswith("distill") else None for m in methods}
    if "cc_fgnet_auto" in methods:
        need.add("fgnet")
    if "cc_fgnet_noscale" in methods:
        need.add("fgnet")
    # every object kept, as the README's figures were measured (--set min_area_fraction=0.075: the folder command's)
    overrides = {"min_area_fraction": 0.0, **overrides}
    segs = {}
    for fg in ("truefg", "fgnet"):
        if fg in need:
            segs[(fg, True)] = Segmenter.pretrained(model, foreground_source=fg, scale=True, **overrides)
            segs[(fg, False)] = Segmenter.pretrained(model, foreground_source=fg, scale=False, **overrides)
    _W.update(methods=methods, segs=segs)


def _score(gt: np.ndarray, pred: np.ndarray) -> dict:
    from inpaintaff.metrics.ctc import seg_from_overlap
    from inpaintaff.metrics.overlap import overlap
    from inpaintaff.viz.overlays import find_errors

    s = seg_from_overlap(overlap(gt, pred))
    e = find_errors(gt, pred)
    return {"seg": s.seg, "n_gt": s.n_gt, "score_sum": s.score_sum, "n_matched": s.n_matched,
            "n_pred": int(len(np.unique(pred)) - (1 if (pred == 0).any() else 0)),
            "merges": int(e.merges.size), "splits": int(e.splits.size), "misses": int(e.misses.size)}


def segment_image(image: np.ndarray, gt: np.ndarray, methods, segs,
                  true_d: float) -> dict[str, tuple[np.ndarray, dict]]:
    """Labels and scale info of every method on one image: {method: (labels, info)}."""
    from inpaintaff.segment.baselines import connected_components
    from inpaintaff.segment.foreground import true_foreground
    from inpaintaff.segment.scale import labels_to_shape

    out: dict[str, tuple[np.ndarray, dict]] = {}
    none = {"diameter": float("nan"), "diameter_source": "", "scale_factor": 1.0, "raw_scale_factor": 1.0,
            "diameter_objects": 0, "diameter_uncertain": False, "model_h": image.shape[0], "model_w": image.shape[1]}
    if "cc_truefg" in methods:
        t0 = time.perf_counter()
        lab = connected_components(true_foreground(gt))
        out["cc_truefg"] = (lab, {**none, "seconds": time.perf_counter() - t0})
    runs = {"distill_truefg_noscale": ("truefg", False, None), "distill_truefg_auto": ("truefg", True, None),
            "distill_truefg_given": ("truefg", True, true_d), "distill_fgnet_noscale": ("fgnet", False, None),
            "distill_fgnet_auto": ("fgnet", True, None)}
    want = set(methods)
    if "cc_fgnet_auto" in want:
        want.add("distill_fgnet_auto")
    if "cc_fgnet_noscale" in want:
        want.add("distill_fgnet_noscale")
    for m, (fg, scale, diameter) in runs.items():
        if m not in want:
            continue
        t0 = time.perf_counter()
        res = segs[(fg, scale)].segment(image, diameter=diameter, labels=gt if fg == "truefg" else None)
        sec = time.perf_counter() - t0
        info = {**res.scale.as_row(), "model_h": res.model_shape[0], "model_w": res.model_shape[1], "seconds": sec}
        if m in methods:
            out[m] = (res.labels, info)
        cc_name = {"distill_fgnet_auto": "cc_fgnet_auto", "distill_fgnet_noscale": "cc_fgnet_noscale"}.get(m)
        if cc_name in methods:
            # CC on the very foreground the student used (model scale), back at the image's shape.
            t0 = time.perf_counter()
            lab = connected_components(labels_to_shape(res.foreground, image.shape))
            out[cc_name] = (lab, {**info, "seconds": time.perf_counter() - t0})
    return out


def _one(args: tuple[str, str, str]) -> list[dict]:
    from inpaintaff.io.folder import read_channel, read_mask
    from inpaintaff.segment.diameter import median_diameter

    name, img_path, mask_path = args
    t0 = time.perf_counter()
    image = read_channel(img_path)
    gt = read_mask(mask_path, image.shape)
    true_d = median_diameter(gt)
    base = {"image": name, "h": image.shape[0], "w": image.shape[1], "true_diameter": true_d,
            "group": group_of(true_d), "touching": touching_fraction(gt)}
    rows = []
    for m, (lab, info) in segment_image(image, gt, _W["methods"], _W["segs"], true_d).items():
        rows.append({**base, "method": m, **_score(gt, lab), **info})
    wall = time.perf_counter() - t0
    for r in rows:
        r["image_seconds"] = wall
    return rows


# ---------------------------------------------------------------- reporting

def in_group(row: dict, g: str) -> bool:
    if g == "all":
        return True
    if g == "large, rarely touching":
        return row["group"] == "large" and float(row["touching"]) <= TOUCH_MAX
    return row["group"] == g


def pooled(rows: list[dict]) -> dict[tuple[str, str], float]:
    """Pooled SEG per (method, group)."""
    out = {}
    for m in {r["method"] for r in rows}:
        for g in GROUPS:
            sel = [r for r in rows if r["method"] == m and in_group(r, g)]
            n = sum(int(r["n_gt"]) for r in sel)
            out[(m, g)] = sum(float(r["score_sum"]) for r in sel) / n if n else float("nan")
    return out


def table(rows: list[dict]) -> str:
    """Markdown: pooled SEG per method (rows) and group (columns), then student − CC on the same foreground."""
    methods = [m for m in METHODS if any(r["method"] == m for r in rows)]
    one = [r for r in rows if r["method"] == methods[0]]
    counts = {g: (sum(in_group(r, g) for r in one), sum(int(r["n_gt"]) for r in one if in_group(r, g)))
              for g in GROUPS}
    seg = pooled(rows)
    head = "| method | " + " | ".join(f"{g} ({counts[g][0]} img, {counts[g][1]} nuclei)" for g in GROUPS) + " |"
    lines = [head, "|---" * (len(GROUPS) + 1) + "|"]
    for m in methods:
        lines.append(f"| {LABELS[m]} | " + " | ".join(f"{seg[(m, g)]:.3f}" for g in GROUPS) + " |")
    diffs = [(a, b) for a, b in PAIRS if a in methods and b in methods]
    if diffs:
        lines += ["", "| student − CC, same foreground | " + " | ".join(GROUPS) + " |",
                  "|---" * (len(GROUPS) + 1) + "|"]
        for a, b in diffs:
            lines.append(f"| {LABELS[a]} − {LABELS[b]} | "
                         + " | ".join(f"{seg[(a, g)] - seg[(b, g)]:+.3f}" for g in GROUPS) + " |")
    return "\n".join(lines)


def plot(rows: list[dict], path: Path) -> None:
    from inpaintaff.viz.figures import plt, save_figure

    methods = [m for m in METHODS if any(r["method"] == m for r in rows)]
    seg = pooled(rows)
    fig, ax = plt.subplots(figsize=(11, 4.5))
    width = 0.8 / len(methods)
    x = np.arange(len(GROUPS))
    for i, m in enumerate(methods):
        ax.bar(x + (i - (len(methods) - 1) / 2) * width, [seg[(m, g)] for g in GROUPS], width, label=LABELS[m])
    ax.set_xticks(x, GROUPS)
    ax.set_ylabel("SEG (pooled)")
    ax.set_ylim(0, 1)
    ax.set_title("DSB 2018: HeLa DISTILL student vs CC, by nucleus size (model: 25 px)")
    ax.legend(fontsize=7, ncol=2, loc="lower right")
    fig.tight_layout()
    save_figure(fig, path, dpi=120)


def select(names: list[str], split: str) -> list[str]:
    if split == "all":
        return names
    if split.startswith("table_"):  # the DSB table's split (conf/data/dsb2018.yaml)
        from omegaconf import OmegaConf

        conf = Path(__file__).resolve().parents[1] / "inpaintaff" / "conf" / "data" / "dsb2018.yaml"
        return sorted(OmegaConf.load(conf).splits[split.split("_", 1)[1]])
    val = set(names[::5])
    return [n for n in names if (n in val) == (split == "val")]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=SHARED / "dsb2018", help="folder with images/ and masks/")
    parser.add_argument("--out", type=Path, default=Path("runs/bench_dsb_scale"))
    parser.add_argument("--limit", type=int, default=0, help="only the first N images (after --split)")
    parser.add_argument("--workers", type=int, choices=(1, 2), default=1,
                        help="processes (1: one process of 2 torch threads; 2: two of one thread)")
    parser.add_argument("--split", choices=("all", "val", "test", "table_val", "table_test"), default="all",
                        help="val: every 5th image sorted by name; test: the others; table_*: the DSB table's "
                             "splits (conf/data/dsb2018.yaml)")
    parser.add_argument("--model", default="hela", help="Segmenter.pretrained name: hela (default) or dsb")
    parser.add_argument("--methods", nargs="+", choices=METHODS, default=list(METHODS))
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="Segmenter.from_checkpoints option for every student run (repeatable)")
    args = parser.parse_args()

    overrides = {k: _parse_value(v) for k, v in (s.split("=", 1) for s in args.set)}
    names = sorted(p.stem for p in (args.data / "images").glob("*.tif"))
    if not names:
        raise SystemExit(f"no images in {args.data / 'images'}")
    names = select(names, args.split)
    if args.limit:
        names = names[: args.limit]
    jobs = [(n, str(args.data / "images" / f"{n}.tif"), str(args.data / "masks" / f"{n}.tif")) for n in names]
    methods = tuple(m for m in METHODS if m in args.methods)
    threads = 2 if args.workers == 1 else 1
    args.out.mkdir(parents=True, exist_ok=True)

    t0 = time.perf_counter()
    rows: list[dict] = []
    initargs = (methods, overrides, threads, args.model)
    if args.workers == 1:
        _init(*initargs)
        results = map(_one, jobs)
    else:
        pool = get_context("spawn").Pool(args.workers, _init, initargs)
        results = pool.imap(_one, jobs, chunksize=1)
    t_start = time.perf_counter()
    for i, r in enumerate(results, 1):
        rows.extend(r)
        if i % 25 == 0 or i == len(jobs):
            print(f"[{i}/{len(jobs)}] {time.perf_counter() - t_start:.0f} s", flush=True)
    if args.workers == 2:
        pool.close()
        pool.join()
    wall = time.perf_counter() - t0
    seg_wall = time.perf_counter() - t_start

    keys = list(dict.fromkeys(k for r in rows for k in r))
    with open(args.out / "per_image.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=keys)
        writer.writeheader()
        writer.writerows(rows)
    per_method = {m: float(np.sum([r["seconds"] for r in rows if r["method"] == m])) / len(jobs) for m in methods}
    text = table(rows)
    timing = (f"{len(jobs)} images, {args.workers} worker(s): {wall:.0f} s in all, {seg_wall / len(jobs):.2f} s per "
              f"image (every method); seconds per image per method: "
              + ", ".join(f"{m} {s:.2f}" for m, s in per_method.items()))
    settings = {k: v for k, v in overrides.items()}
    (args.out / "table.md").write_text(
        f"DSB 2018 ({args.data}), model {args.model}, split {args.split}, settings {settings or 'stored'}\n\n"
        f"{text}\n\n{timing}\n")
    (args.out / "run.json").write_text(json.dumps({
        "data": str(args.data), "model": args.model, "split": args.split, "limit": args.limit, "workers": args.workers,
        "methods": methods, "overrides": overrides, "images": len(jobs), "seconds": wall,
        "seconds_per_image": seg_wall / len(jobs), "seconds_per_image_per_method": per_method,
        "cpu_count": os.cpu_count()}, indent=2))
    plot(rows, args.out / "seg_by_group.png")
    print(f"\nDSB 2018: split {args.split}, settings {settings or 'stored'}\n")
    print(text)
    print("\n" + timing)


if __name__ == "__main__":
    main()
