"""Where DISTILL + FGNET loses SEG against DISTILL + TRUEFG on the shared HeLa frames.

Runs Table 1's two DISTILL rows with one FGNET (``predict.py experiment=hela_table1``; α, fragment
size and FGNET's threshold chosen on the validation frames 025/044/054; it resumes in --out), also
on the fully labeled frames 013 and 052 (the one FGNET did not train on is the fair test: sparse
frames hold only labeled nuclei in TRUEFG, so TRUEFG there also hides every unlabeled neighbour).
Then, from the same affinities and FGNET probabilities:

- **per nucleus** on every scored frame: SEG of each row, how much of the gap comes from nuclei
  that FGNET's row does not match at all (split, merged or missed) and how much from the Jaccard
  of matched ones;
- **the foreground's shape ceiling**: the mean Jaccard (0 at or below 0.5, as SEG) of each GT
  nucleus against FGNET's foreground near it (within 4 px, away from other labeled nuclei): what a
  segmentation could score if FGNET's foreground were cut exactly between nuclei;
- **segment the core, then grow into the rim**: the mutex watershed on FGNET's probability above
  ``core``, then every pixel above ``rim`` within ``reach`` px of an instance takes its label
  (``segment.scale.labels_onto_foreground``; rim parts farther away become instances of their own).
  Rim pixels outside a nucleus carry the affinities' "different object" across it and can split
  it. Chosen on the validation frames with α and the fragment size, against the plain protocol,
  and (as a ceiling no protocol can claim) the best of each on the test frames themselves;
- **segment a loose foreground, keep the segments FGNET holds**: the mutex watershed on FGNET's
  probability above a low ``loose`` threshold, so that the affinities rather than FGNET's threshold
  draw each nucleus's outline; then only segments whose mean probability reaches ``keep`` stay
  (rim slivers and background pieces go), and fragments under the size merge. Chosen on the
  validation frames with α and the fragment size, like the others;
- **each nucleus redrawn at its own brightness** (a global threshold fails because nuclei differ
  in brightness; a per-nucleus one might not): FGNET's piece of a GT nucleus (as in the shape
  ceiling) is replaced by the pixels within ``OUTLINE_REACH`` px of it that are brighter than its
  local background by ``frac`` of its median's height over it; ``frac`` chosen on the validation
  frames. The same redrawing applied to the GT nucleus itself says how far the GT's outlines
  follow the image's brightness at all (``outline_t077.png``: the nuclei the redraw changes most);
- a picture of the nuclei FGNET's row leaves unmatched on the fully labeled frame FGNET did not
  train on (``unmatched_t<frame>.png``).

Writes ``gap.json`` and ``gap.md`` into --out and prints the tables.

    PYTHONPATH=. .venv/bin/python benchmarks/fgnet_seg_gap.py [--fgnet checkpoints/hela_fgnet_cpu.ckpt] \\
        [--unseen 13] [--out runs/bench_fgnet_seg_gap] [--data ../shared/data]
"""

from __future__ import annotations

import argparse
import itertools
import json
import subprocess
import sys
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import tifffile
from scipy import ndimage as ndi

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from inpaintaff.data.normalize import percentile_normalize  # noqa: E402
from inpaintaff.io import ctc  # noqa: E402
from inpaintaff.io.affinities import read_affinity_file  # noqa: E402
from inpaintaff.metrics.ctc import pool_seg, seg_frame  # noqa: E402
from inpaintaff.offsets import N_ATTRACTIVE  # noqa: E402
from inpaintaff.segment.mws import mutex_watershed  # noqa: E402
from inpaintaff.segment.postprocess import merge_small_segments  # noqa: E402
from inpaintaff.segment.scale import labels_onto_foreground  # noqa: E402
from inpaintaff.utils.resolvers import shared_data_dir  # noqa: E402
from inpaintaff.viz.figures import save_figure  # noqa: E402

SHARED = shared_data_dir()
DATASET = "Fluo-N2DL-HeLa"
SETS = {"val": [25, 44, 54], "test": [14, 21, 39, 77], "013": [13], "052": [52]}
ROWS = ('[{label: "DISTILL + FGNET", affinities: distill, foreground: fgnet}, '
        '{label: "DISTILL + TRUEFG", affinities: distill, foreground: truefg}]')
ALPHAS = [1.5, 2.0, 2.5, 3.0, 4.0]
MIN_SIZES = [50, 100]
CORES = [0.1, 0.2, 0.3, 0.5, 0.7]
RIMS = [0.05, 0.1, 0.2, 0.3]
REACH = 4.0
LOOSE = [0.02, 0.05, 0.1]  # the loose foreground's threshold (segment, then keep)
KEEPS = [0.3, 0.4, 0.5, 0.6, 0.7]  # the mean probability a kept segment reaches
SHAPE_REACH = 4  # px around a GT nucleus in which FGNET's foreground counts for the shape ceiling
OUTLINE_REACH = 3  # px an outline redrawn at a nucleus's brightness may move outwards
OUTLINE_FRACS = [0.2, 0.3, 0.4, 0.5]  # the brightness level of the redrawn outline, background 0 to median 1


def run_table1(fgnet: Path, out: Path, data: Path) -> None:
    """Table 1's DISTILL rows with this FGNET on test and the fully labeled frames (resumes)."""
    args = [sys.executable, str(ROOT / "predict.py"), "experiment=hela_table1", f"data.root={data}",
            f"task.fgnet_ckpt={fgnet}", f"task.rows={ROWS}", "task.figure=null", "task.overlays=false",
            "task.eval_splits=[test,train]", f"hydra.run.dir={out}"]
    subprocess.run(args, check=True, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def frame_file(folder: Path, name: str) -> Path:
    found = sorted(folder.rglob(name))
    if not found:
        raise FileNotFoundError(f"{name} not found below {folder}")
    return found[0]


def shape_ceiling(gt: np.ndarray, prob: np.ndarray, threshold: float) -> list[float]:
    """Per GT nucleus: SEG's Jaccard against FGNET's foreground near it, away from other labeled nuclei."""
    out = []
    for i in np.unique(gt)[1:]:
        own = gt == i
        near = ndi.binary_dilation(own, iterations=SHAPE_REACH) & ~ndi.binary_dilation((gt > 0) & ~own)
        pred = (prob > threshold) & near
        j = (own & pred).sum() / (own | pred).sum()
        out.append(float(j) if j > 0.5 else 0.0)
    return out


def brightness_outline(image: np.ndarray, own: np.ndarray, allowed: np.ndarray, background: np.ndarray,
                       frac: float) -> np.ndarray:
    """``own`` redrawn at its own brightness: the pixels of ``allowed`` within ``OUTLINE_REACH`` px of it
    that reach ``frac`` of the way from the local background's median (``background`` pixels in a
    ring beyond) to ``own``'s median, the pieces touching ``own``, holes filled."""
    core = ndi.binary_erosion(own, iterations=2)
    core = core if core.sum() >= 5 else own
    zone = ndi.binary_dilation(own, iterations=OUTLINE_REACH) & allowed
    ring = ndi.binary_dilation(own, iterations=OUTLINE_REACH + 6) & ~zone & background
    low = np.median(image[ring]) if ring.sum() > 10 else np.percentile(image, 5)
    bright = zone & (image >= low + frac * (np.median(image[core]) - low))
    pieces, _ = ndi.label(bright)
    touching = np.unique(pieces[own & bright])
    return ndi.binary_fill_holes(np.isin(pieces, touching[touching > 0]))


def nucleus_windows(image: np.ndarray, gt: np.ndarray, prob: np.ndarray, threshold: float):
    """Per GT nucleus, in a window around it: its id, the window, and the redraw's inputs: a function
    ``redraw(start, frac)`` (``start`` redrawn at the nucleus's brightness, within reach of the
    nucleus and away from other labeled nuclei), the nucleus and FGNET's piece of it (as in the
    shape ceiling)."""
    smooth = ndi.gaussian_filter(image, 1.0)
    pad = SHAPE_REACH + OUTLINE_REACH + 8
    for i, box in enumerate(ndi.find_objects(gt), start=1):
        if box is None:
            continue
        win = tuple(slice(max(0, b.start - pad), b.stop + pad) for b in box)
        g, p, img = gt[win], prob[win], smooth[win]
        own = g == i
        others = ndi.binary_dilation((g > 0) & ~own)
        near = ndi.binary_dilation(own, iterations=SHAPE_REACH) & ~others

        def redraw(start, frac, img=img, others=others, p=p, near=near):
            return brightness_outline(img, start, ~others, p < 0.05, frac) & near if start.any() else start

        yield i, win, redraw, own, (p > threshold) & near


def outline_ceilings(image: np.ndarray, gt: np.ndarray, prob: np.ndarray, threshold: float) -> dict:
    """Per ``frac``: the shape ceiling's Jaccards (SEG's, per GT nucleus) of FGNET's piece redrawn at the
    nucleus's brightness, and of the GT nucleus itself redrawn so (in a window around each nucleus)."""
    out: dict = {}
    for _, _, redraw, own, piece in nucleus_windows(image, gt, prob, threshold):
        for frac in OUTLINE_FRACS:
            for name, start in (("fgnet", piece), ("gt", own)):
                drawn = redraw(start, frac)
                j = (own & drawn).sum() / (own | drawn).sum()
                out.setdefault((name, frac), []).append(float(j) if j > 0.5 else 0.0)
    return out


def outline_picture(path: Path, image: np.ndarray, gt: np.ndarray, prob: np.ndarray, threshold: float,
                    frac: float, n: int = 8) -> None:
    """The ``n`` GT nuclei whose FGNET piece the brightness redraw changes most: GT (green), FGNET above
    ``threshold`` (cyan), the redrawn piece (magenta), the GT redrawn (yellow, dashed)."""
    cases = []
    for i, win, redraw, own, piece in nucleus_windows(image, gt, prob, threshold):
        if piece.any():
            drawn = redraw(piece, frac)
            cases.append(((piece ^ drawn).sum(), i, win, piece, drawn, redraw(own, frac)))
    cases = sorted(cases, key=lambda c: -c[0])[:n]
    if not cases:
        return
    fig, axs = plt.subplots(1, len(cases), figsize=(2.4 * len(cases), 2.9), squeeze=False)
    for ax, (_, i, win, piece, drawn, gt_drawn) in zip(axs[0], cases):
        crop = image[win]
        ax.imshow(crop, cmap="gray", vmax=np.percentile(crop, 99.5))
        ax.contour(gt[win] == i, [0.5], colors="lime")
        ax.contour(piece, [0.5], colors="cyan")
        ax.contour(drawn, [0.5], colors="magenta")
        ax.contour(gt_drawn, [0.5], colors="yellow", linestyles="dashed")
        ax.set_title(f"#{i}", fontsize=9)
        ax.axis("off")
    fig.suptitle(f"GT (green), FGNET > {threshold:g} (cyan), FGNET's piece redrawn at the nucleus's brightness "
                 f"(magenta, frac {frac:g}), the GT redrawn (yellow)", fontsize=8)
    fig.tight_layout()
    save_figure(fig, path, dpi=80)


def grow_sweep(frames: dict[int, tuple]) -> dict[tuple, tuple[float, int]]:
    """SEG sums per (frame, core, α, min size, rim); rim None: the plain protocol (core = threshold)."""
    res = {}
    for f, (aff, prob, gt) in frames.items():
        for core, alpha in itertools.product(CORES, ALPHAS):
            raw = mutex_watershed(aff.aff, alpha, aff.offsets, n_attractive=N_ATTRACTIVE, valid=aff.valid,
                                  foreground=prob > core)
            for min_size in MIN_SIZES:
                labels = merge_small_segments(raw, min_size)
                for rim in [None, *[r for r in RIMS if r < core]]:
                    grown = labels if rim is None else labels_onto_foreground(labels, prob > rim, REACH, min_size)
                    s = seg_frame(gt, grown)
                    res[(f, core, alpha, min_size, rim)] = (s.score_sum, s.n_gt)
        print(f"grow sweep: frame {f:03d}", flush=True)
    return res


def segment_means(labels: np.ndarray, prob: np.ndarray) -> np.ndarray:
    """Mean of ``prob`` per label id (index 0: the background's)."""
    counts = np.bincount(labels.ravel())
    return np.bincount(labels.ravel(), weights=prob.ravel(), minlength=counts.size) / np.maximum(counts, 1)


def keep_sweep(frames: dict[int, tuple]) -> dict[tuple, tuple[float, int]]:
    """SEG sums per (frame, loose, α, min size, keep): the mutex watershed inside FGNET's probability
    above ``loose``, then only segments of mean probability >= ``keep``, then the fragment merge."""
    res = {}
    for f, (aff, prob, gt) in frames.items():
        for loose, alpha in itertools.product(LOOSE, ALPHAS):
            raw = mutex_watershed(aff.aff, alpha, aff.offsets, n_attractive=N_ATTRACTIVE, valid=aff.valid,
                                  foreground=prob > loose)
            means = segment_means(raw, prob)
            for keep in KEEPS:
                kept = np.where((raw > 0) & (means[raw] >= keep), raw, 0)
                for min_size in MIN_SIZES:
                    s = seg_frame(gt, merge_small_segments(kept, min_size))
                    res[(f, loose, alpha, min_size, keep)] = (s.score_sum, s.n_gt)
        print(f"keep sweep: frame {f:03d}", flush=True)
    return res


def choose_kept(res: dict, on: str = "val") -> dict:
    """``choose`` for the keep sweep: the best (loose, α, min size, keep) on ``on`` and its SEG per set."""
    best = max(sorted({k[1:] for k in res}), key=lambda k: round(pooled(res, SETS[on], k), 4))
    return {"loose": best[0], "alpha": best[1], "min_size": best[2], "keep": best[3],
            **{name: pooled(res, frames, best) for name, frames in SETS.items()}}


def pooled(res: dict, frames: list[int], key: tuple) -> float:
    return sum(res[(f, *key)][0] for f in frames) / sum(res[(f, *key)][1] for f in frames)


def alpha_curves(plain: dict, kept: dict, summary: dict) -> dict:
    """SEG against α per set at the plain and the kept protocol's other chosen settings."""
    p, k = summary["plain"], summary["kept"]
    return {
        "plain": {name: [pooled(plain, fs, (p["core"], a, p["min_size"], None)) for a in ALPHAS]
                  for name, fs in SETS.items()},
        "kept": {name: [pooled(kept, fs, (k["loose"], a, k["min_size"], k["keep"])) for a in ALPHAS]
                 for name, fs in SETS.items()},
        "alphas": ALPHAS,
    }


def curve_figure(path: Path, curves: dict) -> None:
    fig, axs = plt.subplots(1, len(SETS), figsize=(4 * len(SETS), 3.4), squeeze=False)
    for ax, name in zip(axs[0], SETS):
        for proto, style in (("plain", "o-"), ("kept", "s--")):
            ax.plot(curves["alphas"], curves[proto][name], style, label=proto)
        ax.set_title(f"frames {name}", fontsize=9)
        ax.set_xlabel("α")
        ax.set_ylabel("SEG")
        ax.legend(fontsize=8)
    fig.tight_layout()
    save_figure(fig, path, dpi=80)


def choose(res: dict, grown: bool, on: str = "val") -> dict:
    """The setting of the best pooled SEG on the frames ``on`` (val: the protocol; test: a ceiling
    no protocol can claim), and its SEG on every set."""
    keys = sorted({k[1:] for k in res if grown or k[4] is None}, key=str)
    best = max(keys, key=lambda k: (round(pooled(res, SETS[on], k), 4), -k[0]))
    return {"core": best[0], "alpha": best[1], "min_size": best[2], "rim": best[3],
            **{name: pooled(res, frames, best) for name, frames in SETS.items()}}


def unmatched_picture(path: Path, image: np.ndarray, gt: np.ndarray, prob: np.ndarray, labels: np.ndarray,
                      threshold: float) -> None:
    s = seg_frame(gt, labels)
    bad = s.gt_ids[s.jaccard == 0][:8]
    if not len(bad):
        return
    lut = np.random.default_rng(0).random((labels.max() + 1, 3))
    lut[0] = 0
    fig, axs = plt.subplots(2, len(bad), figsize=(2.6 * len(bad), 5.4), squeeze=False)
    for k, i in enumerate(bad):
        cy, cx = (int(c) for c in ndi.center_of_mass(gt == i))
        win = (slice(max(0, cy - 35), cy + 35), slice(max(0, cx - 35), cx + 35))
        crop = image[win]
        axs[0, k].imshow(crop, cmap="gray", vmax=np.percentile(crop, 99.5))
        axs[0, k].contour(gt[win] == i, [0.5], colors="lime")
        axs[0, k].contour(prob[win], [threshold], colors="cyan")
        axs[1, k].imshow(lut[labels[win]])
        axs[1, k].contour(gt[win] == i, [0.5], colors="white")
        axs[0, k].set_title(f"#{i}: {(gt == i).sum()} px", fontsize=9)
        for ax in axs[:, k]:
            ax.axis("off")
    fig.suptitle("GT nuclei DISTILL + FGNET leaves unmatched. Top: image, GT (green), FGNET above its threshold "
                 "(cyan); bottom: instances, GT (white)", fontsize=9)
    fig.tight_layout()
    save_figure(fig, path, dpi=80)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--fgnet", type=Path, default=ROOT / "inpaintaff" / "checkpoints" / "hela_fgnet_cpu.ckpt")
    parser.add_argument("--unseen", type=int, choices=[13, 52], default=13,
                        help="the fully labeled frame this FGNET did not train on (the shipped one trained on 052)")
    parser.add_argument("--out", type=Path, default=ROOT / "runs" / "bench_fgnet_seg_gap")
    parser.add_argument("--data", type=Path, default=SHARED)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    run_table1(args.fgnet.resolve(), args.out / "table1", args.data)
    report = json.loads((args.out / "table1" / "table1.json").read_text())
    chosen = {r["label"]: r for r in report["rows"]}["DISTILL + FGNET"]
    threshold = chosen["threshold"]

    frames, per_row = {}, {"fgnet": {}, "truefg": {}}
    for frames_of_set in SETS.values():
        for f in frames_of_set:
            aff = read_affinity_file(frame_file(args.out / "table1" / "aff_distill", f"aff{f:03d}.tif"))
            prob = tifffile.imread(frame_file(args.out / "table1" / "fgnet", f"fg{f:03d}.tif"))
            gt = ctc.read_labels(ctc.gt_seg_path(args.data, DATASET, "01", f))
            frames[f] = (aff, prob, gt)
            split = "test" if f in SETS["test"] else "train" if f in (13, 52) else None
            if split is None:
                continue
            for row in per_row:
                per_row[row][f] = tifffile.imread(frame_file(args.out / "table1" / "rows" / f"distill_{row}" / split,
                                                             f"mask{f:03d}.tif"))

    lines = ["| frames | DISTILL + FGNET | DISTILL + TRUEFG | gap from unmatched nuclei | gap from matched nuclei' "
             "Jaccard | unmatched (FGNET / TRUEFG) | shape ceiling of FGNET's foreground |", "|---" * 7 + "|"]
    summary = {"fgnet": str(args.fgnet), "threshold": threshold, "alpha": chosen["alpha"],
               "min_size": chosen["min_size"], "sets": {}}
    for name in ("test", "013", "052"):
        fs = SETS[name]
        a = pool_seg(seg_frame(frames[f][2], per_row["fgnet"][f]) for f in fs)
        b = pool_seg(seg_frame(frames[f][2], per_row["truefg"][f]) for f in fs)
        ja, jb = a.jaccard, b.jaccard
        ceiling = [j for f in fs for j in shape_ceiling(frames[f][2], frames[f][1], threshold)]
        row = {"fgnet": a.seg, "truefg": b.seg, "gap_unmatched": float(((jb - ja) * (ja == 0)).mean()),
               "gap_matched": float(((jb - ja) * (ja > 0)).mean()), "unmatched_fgnet": int((ja == 0).sum()),
               "unmatched_truefg": int((jb == 0).sum()), "n_gt": int(ja.size), "shape_ceiling": float(np.mean(ceiling))}
        summary["sets"][name] = row
        label = name + (" (unseen by FGNET)" if name == f"{args.unseen:03d}" else "")
        lines.append(f"| {label} | {row['fgnet']:.3f} | {row['truefg']:.3f} | {row['gap_unmatched']:.3f} | "
                     f"{row['gap_matched']:.3f} | {row['unmatched_fgnet']} / {row['unmatched_truefg']} "
                     f"of {row['n_gt']} | {row['shape_ceiling']:.3f} |")

    outline, images = {}, {}
    for f, (_, prob, gt) in frames.items():
        images[f] = percentile_normalize(ctc.read_image(ctc.raw_path(args.data, DATASET, "01", f)))
        for key, js in outline_ceilings(images[f], gt, prob, threshold).items():
            outline.setdefault(key, {})[f] = js
    frac = max(OUTLINE_FRACS, key=lambda fr: np.mean([j for f in SETS["val"] for j in outline[("fgnet", fr)][f]]))
    summary["outline_frac"] = frac
    lines += ["", f"| frames | shape ceiling | FGNET's piece at the nucleus's brightness (frac {frac:g}, chosen on "
              "val) | the GT nucleus at its brightness |", "|---" * 4 + "|"]
    for name, fs in SETS.items():
        ceiling = np.mean([j for f in fs for j in shape_ceiling(frames[f][2], frames[f][1], threshold)])
        drawn = {k: float(np.mean([j for f in fs for j in outline[(k, frac)][f]])) for k in ("fgnet", "gt")}
        summary["sets"].setdefault(name, {}).update(shape_ceiling=float(ceiling), outline_fgnet=drawn["fgnet"],
                                                    outline_gt=drawn["gt"])
        lines.append(f"| {name} | {ceiling:.3f} | {drawn['fgnet']:.3f} | {drawn['gt']:.3f} |")

    test_frame = SETS["test"][-1]
    outline_picture(args.out / f"outline_t{test_frame:03d}.png", images[test_frame], frames[test_frame][2],
                    frames[test_frame][1], threshold, frac)

    res = grow_sweep(frames)
    summary["plain"], summary["grown"] = choose(res, grown=False), choose(res, grown=True)
    summary["plain, best on test"] = choose(res, grown=False, on="test")
    summary["plain or grown, best on test"] = choose(res, grown=True, on="test")
    kept = keep_sweep(frames)
    summary["kept"], summary["kept, best on test"] = choose_kept(kept), choose_kept(kept, on="test")
    summary["curves"] = alpha_curves(res, kept, summary)
    head = "| protocol (chosen on val) | core, α, min size, rim | " + " | ".join(f"SEG {n}" for n in SETS) + " |"
    lines += ["", head, "|---" * (2 + len(SETS)) + "|"]
    for name in ("plain", "grown", "plain, best on test", "plain or grown, best on test"):
        c = summary[name]
        lines.append(f"| {name} | {c['core']}, {c['alpha']}, {c['min_size']}, {c['rim']} | "
                     + " | ".join(f"{c[n]:.3f}" for n in SETS) + " |")
    for name in ("kept", "kept, best on test"):
        c = summary[name]
        lines.append(f"| {name} (loose, α, min size, keep) | {c['loose']}, {c['alpha']}, {c['min_size']}, "
                     f"{c['keep']} | " + " | ".join(f"{c[n]:.3f}" for n in SETS) + " |")
    curve_figure(args.out / "seg_vs_alpha.png", summary["curves"])
    unseen = args.unseen
    image = ctc.read_image(ctc.raw_path(args.data, DATASET, "01", unseen)).astype(np.float32)
    unmatched_picture(args.out / f"unmatched_t{unseen:03d}.png", image, frames[unseen][2], frames[unseen][1],
                      per_row["fgnet"][unseen], threshold)
    (args.out / "gap.json").write_text(json.dumps(summary, indent=1))
    md = "\n".join(lines) + "\n"
    (args.out / "gap.md").write_text(md)
    print(md)


if __name__ == "__main__":
    main()
